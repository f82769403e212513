package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceL2StatusStatus says which node answers ARP/NDP for a Service's addresses, and where.
type ServiceL2StatusStatus struct {
	// Node announcing the Service's addresses.
	// +optional
	Node string `json:"node,omitempty"`
	// ServiceName is the name of the Service.
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// ServiceNamespace is the namespace of the Service.
	// +optional
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Interfaces the node answers on.
	// +optional
	Interfaces []InterfaceInfo `json:"interfaces,omitempty"`
	// Conflicts lists the Service's addresses that another station claims too, as this node sees
	// them on its interfaces: another Herald speaker (a split brain: the speakers do not see each
	// other in memberlist) or a host that is not a Herald speaker (a duplicate address).
	// +optional
	Conflicts []L2Conflict `json:"conflicts,omitempty"`
}

// InterfaceInfo names a network interface of a node.
type InterfaceInfo struct {
	// Name of the interface.
	Name string `json:"name"`
	// MAC is the interface's hardware address, the one the node answers with. Speakers learn
	// each other's MACs from it, to tell a conflict with another speaker from one with a foreign
	// host.
	// +optional
	MAC string `json:"mac,omitempty"`
}

// L2Conflict is an address of the Service that another station claims too, seen on one interface.
type L2Conflict struct {
	// IP is the address in conflict.
	IP string `json:"ip"`
	// Interface is where this node sees the other station.
	Interface string `json:"interface"`
	// MAC is the other station's hardware address.
	MAC string `json:"mac"`
	// Node is the Herald node the MAC belongs to; empty for a host that is not a Herald speaker.
	// +optional
	Node string `json:"node,omitempty"`
	// Action is what this node does: Kept (it goes on answering; the other speaker must stop),
	// Yielded (it stopped answering), or NotAnnounced (the address was taken before this node
	// first announced it). A node that does not answer keeps checking, and answers once the
	// other station is gone.
	// +kubebuilder:validation:Enum=Kept;Yielded;NotAnnounced
	Action string `json:"action"`
	// Since is when the other station was first seen.
	// +optional
	Since metav1.Time `json:"since,omitempty"`
}

// Actions of an L2Conflict.
const (
	L2ConflictKept         = "Kept"
	L2ConflictYielded      = "Yielded"
	L2ConflictNotAnnounced = "NotAnnounced"
)

// ServiceL2Status is written by the speaker that owns a Service's addresses in layer-2 mode.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=l2status,categories=herald
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Conflicts",type=string,JSONPath=`.status.conflicts[*].ip`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status ServiceL2StatusStatus `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Status.
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

// ServiceBGPStatusStatus lists the peers one node advertises a Service's addresses to.
type ServiceBGPStatusStatus struct {
	// Node advertising the Service's addresses.
	// +optional
	Node string `json:"node,omitempty"`
	// ServiceName is the name of the Service.
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// ServiceNamespace is the namespace of the Service.
	// +optional
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Peers, by BGPPeer name, that the addresses are advertised to.
	// +optional
	Peers []string `json:"peers,omitempty"`
}

// ServiceBGPStatus is written by each speaker that advertises a Service's addresses over BGP.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpstatus,categories=herald
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.status.peers`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status ServiceBGPStatusStatus `json:"status,omitempty"`
}

// ServiceBGPStatusList is a list of ServiceBGPStatus.
// +kubebuilder:object:root=true
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}

// BGPSessionStatusStatus is the state of one BGP session of one node.
type BGPSessionStatusStatus struct {
	// Node whose speaker keeps the session.
	// +optional
	Node string `json:"node,omitempty"`
	// Peer is the name of the BGPPeer.
	// +optional
	Peer string `json:"peer,omitempty"`
	// PeerAddress is the router's address.
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`
	// State is the BGP finite-state-machine state: Idle, Connect, Active, OpenSent, OpenConfirm
	// or Established; Refused when the speaker cannot use the BGPPeer's configuration and has
	// no session for it (LastError says why; the other sessions are not affected).
	// +optional
	State string `json:"state,omitempty"`
	// LastError says why the session is not established: the peer cannot be reached, refuses the
	// connection, or (no TCP connection at all with a password set) a TCP MD5 password mismatch,
	// the peer sent more prefixes than maxPrefixes, or the speaker refused the peer's
	// configuration ("configuration refused: ...").
	// +optional
	LastError string `json:"lastError,omitempty"`
	// EstablishedSince is when the session came up.
	// +optional
	EstablishedSince *metav1.Time `json:"establishedSince,omitempty"`
	// PrefixesAdvertised is the number of prefixes sent to the peer.
	// +optional
	PrefixesAdvertised int32 `json:"prefixesAdvertised,omitempty"`
	// BFD is the state of the session's BFD when the BGPPeer names a bfdProfile: Up, Down, Init
	// or AdminDown (the peer stopped BFD), or Error when BFD cannot run (LastError says why).
	// When BFD goes from Up to Down the BGP session is closed at once.
	// +optional
	BFD string `json:"bfd,omitempty"`
}

// BGPSessionStatus is written by each speaker for each of its BGP sessions, so that
// `kubectl get bgpsessionstatuses` shows which sessions are up and why the others are not.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgpsession,categories=herald
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=`.status.peer`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.peerAddress`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="BFD",type=string,JSONPath=`.status.bfd`
// +kubebuilder:printcolumn:name="Error",type=string,JSONPath=`.status.lastError`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPSessionStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status BGPSessionStatusStatus `json:"status,omitempty"`
}

// BGPSessionStatusList is a list of BGPSessionStatus.
// +kubebuilder:object:root=true
type BGPSessionStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPSessionStatus `json:"items"`
}
