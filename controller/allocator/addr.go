package allocator

import (
	"net/netip"

	"github.com/herald-lb/herald/controller/allocator/ipset"
)

// addrValue returns the address as an integer: IPv4 in the low 32 bits.
func addrValue(a netip.Addr) Uint128 { return ipset.FromAddr(a) }

// valueAddr is the inverse of addrValue.
func valueAddr(u Uint128, f Family) netip.Addr { return u.Addr(f == IPv4) }
