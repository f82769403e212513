// Package service is the Service reconciler of herald-controller. It owns the translation of
// Kubernetes objects into the pure allocator's terms (config.Pool -> allocator.Pool with the
// serviceAllocation selectors, corev1.Service -> allocator.Service), the single mutex that
// serialises allocator calls, and every write the controller makes: Service
// status.loadBalancer.ingress (ipMode VIP), the herald.dev/ip-allocated-from-pool annotation,
// events, and IPAddressPool status. A Service's assignment costs those two writes and nothing
// else: assignments are reported by one IPAllocated event per pool per SummaryInterval (not one
// per Service), and a pending Service gets one event per distinct problem, not one per retry.
//
// The Services are kept in the package's own compact store (a client-go informer keeping what
// TrimService keeps, in about a third of the memory), not in the manager's cache; the webhook reads
// them through ServiceReader.
//
// Three reconcilers, one file each, share one allocation state (allocState, in state.go: the
// allocator and its bookkeeping behind one mutex):
//
//   - the config reconciler (heraldconfig.go) rebuilds config.Snapshot from the cache whenever
//     a Herald object (or a Secret of the Herald namespace) changes, runs config.ParseUsable with the
//     configuration in force as the last good one, and hands the usable pools to the allocator
//     (SetPools). An invalid object disables only what depends on it: a bad peer, Secret or
//     advertisement never stops allocation, an invalid edit of a pool keeps its last version (its
//     addresses stay), a new invalid pool is not used. Problems are reported with Warning events
//     on the offending objects and the config_valid and config_invalid_objects metrics, and never
//     drop an assignment: after a restart, Services holding addresses of a pool that is invalid
//     (no last version known) are left as they are until it is fixed;
//   - the Service reconciler (service.go) assigns and releases addresses, one Service at a time;
//   - the pool status reconciler (poolstatus.go) writes IPAddressPool status counts and the
//     AddressesReleased condition, coalesced so that a burst of assignments writes each pool about once a second.
//
// Before anything new is assigned, the state is initialised once from the synced Service store:
// every address found in the status of the Services the controller handles is reserved (in
// Service key order), so a restart, even after kill -9 in the middle of a burst, never moves or
// duplicates an address. Reconciles are level-triggered and idempotent: they read the Service from
// the cache, ask the allocator, and write only when the result differs semantically from what the
// API server holds.
package service
