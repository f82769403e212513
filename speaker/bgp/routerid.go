package bgp

import (
	"crypto/sha256"
	"net/netip"
)

// RouterID returns the BGP identifier a node uses for the peers that set none:
//
//   - the node's IPv4 address, when it has one (and it is a usable identifier);
//   - otherwise, on an IPv6-only node, an identifier derived from its IPv6 address;
//   - otherwise (no address at all) one derived from the node's name.
//
// A derived identifier is the first bytes of SHA-256 over "herald-router-id/" and the node's
// 16-byte IPv6 address (or its name), made a usable identifier: its first octet is mapped onto
// 1-126 and 128-223, the other three octets are taken as they are. So it is stable across
// restarts, differs between nodes (node addresses are unique; two of n nodes share one with a
// probability of about n²/2^32.8, about 1 in 7,000 for 1,000 nodes), and is never 0.0.0.0,
// loopback, multicast or reserved, which routers may refuse. An operator who needs identifiers
// guaranteed distinct on IPv6-only nodes gives the nodes IPv4 addresses or sets them per node
// group with BGPPeer routerID and nodeSelectors.
func RouterID(nodeIPv4, nodeIPv6 netip.Addr, nodeName string) netip.Addr {
	if v4 := nodeIPv4.Unmap(); usableRouterID(v4) {
		return v4
	}
	src := []byte(nodeName)
	if nodeIPv6.IsValid() {
		b := nodeIPv6.As16()
		src = b[:]
	}
	return derivedRouterID(src)
}

// derivedRouterID maps src to a usable router ID (see RouterID).
func derivedRouterID(src []byte) netip.Addr {
	sum := sha256.Sum256(append([]byte("herald-router-id/"), src...))
	// 222 first octets are usable: 1-126 and 128-223.
	first := 1 + byte((uint32(sum[0])<<8|uint32(sum[1]))%222)
	if first >= 127 {
		first++
	}
	return netip.AddrFrom4([4]byte{first, sum[2], sum[3], sum[4]})
}
