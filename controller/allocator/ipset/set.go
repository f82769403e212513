package ipset

import (
	"fmt"
	"slices"
)

// blockCap is the number of runs a block holds: a runBlock is then just under 2 KiB, one
// size class of the Go heap, and a search inside it takes six comparisons.
const blockCap = 63

// Set is an ordered set of disjoint, maximal (never adjacent) inclusive intervals
// ("runs") of 128-bit offsets. It is a B+tree of height two: the runs, in order, are cut into
// blocks of at most blockCap, and a sorted index holds the first start of every block.
// Finding the run containing an offset, or where one would go, is a binary search in the
// index and one in a block; the index search is skipped when the offset falls in the block
// used last, which next fit makes the common case. Adding or removing an offset changes
// one block in place, plus the index when a block splits, merges or empties.
//
// Blocks hold no pointers and the index holds one per block, so the garbage collector has
// almost nothing to scan, and memory is about 32 bytes per run for a full block (blocks fill
// completely when runs are appended in order, as a restore in address order does, and are at
// least half full otherwise), independent of the size of the space.
type Set struct {
	firsts []Uint128   // firsts[i] is blocks[i].start[0]
	blocks []*runBlock // in order; none is empty
	runs   int         // number of intervals
	hint   int         // the block used last, a guess for the next search
	// spare is the block dropped last, kept for the next one needed: a run appearing and
	// disappearing on every assign and release then costs the garbage collector nothing.
	spare *runBlock
}

// runBlock is a sorted array of runs.
type runBlock struct {
	n          int
	start, end [blockCap]Uint128
}

