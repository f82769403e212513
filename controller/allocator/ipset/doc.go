// Package ipset holds the allocator's arithmetic: Uint128, an unsigned 128-bit integer for
// offsets inside an address space and exact address counts, and Set, an ordered set of disjoint
// intervals of such offsets (the addresses taken in one space). It knows nothing of pools,
// Services or Kubernetes; the allocator (package allocator) builds its policy on top of it, as
// Cilium keeps pkg/ipalloc apart from LB-IPAM.
//
// Why not go4.org/netipx: its IPSet is immutable, made by an IPSetBuilder that normalises every
// range it holds when the set is built, so taking or freeing one address would cost a rebuild of
// the pool's whole set; Set changes in place in O(log n) (alloc_full16_vs_empty16_ratio in
// bench/REPORT.md keeps that cost flat). The configuration's ranges stay netip.Addr pairs for the
// same reason: one type from config to the allocator.
package ipset
