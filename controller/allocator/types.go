package allocator

import (
	"github.com/herald-lb/herald/controller/allocator/ipset"

	"fmt"
	"net/netip"
)

// Family is an IP address family.
type Family uint8

// The address families. The zero Family is invalid.
const (
	IPv4 Family = iota + 1
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

func (f Family) valid() bool { return f == IPv4 || f == IPv6 }

// index returns 0 for IPv4 and 1 for IPv6, for per-family arrays.
func (f Family) index() int { return int(f) - 1 }

func (f Family) other() Family {
	if f == IPv4 {
		return IPv6
	}
	return IPv4
}

// FamilyOf returns the family of a, which must be valid.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// FamilyPolicy is a Service's spec.ipFamilyPolicy.
type FamilyPolicy string

// The IP family policies, as Kubernetes defines them. The empty policy means SingleStack.
const (
	SingleStack      FamilyPolicy = "SingleStack"
	PreferDualStack  FamilyPolicy = "PreferDualStack"
	RequireDualStack FamilyPolicy = "RequireDualStack"
)

// Port is one port of a Service.
type Port struct {
	Port int32
	// Protocol is TCP, UDP or SCTP; empty means TCP.
	Protocol string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// Service is what the allocator needs to know about a Kubernetes Service of type LoadBalancer.
// The reconciler fills it from the Service and its Namespace; the allocator keeps a copy.
type Service struct {
	// Key identifies the Service, "namespace/name".
	Key             string
	Namespace       string
	NamespaceLabels map[string]string
	Labels          map[string]string
	// Pool is the pool the Service asks for by name, or empty.
	Pool string
	// RequestedIPs are the addresses the Service asks for, at most one per family.
	// Empty means any address.
	RequestedIPs []netip.Addr
	// SharingKey is the key under which the Service shares its addresses, or empty for no sharing.
	SharingKey string
	Ports      []Port
	// ExternalTrafficPolicyLocal is true for externalTrafficPolicy: Local.
	ExternalTrafficPolicyLocal bool
	// Selector is the pod selector in a canonical form (for example labels.Set.String()).
	Selector     string
	FamilyPolicy FamilyPolicy
	// Families is spec.ipFamilies, primary first. When empty, the family of the first requested
	// IP, or else IPv4, is primary, and dual-stack policies add the other family.
	Families []Family
}

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

// PrefixRange returns the range of all addresses of p (host bits are ignored).
func PrefixRange(p netip.Prefix) Range {
	p = p.Masked()
	first := p.Addr()
	f := FamilyOf(first)
	hostBits := first.BitLen() - p.Bits()
	v := addrValue(first)
	// host mask: the low hostBits bits set.
	var mask Uint128
	switch {
	case hostBits >= 128:
		mask = Uint128{Hi: ^uint64(0), Lo: ^uint64(0)}
	case hostBits >= 64:
		mask = Uint128{Hi: 1<<(hostBits-64) - 1, Lo: ^uint64(0)}
	default:
		mask = Uint128{Hi: 0, Lo: 1<<hostBits - 1}
	}
	return Range{First: first, Last: valueAddr(Uint128{Hi: v.Hi | mask.Hi, Lo: v.Lo | mask.Lo}, f)}
}

func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Pool is an address pool as the allocator sees it.
type Pool struct {
	Name string
	// Ranges of the pool, IPv4 and IPv6 mixed, in any order; they must not overlap each other
	// or any other pool. Use PrefixRange for a CIDR.
	Ranges []Range
	// AutoAssign false: the pool is used only by Services that name it or request one of its
	// addresses.
	AutoAssign bool
	// AvoidBuggyIPs: never hand out IPv4 addresses ending in .0 or .255.
	AvoidBuggyIPs bool
	// Skip lists addresses of Ranges, in any order, that are not handed out: the reconciler
	// lists the network and broadcast addresses of the pool's CIDRs here (for IPv6, the
	// subnet-router anycast address). They cost nothing per address in the pool's size.
	Skip []netip.Addr
	// Restricted is true when the pool has a serviceAllocation. Restricted pools that select a
	// Service are preferred to unrestricted ones, lowest Priority first.
	Restricted bool
	Priority   int
	// Match reports whether the pool may serve svc (the serviceAllocation namespace and
	// label selectors). Nil means every Service. The allocator calls it with its own copy of
	// the Service; it must not keep or modify it.
	Match func(svc *Service) bool
}

// Assignment is one address held by one Service.
type Assignment struct {
	Service string
	IP      netip.Addr
	// Pool the address belongs (or, for released addresses, belonged) to.
	Pool string
}

// Result is what Assign and Reserve leave a Service with.
type Result struct {
	// Assigned is every address the Service holds after the call, in the order of its
	// families (primary first).
	Assigned []Assignment
	// Released lists addresses the Service held before the call but may no longer use
	// (its requested IPs, pool, families, ports or sharing key changed).
	Released []Assignment
	// Missing lists wanted families left without an address by a PreferDualStack Service
	// without an error.
	Missing []Family
}

// PoolCounts are the address counts of one pool.
type PoolCounts struct {
	Pool string
	IPv4 FamilyCounts
	IPv6 FamilyCounts
}

// FamilyCounts counts the addresses of one family in a pool. Size is the number of addresses
// the pool hands out, that is without those skipped by AvoidBuggyIPs or Skip, plus the skipped
// addresses that Services hold nonetheless (see Reserve); Assigned counts every address held,
// an address shared by several Services once; Available = Size - Assigned is the number of
// addresses still free to hand out.
type FamilyCounts struct {
	Size, Assigned, Available Uint128
}

// Uint128 is an unsigned 128-bit integer: address counts (see PoolCounts).
type Uint128 = ipset.Uint128
