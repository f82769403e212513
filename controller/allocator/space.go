package allocator

import (
	"github.com/herald-lb/herald/controller/allocator/ipset"

	"net/netip"
	"slices"
)

// space is the addresses of one family in one pool, numbered 0..size-1 ("offsets") across the
// pool's ranges in address order, with the addresses skipped by AvoidBuggyIPs or listed in
// Pool.Skip left out of the numbering altogether. Offsets in use are kept as runs in an
// ipset.Set.
//
// Without AvoidBuggyIPs an address's "slot" is its integer value; with it, an IPv4 address
// a.b.c.d (d in 1..254) has slot (a.b.c)*254 + d-1, so the usable addresses of a range form
// one contiguous run of slots and the buggy addresses cost nothing to skip or to count. An
// address of Pool.Skip cuts its range in two segments (or, at an end of the range, shortens
// it), so skipped addresses cost one segment each, whatever the size of the range.
//
// A skipped address may still be held: a Service restored with it (Reserve) keeps it, and a
// pool edit that starts skipping an address does not take it away. Such addresses are outside
// the numbering, so the search never finds them; they are only counted, in outside.
type space struct {
	family     Family
	avoidBuggy bool // only ever true for IPv4
	segs       []segment
	size       Uint128 // usable addresses
	used       uint64  // offsets in use
	outside    uint64  // skipped addresses in use
	taken      ipset.Set
	// cursor is the offset where the search for a free address starts: just after the last
	// address handed out automatically (next fit), so a released address is not reused at
	// once while any other is free.
	cursor Uint128
}

// segment is one range of the pool, in slots, placed at offset off.
type segment struct {
	off, first, last Uint128
}

// maxU128 is 2^128-1.
var maxU128 = Uint128{Hi: ^uint64(0), Lo: ^uint64(0)}

// newSpace builds the space of ranges, which must be of family f, sorted and disjoint, without
// the addresses of skip, which must be of family f, sorted, and each inside one of ranges. It
// fails only when the ranges hold 2^128 addresses (skipped ones included, so that the counts,
// which include skipped addresses in use, cannot overflow either).
func newSpace(f Family, avoidBuggy bool, ranges []Range, skip []netip.Addr) (*space, bool) {
	s := &space{family: f, avoidBuggy: avoidBuggy && f == IPv4}
	var total Uint128
	i := 0
	for _, r := range ranges {
		n := addrValue(r.Last).Sub(addrValue(r.First))
		var carry bool
		if total, carry = total.Add(n); carry || total == maxU128 {
			return nil, false
		}
		total = total.Inc()
		first, open := r.First, true
		for i < len(skip) && skip[i].Compare(r.Last) <= 0 {
			x := skip[i]
			i++
			if !open || x.Less(first) {
				continue // a duplicate
			}
			if first.Less(x) {
				s.addSegment(Range{First: first, Last: x.Prev()})
			}
			if x == r.Last {
				open = false
			} else {
				first = x.Next()
			}
		}
		if open {
			s.addSegment(Range{First: first, Last: r.Last})
		}
	}
	return s, true
}

// addSegment numbers the usable addresses of r after those numbered so far. The caller
// guarantees that the space stays below 2^128 addresses.
func (s *space) addSegment(r Range) {
	first, last, ok := s.usable(r)
	if !ok {
		return
	}
	fs, _ := s.slot(first)
	ls, _ := s.slot(last)
	s.segs = append(s.segs, segment{off: s.size, first: fs, last: ls})
	s.size, _ = s.size.Add(ls.Sub(fs).Inc())
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
	return valueAddr(ipset.From64(lo), IPv4), valueAddr(ipset.From64(hi), IPv4), true
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
	return ipset.From64((v.Lo>>8)*254 + low - 1), true
}

func (s *space) slotAddr(x Uint128) netip.Addr {
	if !s.avoidBuggy {
		return valueAddr(x, s.family)
	}
	return valueAddr(ipset.From64((x.Lo/254)<<8|(x.Lo%254+1)), IPv4)
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
	if i == 0 || s.segs[i-1].last.Less(x) {
		return Uint128{}, false
	}
	g := s.segs[i-1]
	o, _ := g.off.Add(x.Sub(g.first))
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
	x, _ := g.first.Add(o.Sub(g.off))
	return s.slotAddr(x)
}

func (s *space) full() bool { return s.size == ipset.From64(s.used) }

// nextFree returns the first free offset at or after the cursor, wrapping around once. It
// looks at no more than two runs of taken offsets, because runs are maximal: the offset just
// after a run is free unless it is past the end.
func (s *space) nextFree() (Uint128, bool) {
	if s.full() {
		return Uint128{}, false
	}
	c := s.cursor
	if !c.Less(s.size) {
		c = Uint128{}
	}
	if end, ok := s.taken.Containing(c); ok {
		c = end.Inc()
		if c == s.size {
			c = Uint128{}
			if end, ok := s.taken.Containing(c); ok {
				c = end.Inc()
			}
		}
	}
	return c, true
}

// take marks a, an address of the pool's ranges that nobody holds, in use; advance moves the
// cursor past it. A skipped address is only counted, in outside.
func (s *space) take(a netip.Addr, advance bool) {
	o, ok := s.offset(a)
	if !ok {
		if advance {
			panic("allocator: the search found an address outside the numbering: " + a.String())
		}
		s.outside++
		return
	}
	if s.taken.Add(o) {
		s.used++
	}
	if advance {
		s.cursor = o.Inc()
	}
}

// free marks a, taken before, free. A skipped address leaves the counts and is skipped again.
func (s *space) free(a netip.Addr) {
	o, ok := s.offset(a)
	switch {
	case ok:
		if s.taken.Remove(o) {
			s.used--
		}
	case s.outside > 0:
		s.outside--
	}
}

func (s *space) counts() FamilyCounts {
	u := ipset.From64(s.used)
	size, _ := s.size.Add(ipset.From64(s.outside)) // cannot carry: see newSpace
	assigned, _ := u.Add(ipset.From64(s.outside))
	return FamilyCounts{Size: size, Assigned: assigned, Available: s.size.Sub(u)}
}
