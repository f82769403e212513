// Package service is the Service reconciler of herald-controller. It owns the translation of
// Kubernetes objects into the pure allocator's terms (config.Pool -> allocator.Pool with the
// serviceAllocation selectors, corev1.Service -> allocator.Service), the single mutex that
// serialises allocator calls, and every write the controller makes: Service
// status.loadBalancer.ingress (ipMode VIP), the herald.dev/ip-allocated-from-pool annotation,
// events, and IPAddressPool status.
//
// Three controllers share one state:
//
//   - the config controller rebuilds config.Snapshot from the cache whenever a Herald object
//     (or a Secret of the Herald namespace) changes, runs config.Parse, and on success hands the
//     pools to the allocator (SetPools). An invalid configuration keeps the last good one in
//     force, is reported with Warning events on the offending objects and the config_valid
//     metric, and never drops an assignment;
//   - the Service controller assigns and releases addresses, one Service at a time;
//   - the pool status controller writes IPAddressPool status counts and the AddressesReleased
//     condition, coalesced so that a burst of assignments writes each pool about once a second.
//
// Before anything new is assigned, the state is initialised once from the synced informer cache:
// every address found in the status of the Services the controller handles is reserved (in
// Service key order), so a restart, even after kill -9 in the middle of a burst, never moves or
// duplicates an address. Reconciles are level-triggered and idempotent: they read the Service from
// the cache, ask the allocator, and write only when the result differs semantically from what the
// API server holds.
package service
