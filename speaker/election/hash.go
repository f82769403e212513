package election

import (
	"encoding/binary"
	"net/netip"
)

// FNV-1a 64-bit parameters (FIPS-free, defined by the FNV specification).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// weight is the rendezvous weight of node for ip. It must give the same value on every
// speaker, on every architecture and in every release that can run next to another during a
// rolling upgrade: changing it moves IPs. TestWeightGolden pins it.
//
// The input is the length of the node name as 8 big-endian bytes, the name, then the 16-byte
// form of the (unmapped) IP, so no two (name, ip) pairs share an encoding and an IPv4 address
// hashes the same whether or not it arrives IPv4-mapped. FNV-1a alone mixes its last bytes
// poorly into the high bits, so its sum goes through the murmur3 64-bit finalizer.
func weight(node string, ip netip.Addr) uint64 {
	h := uint64(fnvOffset64)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(node)))
	for _, b := range n {
		h = (h ^ uint64(b)) * fnvPrime64
	}
	for i := 0; i < len(node); i++ {
		h = (h ^ uint64(node[i])) * fnvPrime64
	}
	a := ip.Unmap().As16()
	for _, b := range a {
		h = (h ^ uint64(b)) * fnvPrime64
	}
	return mix64(h)
}

// mix64 is the murmur3 fmix64 finalizer: a bijection on uint64 with full avalanche.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
