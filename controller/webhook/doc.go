// Package webhook is the controller's validating admission webhook for the Herald kinds
// (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community). For each
// request it builds the snapshot the cluster would have after the change and runs config.Parse on
// it, so the same rules apply at the door and at run time, and it answers with every problem the
// change brings, each naming the object, the field and the reason. Deleting a pool whose
// addresses Services still hold is refused with the names of those Services.
//
// The decision is pure (Review, over config.Snapshot values); Validator adds the reads from the
// API server and the admission plumbing; Register hooks it into a controller-runtime manager.
package webhook
