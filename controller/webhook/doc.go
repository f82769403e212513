// Package webhook is the controller's validating admission webhook for the Herald kinds
// (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community). For each
// create or update it builds the snapshot the cluster would have after the change and runs
// config.Parse on it, so the same rules apply at the door and at run time, and it answers with
// every problem the change brings, each naming the object, the field, the value and the fix, in
// the API server's own shape: apierrors.NewInvalid over a field.ErrorList (422, one cause per
// field), or a 409 Conflict when only Services holding the addresses are in the way.
//
// A change is refused for what really hurts. A delete is never refused for the references it
// leaves dangling (kubectl delete -f deletes a pool before the advertisement that names it): they
// come back as admission warnings, and the controller reports them on the objects' Valid
// condition (package confstatus). Deleting a pool, shrinking its addresses or narrowing its
// serviceAllocation under addresses that Services hold is refused, naming the Services, unless
// the pool carries the annotation herald.dev/allow-release-of-in-use-ips: "true".
//
// The decision is pure (Review, DeleteWarnings, Released, over config.Snapshot values and
// Services); Validator adds the reads (Herald objects uncached and namespaced, Services and
// Namespaces from the controller's cache through a field index) and the admission plumbing;
// Register hooks it into a controller-runtime manager.
package webhook
