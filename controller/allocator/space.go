package allocator

import (
	"net/netip"
	"slices"
)

// space is the addresses of one family in one pool, numbered 0..size-1 ("offsets") across the
// pool's ranges in address order, with the addresses skipped by AvoidBuggyIPs left out of the
// numbering altogether. Offsets in use are kept as runs in an intervalSet.
//
// Without AvoidBuggyIPs an address's "slot" is its integer value; with it, an IPv4 address
// a.b.c.d (d in 1..254) has slot (a.b.c)*254 + d-1, so the usable addresses of a range form
// one contiguous run of slots and the buggy addresses cost nothing to skip or to count.
type space struct {
	family     Family
	avoidBuggy bool // only ever true for IPv4
	segs       []segment
	size       Uint128 // usable addresses
	used       uint64  // offsets in use
	taken      intervalSet
	// cursor is the offset where the search for a free address starts: just after the last
	// address handed out automatically (next fit), so a released address is not reused at
	// once while any other is free.
	cursor Uint128
}

// segment is one range of the pool, in slots, placed at offset off.
type segment struct {
	off, first, last Uint128
}

// newSpace builds the space of ranges, which must be of family f, sorted and disjoint. It
// fails only when the pool would hold 2^128 addresses.
func newSpace(f Family, avoidBuggy bool, ranges []Range) (*space, bool) {
	s := &space{family: f, avoidBuggy: avoidBuggy && f == IPv4}
	for _, r := range ranges {
		first, last, ok := s.usable(r)
		if !ok {
			continue
		}
		fs, _ := s.slot(first)
		ls, _ := s.slot(last)
		n := ls.sub(fs)
		if n == (Uint128{^uint64(0), ^uint64(0)}) {
			return nil, false
		}
		s.segs = append(s.segs, segment{off: s.size, first: fs, last: ls})
		var carry bool
		s.size, carry = s.size.add(n.inc())
		if carry {
			return nil, false
		}
	}
	return s, true
}

// usable returns the first and last address of r that are not skipped.
func (s *space) usable(r Range) (first, last netip.Addr, ok bool) {
	if !s.avoidBuggy {
		return r.First, r.Last, true
	}
	lo, hi := addrValue(r.First).Lo, addrValue(r.Last).Lo
	switch lo & 0xff {
	case 0:
		lo++
	case 0xff:
		lo += 2
	}
	switch hi & 0xff {
	case 0xff:
		hi--
	case 0:
		if hi < 2 {
			return first, last, false
		}
		hi -= 2
	}
	if lo > 0xffffffff || lo > hi {
		return first, last, false
	}
	return valueAddr(u128(lo), IPv4), valueAddr(u128(hi), IPv4), true
}

// slot returns the slot of a, false when a is skipped by AvoidBuggyIPs.
func (s *space) slot(a netip.Addr) (Uint128, bool) {
	v := addrValue(a)
	if !s.avoidBuggy {
		return v, true
	}
	low := v.Lo & 0xff
	if low == 0 || low == 0xff {
		return Uint128{}, false
	}
	return u128((v.Lo>>8)*254 + low - 1), true
}

func (s *space) slotAddr(x Uint128) netip.Addr {
	if !s.avoidBuggy {
		return valueAddr(x, s.family)
	}
	return valueAddr(u128((x.Lo/254)<<8|(x.Lo%254+1)), IPv4)
}

// offset returns the offset of a, false when a is not a usable address of the space.
func (s *space) offset(a netip.Addr) (Uint128, bool) {
	if FamilyOf(a) != s.family {
		return Uint128{}, false
	}
	x, ok := s.slot(a)
	if !ok {
		return Uint128{}, false
	}
	// The last segment whose first slot is <= x.
	i, _ := slices.BinarySearchFunc(s.segs, x, func(g segment, x Uint128) int {
		if g.first.Cmp(x) <= 0 {
			return -1
		}
		return 1
	})
	if i == 0 || s.segs[i-1].last.less(x) {
		return Uint128{}, false
	}
	g := s.segs[i-1]
	o, _ := g.off.add(x.sub(g.first))
	return o, true
}

// addr returns the address at offset o < size.
func (s *space) addr(o Uint128) netip.Addr {
	i, _ := slices.BinarySearchFunc(s.segs, o, func(g segment, o Uint128) int {
		if g.off.Cmp(o) <= 0 {
			return -1
		}
		return 1
	})
	g := s.segs[i-1]
	x, _ := g.first.add(o.sub(g.off))
	return s.slotAddr(x)
}

func (s *space) full() bool { return s.size == u128(s.used) }

// nextFree returns the first free offset at or after the cursor, wrapping around once. It
// looks at no more than two runs of taken offsets, because runs are maximal: the offset just
// after a run is free unless it is past the end.
func (s *space) nextFree() (Uint128, bool) {
	if s.full() {
		return Uint128{}, false
	}
	c := s.cursor
	if !c.less(s.size) {
		c = Uint128{}
	}
	if end, ok := s.taken.containing(c); ok {
		c = end.inc()
		if c == s.size {
			c = Uint128{}
			if end, ok := s.taken.containing(c); ok {
				c = end.inc()
			}
		}
	}
	return c, true
}

// take marks a (a usable address of the space) in use; advance moves the cursor past it.
func (s *space) take(a netip.Addr, advance bool) {
	o, ok := s.offset(a)
	if !ok {
		panic("allocator: take of an address outside the space: " + a.String())
	}
	if s.taken.add(o) {
		s.used++
	}
	if advance {
		s.cursor = o.inc()
	}
}

// free marks a free.
func (s *space) free(a netip.Addr) {
	if o, ok := s.offset(a); ok && s.taken.remove(o) {
		s.used--
	}
}

func (s *space) counts() FamilyCounts {
	u := u128(s.used)
	return FamilyCounts{Size: s.size, Assigned: u, Available: s.size.sub(u)}
}
