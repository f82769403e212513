package ipset

import (
	"encoding/binary"
	"math/big"
	"math/bits"
	"net/netip"
	"strconv"
)

// Uint128 is an unsigned 128-bit integer. The allocator uses it for offsets inside a pool and
// for exact address counts: an IPv6 /64 holds 2^64 addresses, more than a uint64 can count
// once a pool has two of them.
type Uint128 struct {
	Hi, Lo uint64
}

// From64 returns lo as a Uint128.
func From64(lo uint64) Uint128 { return Uint128{Lo: lo} }

// Cmp returns -1, 0 or +1 as u is less than, equal to or greater than v.
func (u Uint128) Cmp(v Uint128) int {
	switch {
	case u.Hi < v.Hi:
		return -1
	case u.Hi > v.Hi:
		return 1
	case u.Lo < v.Lo:
		return -1
	case u.Lo > v.Lo:
		return 1
	}
	return 0
}

// IsZero reports whether u is 0.
func (u Uint128) IsZero() bool { return u.Hi == 0 && u.Lo == 0 }

// Uint64 returns u as a uint64 and whether it fits.
func (u Uint128) Uint64() (uint64, bool) { return u.Lo, u.Hi == 0 }

// Float64 returns the nearest float64, for metrics.
func (u Uint128) Float64() float64 { return float64(u.Hi)*(1<<64) + float64(u.Lo) }

// Big returns u as a new big.Int.
func (u Uint128) Big() *big.Int {
	b := new(big.Int).SetUint64(u.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(u.Lo))
}

// String returns u in decimal.
func (u Uint128) String() string {
	if u.Hi == 0 {
		return strconv.FormatUint(u.Lo, 10)
	}
	return u.Big().String()
}

// Less reports whether u < v.
func (u Uint128) Less(v Uint128) bool { return u.Hi < v.Hi || u.Hi == v.Hi && u.Lo < v.Lo }

// Add returns u+v and whether it overflowed.
func (u Uint128) Add(v Uint128) (Uint128, bool) {
	lo, c := bits.Add64(u.Lo, v.Lo, 0)
	hi, c := bits.Add64(u.Hi, v.Hi, c)
	return Uint128{hi, lo}, c != 0
}

// Sub returns u-v, wrapping around below zero.
func (u Uint128) Sub(v Uint128) Uint128 {
	lo, b := bits.Sub64(u.Lo, v.Lo, 0)
	hi, _ := bits.Sub64(u.Hi, v.Hi, b)
	return Uint128{hi, lo}
}

// Inc returns u+1, wrapping around at 2^128.
func (u Uint128) Inc() Uint128 { r, _ := u.Add(From64(1)); return r }

// Dec returns u-1, wrapping around below zero.
func (u Uint128) Dec() Uint128 { return u.Sub(From64(1)) }

// DivMod64 returns u/d and u%d.
func (u Uint128) DivMod64(d uint64) (Uint128, uint64) {
	qhi := u.Hi / d
	r := u.Hi % d
	qlo, r := bits.Div64(r, u.Lo, d)
	return Uint128{qhi, qlo}, r
}

// FromAddr returns the address as an integer: IPv4 in the low 32 bits.
func FromAddr(a netip.Addr) Uint128 {
	if a.Is4() {
		b := a.As4()
		return From64(uint64(binary.BigEndian.Uint32(b[:])))
	}
	b := a.As16()
	return Uint128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// Addr is the inverse of FromAddr: an IPv4 address from the low 32 bits when v4, else IPv6.
func (u Uint128) Addr(v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.Lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.Hi)
	binary.BigEndian.PutUint64(b[8:], u.Lo)
	return netip.AddrFrom16(b)
}
