// Package ipset holds the allocator's arithmetic: Uint128, an unsigned 128-bit integer for
// offsets inside an address space and exact address counts, and Set, an ordered set of disjoint
// intervals of such offsets (the addresses taken in one space). It knows nothing of pools,
// Services or Kubernetes; the allocator (package allocator) builds its policy on top of it, as
// Cilium keeps pkg/ipalloc apart from LB-IPAM.
package ipset
