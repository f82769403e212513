package election

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// weight is the rendezvous weight of node for ip. It must give the same value on every
// speaker, on every architecture and in every release that can run next to another during a
// rolling upgrade: changing it moves IPs. TestWeightGolden and TestOwnerGolden pin it.
//
// The hash is FNV-1a 64 from hash/fnv: the FNV specification fixes it, so no Go release can
// change it, and it does not allocate (measured 68-92 ns per weight, against 68-73 ns for the
// hand-inlined loop it replaced). Its input is the length of the node name as 8 big-endian
// bytes, the name, then the 16-byte form of the (unmapped) IP, so no two (name, ip) pairs share
// an encoding and an IPv4 address hashes the same whether or not it arrives IPv4-mapped. FNV-1a
// alone mixes its last bytes poorly into the high bits, so its sum goes through the murmur3
// 64-bit finalizer.
func weight(node string, ip netip.Addr) uint64 {
	h := fnv.New64a()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(node)))
	_, _ = h.Write(n[:]) // writing to a hash never fails
	_, _ = h.Write([]byte(node))
	a := ip.Unmap().As16()
	_, _ = h.Write(a[:])
	return mix64(h.Sum64())
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