// floor returns the index of the last run of b starting at or before x, or -1.
func (b *runBlock) floor(x Uint128) int {
	lo, hi := 0, b.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.Less(b.start[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// block returns the index of the block where x belongs, the last one whose first run
// starts at or before x, or 0 when x is before them all; -1 when the set is empty.
func (s *Set) block(x Uint128) int {
	nb := len(s.firsts)
	if i := s.hint; i < nb && (i == 0 || !x.Less(s.firsts[i])) && (i+1 == nb || x.Less(s.firsts[i+1])) {
		return i
	}
	if nb == 0 {
		return -1
	}
	lo, hi := 1, nb
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.Less(s.firsts[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	s.hint = lo - 1
	return lo - 1
}

// find returns where x is: the block it belongs in and the index there of the last run
// starting at or before x (-1 when none does, which happens only in block 0).
func (s *Set) find(x Uint128) (bi, j int) {
	bi = s.block(x)
	if bi < 0 {
		return -1, -1
	}
	return bi, s.blocks[bi].floor(x)
}

// Containing returns the end of the interval that contains x, and whether there is one.
func (s *Set) Containing(x Uint128) (end Uint128, ok bool) {
	bi, j := s.find(x)
	if j < 0 {
		return Uint128{}, false
	}
	b := s.blocks[bi]
	if b.end[j].Less(x) {
		return Uint128{}, false
	}
	return b.end[j], true
}

// Contains reports whether x is in the set.
func (s *Set) Contains(x Uint128) bool {
	_, ok := s.Containing(x)
	return ok
}

// Add inserts x and reports whether it was absent.
func (s *Set) Add(x Uint128) bool {
	bi, j := s.find(x)
	if bi < 0 {
		b := s.newBlock()
		b.n, b.start[0], b.end[0] = 1, x, x
		s.blocks = append(s.blocks, b)
		s.firsts = append(s.firsts, x)
		s.runs++
		return true
	}
	b := s.blocks[bi]
	if j >= 0 && !b.end[j].Less(x) {
		return false
	}
	// x lies after run j (if any) and before the next run (if any), in block b or the next.
	joinLeft := j >= 0 && b.end[j].Inc() == x
	rb, rj := bi, j+1
	if rj == b.n {
		rb, rj = bi+1, 0
	}
	joinRight := rb < len(s.blocks) && s.blocks[rb].start[rj] == x.Inc()
	switch {
	case joinLeft && joinRight:
		b.end[j] = s.blocks[rb].end[rj]
		s.deleteAt(rb, rj)
	case joinLeft:
		b.end[j] = x
	case joinRight:
		// Moving the start down to x keeps the order: nothing lies between x and the run.
		s.blocks[rb].start[rj] = x
		if rj == 0 {
			s.firsts[rb] = x
		}
	default:
		s.insertAt(bi, j+1, x, x)
	}
	return true
}

// Remove deletes x and reports whether it was present.
func (s *Set) Remove(x Uint128) bool {
	bi, j := s.find(x)
	if j < 0 {
		return false
	}
	b := s.blocks[bi]
	start, end := b.start[j], b.end[j]
	switch {
	case end.Less(x):
		return false
	case start == end:
		s.deleteAt(bi, j)
	case x == start:
		b.start[j] = x.Inc()
		if j == 0 {
			s.firsts[bi] = b.start[0]
		}
	case x == end:
		b.end[j] = x.Dec()
	default:
		b.end[j] = x.Dec()
		s.insertAt(bi, j+1, x.Inc(), end)
	}
	return true
}

// insertAt inserts the run [start, end] at index j of block bi, splitting the block when it
// is full.
func (s *Set) insertAt(bi, j int, start, end Uint128) {
	s.runs++
	b := s.blocks[bi]
	if b.n == blockCap && j == blockCap && bi+1 < len(s.blocks) && s.blocks[bi+1].n < blockCap {
		// The run may as well start the next block, which has room.
		bi, j, b = bi+1, 0, s.blocks[bi+1]
	}
	if b.n == blockCap {
		nb := s.newBlock()
		// Appending at the very end leaves the full block full, so that runs added in order
		// fill blocks completely; otherwise the upper half moves to the new block.
		h := blockCap / 2
		if j == blockCap && bi == len(s.blocks)-1 {
			h = blockCap
		}
		nb.n = copy(nb.start[:], b.start[h:b.n])
		copy(nb.end[:], b.end[h:b.n])
		b.n = h
		s.blocks = slices.Insert(s.blocks, bi+1, nb)
		s.firsts = slices.Insert(s.firsts, bi+1, Uint128{})
		if j > h || (j == h && h == blockCap) {
			bi, j, b = bi+1, j-h, nb
		}
	}
	copy(b.start[j+1:b.n+1], b.start[j:b.n])
	copy(b.end[j+1:b.n+1], b.end[j:b.n])
	b.start[j], b.end[j] = start, end
	b.n++
	s.firsts[bi] = b.start[0]
	if bi+1 < len(s.blocks) {
		s.firsts[bi+1] = s.blocks[bi+1].start[0]
	}
}

// deleteAt removes run j of block bi, dropping the block when it empties and merging it
// with a neighbour when both fit in half a block.
func (s *Set) deleteAt(bi, j int) {
	s.runs--
	b := s.blocks[bi]
	copy(b.start[j:], b.start[j+1:b.n])
	copy(b.end[j:], b.end[j+1:b.n])
	b.n--
	switch {
	case b.n == 0:
		s.dropBlock(bi)
		return
	case j == 0:
		s.firsts[bi] = b.start[0]
	}
	if bi+1 < len(s.blocks) && b.n+s.blocks[bi+1].n <= blockCap/2 {
		s.mergeNext(bi)
	} else if bi > 0 && b.n+s.blocks[bi-1].n <= blockCap/2 {
		s.mergeNext(bi - 1)
	}
}

// mergeNext moves the runs of block bi+1 to the end of block bi, which has room for them.
func (s *Set) mergeNext(bi int) {
	b, nx := s.blocks[bi], s.blocks[bi+1]
	copy(b.start[b.n:], nx.start[:nx.n])
	copy(b.end[b.n:], nx.end[:nx.n])
	b.n += nx.n
	s.dropBlock(bi + 1)
}

func (s *Set) newBlock() *runBlock {
	if b := s.spare; b != nil {
		s.spare = nil
		return b
	}
	return new(runBlock)
}

func (s *Set) dropBlock(bi int) {
	s.spare = s.blocks[bi]
	s.spare.n = 0
	s.blocks = slices.Delete(s.blocks, bi, bi+1)
	s.firsts = slices.Delete(s.firsts, bi, bi+1)
}

// Runs returns the number of intervals.
func (s *Set) Runs() int { return s.runs }

// Each calls f for every interval in ascending order.
func (s *Set) Each(f func(start, end Uint128)) {
	for _, b := range s.blocks {
		for j := range b.n {
			f(b.start[j], b.end[j])
		}
	}
}

// Check verifies the structure of the index and the blocks, and that the intervals are in
// order, disjoint and never adjacent, for tests.
func (s *Set) Check() error {
	if len(s.firsts) != len(s.blocks) {
		return fmt.Errorf("%d index entries for %d blocks", len(s.firsts), len(s.blocks))
	}
	runs := 0
	for i, b := range s.blocks {
		switch {
		case b.n < 1 || b.n > blockCap:
			return fmt.Errorf("block %d holds %d runs", i, b.n)
		case s.firsts[i] != b.start[0]:
			return fmt.Errorf("block %d starts at %s, index says %s", i, b.start[0], s.firsts[i])
		case i > 0 && b.n+s.blocks[i-1].n <= blockCap/2:
			return fmt.Errorf("blocks %d and %d hold %d and %d runs: they should have merged", i-1, i, s.blocks[i-1].n, b.n)
		}
		runs += b.n
	}
	if runs != s.runs {
		return fmt.Errorf("blocks hold %d runs, counted %d", runs, s.runs)
	}
	var bad error
	var prev *Uint128
	s.Each(func(start, end Uint128) {
		switch {
		case bad != nil:
		case end.Less(start):
			bad = fmt.Errorf("run [%s, %s] ends before it starts", start, end)
		case prev != nil && !prev.Inc().Less(start):
			bad = fmt.Errorf("run [%s, %s] overlaps or touches the previous one ending %s", start, end, *prev)
		}
		e := end
		prev = &e
	})
	return bad
}
