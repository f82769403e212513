// Package allocator decides which load-balancer addresses Services get. It owns the pools'
// address spaces, the record of which Service holds which address, the sharing rules (sharing
// keys), dual-stack policies, and the address counts per pool. It is
// pure: no Kubernetes types, no sockets, no globals. The Service reconciler translates
// config.Pool and corev1.Service into Pool and Service, calls the Allocator, and writes the
// result to the Service status; it also evaluates the pools' selectors, which reach the
// allocator as Pool.Match. Reading Kubernetes strings (annotations, spec.loadBalancerIP,
// spec.ipFamilies) is the reconciler's translation too: the allocator's errors speak of the
// Service's pool and sharing key, and Fields tells the caller which of them an error is about,
// so that it can name the annotation they come from.
//
// # Rules
//
// A Service may use a pool when it does not request another pool by name (Service.Pool) and the
// pool's Match accepts it. Automatic assignment uses the
// requested pool, or else the eligible restricted pools with autoAssign by ascending Priority
// then name, then the eligible unrestricted pools with autoAssign by name. Requested addresses
// (Service.RequestedIPs) may come from
// any pool the Service may use, autoAssign or not. An address stays with its Service as long
// as it is an address of a pool the Service may use and the Service's own description still
// allows it; SetPools never moves an address, it releases and reports. Results depend
// only on the pools and the sequence of calls: candidates are ordered by name, never by map
// iteration, and the search below is deterministic.
//
// # Skipped addresses
//
// A pool does not hand out the IPv4 addresses ending in .0 and .255 when it has AvoidBuggyIPs,
// nor the addresses of Pool.Skip (the reconciler lists there the network and broadcast
// addresses of the pool's CIDRs, and the subnet-router anycast address of its IPv6 CIDRs).
// The search never finds them and a request for one fails with ErrNotInPool, naming the
// switch that allows it. But they remain addresses of the pool: a Service restored with one
// (Reserve) keeps it, and a pool change that starts skipping an address does not take it from
// the Service that holds it; only a Service that does not hold it cannot get it, even by
// sharing. Once free, it is skipped again. This way upgrading to a version that skips more, or
// turning a skip rule on, never moves an address.
//
// # Data structure and cost
//
// Each pool has one address space per family. The usable addresses of its ranges are numbered
// 0..n-1 with 128-bit offsets; with AvoidBuggyIPs the IPv4 addresses ending in .0 and .255
// are left out of the numbering (a.b.c.d maps to (a.b.c)*254+d-1), so they cost nothing to
// skip or count, and each address of Pool.Skip cuts or shortens a range, at the cost of one
// segment whatever the range's size. Skipped addresses in use are only counted. The offsets
// in use are stored as maximal runs of consecutive offsets in a B+tree of height two keyed
// by run start: sorted blocks of up to 63 runs (flat arrays, no pointers) under a sorted
// index of the blocks' first starts. Memory is proportional to the
// number of runs, at most the number of addresses in use, and independent of the pool size:
// a /8 or a /64 costs the same as a /29.
//
// A free address is found by next fit: from a cursor just past the last address handed out,
// look up the run containing the cursor; if there is one, the offset just after it is free
// (runs are maximal) unless it is the end of the space, in which case wrap to 0 and do the
// same once more. Fullness is known from the count of offsets in use. So finding a free
// address costs at most two O(log r) lookups, r being the number of runs, whether the pool is
// empty or 99% full; no address is ever scanned. A lookup is a binary search in the index,
// skipped when the offset falls in the block used last (next fit makes that the usual case),
// then one in a block of at most 63 runs, over contiguous memory. Next fit also delays reusing a released
// address while others are free, which spares clients with stale ARP/NDP or DNS entries.
// Taking or freeing an address is one lookup plus at most one insertion or deletion (a run
// may grow, shrink, merge with its neighbour or split), which shifts runs inside one block and
// touches the index only when a block splits, merges or empties. Mapping an offset to an address is a
// binary search over the pool's ranges.
//
// Other state is per address in use (a map from the address, as a pointer-free 128-bit key,
// to its first holder, a second map listing the holders of the addresses held by several
// Services, and per sharing key a sorted list of its addresses) and per Service (the
// allocator's copy of its description, which also records the pool of each address held):
// about 390 bytes per Service holding one address, its run included, whatever the pool size.
// Counts per pool and family are kept exact in Uint128 and cost O(1) to read.
//
// The garbage collector's work grows with the live heap, so with many addresses held the
// cost of a call is dominated by the garbage it leaves. Assign and Release therefore reuse
// scratch buffers and keep one spare record of each kind: a Service coming and going leaves
// only the slices returned to the caller. BenchmarkAssignEmpty16, BenchmarkAssignFull16 and
// BenchmarkAssign64 measure this; compare their cpu-ns/op on a busy machine.
//
// # Usage
//
//	a, err := allocator.New(pools)
//	// at start-up, before any Assign: restore what the Services' status says
//	for _, s := range servicesSortedByKey {
//		if _, err := a.Reserve(s.svc, s.statusIPs); err != nil { /* event on s */ }
//	}
//	// on every Service reconcile
//	res, err := a.Assign(svc)   // res.Assigned goes to status.loadBalancer.ingress
//	// on Service deletion or type change
//	a.Release(svc.Key)
//	// on a pool change
//	released, err := a.SetPools(pools) // requeue and report every released Service
package allocator
