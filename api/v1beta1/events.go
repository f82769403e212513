package v1beta1

// Reasons of the Kubernetes Events herald-controller and herald-speaker write, in UpperCamelCase
// as Kubernetes' own. They are the one definition: the binaries, kubectl-herald and the tests use
// these constants. Operators' alerts may match them; a rename is a breaking change.
const (
	// EventReasonIPAllocated (Normal, on the IPAddressPool): addresses were assigned from the pool.
	EventReasonIPAllocated = "IPAllocated"
	// EventReasonIPReleased (Normal or Warning, on the Service): the controller released addresses.
	EventReasonIPReleased = "IPReleased"
	// EventReasonAllocationFailed (Warning, on the Service): no address could be assigned.
	EventReasonAllocationFailed = "AllocationFailed"
	// EventReasonIPNotRestored (Warning, on the Service): the address in the Service's status
	// could not be kept after a restart; the Service gets a valid address instead.
	EventReasonIPNotRestored = "IPNotRestored"
	// EventReasonInvalidConfiguration (Warning, on the configuration object): the object is invalid.
	EventReasonInvalidConfiguration = "InvalidConfiguration"
	// EventReasonConfigurationWarning (Warning, on the configuration object): a reference to a
	// pool or peer that does not exist.
	EventReasonConfigurationWarning = "ConfigurationWarning"
	// EventReasonPoolNotInForce (Warning, on the Service): the Service is left as it is because its
	// pool is invalid.
	EventReasonPoolNotInForce = "PoolNotInForce"
	// EventReasonForeignAddress (Warning, on the Service): the Service is left as it is because its
	// status holds an address Herald did not assign and no pool holds.
	EventReasonForeignAddress = "ForeignAddress"

	// EventReasonNodeAssigned (Normal, on the Service): a speaker started announcing the
	// Service's addresses from its node. It was spelled "nodeAssigned" before.
	EventReasonNodeAssigned = "NodeAssigned"
	// EventReasonNotAnnounced (Warning, on the Service): an assigned address is not announced; the
	// message says why.
	EventReasonNotAnnounced = "NotAnnounced"
	// EventReasonAddressConflict (Warning, on the Service): another station answers for an owned
	// layer-2 address.
	EventReasonAddressConflict = "AddressConflict"
	// EventReasonAddressConflictResolved (Normal, on the Service): the address conflict is over.
	EventReasonAddressConflictResolved = "AddressConflictResolved"
	// EventReasonSessionEstablished (Normal, on the BGPPeer): a BGP session is up.
	EventReasonSessionEstablished = "SessionEstablished"
	// EventReasonSessionDown (Warning, on the BGPPeer): a BGP session went down.
	EventReasonSessionDown = "SessionDown"
	// EventReasonPeerRefused (Warning, on the BGPPeer): the speaker cannot use the BGPPeer's
	// configuration; the other peers' sessions are not affected.
	EventReasonPeerRefused = "PeerRefused"
)
