package ipset

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkSet verifies s's structure, that its runs lie below size and that they hold used offsets.
func checkSet(s *Set, size Uint128, used uint64) error {
	if err := s.Check(); err != nil {
		return err
	}
	var n Uint128
	var bad error
	s.Each(func(start, end Uint128) {
		if !end.Less(size) && bad == nil {
			bad = fmt.Errorf("run [%s, %s] in space of size %s", start, end, size)
		}
		n, _ = n.Add(end.Sub(start).Inc())
	})
	if bad != nil {
		return bad
	}
	if n != From64(used) {
		return fmt.Errorf("runs hold %s offsets, want %d", n, used)
	}
	return nil
}

// TestSet compares the run set with a plain set under random operations.
func TestSet(t *testing.T) {
	for _, hi := range []uint64{0, 1 << 40} {
		r := rand.New(rand.NewPCG(1, hi))
		var s Set
		model := map[uint64]bool{}
		for i := 0; i < 20000; i++ {
			x := r.Uint64N(300)
			u := Uint128{hi, x}
			if r.IntN(2) == 0 {
				if got := s.Add(u); got != !model[x] {
					t.Fatalf("add(%d) = %v", x, got)
				}
				model[x] = true
			} else {
				if got := s.Remove(u); got != model[x] {
					t.Fatalf("remove(%d) = %v", x, got)
				}
				delete(model, x)
			}
			if i%97 == 0 {
				for y := uint64(0); y < 300; y++ {
					if s.Contains(Uint128{hi, y}) != model[y] {
						t.Fatalf("step %d: contains(%d) wrong", i, y)
					}
				}
				if err := checkSet(&s, Uint128{hi + 1, 0}, uint64(len(model))); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
		}
	}
	// The ends of the 128-bit range.
	var s Set
	max := Uint128{^uint64(0), ^uint64(0)}
	for _, u := range []Uint128{max, max.Dec(), {}, From64(1)} {
		s.Add(u)
	}
	if s.Runs() != 2 || !s.Contains(max) || s.Contains(From64(2)) {
		t.Errorf("ends: runs %d", s.Runs())
	}
	s.Remove(max.Dec())
	if s.Runs() != 2 || !s.Contains(max) || s.Contains(max.Dec()) {
		t.Errorf("ends after remove: runs %d", s.Runs())
	}
}

// TestSetBlocks drives the run set through many block splits, merges and removals:
// random offsets in a wide range, then ascending and descending runs of separate offsets.
func TestSetBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var s Set
	model := map[uint64]bool{}
	const width = 20000
	verify := func(step int) {
		t.Helper()
		for y := uint64(0); y < width; y++ {
			if s.Contains(From64(y)) != model[y] {
				t.Fatalf("step %d: contains(%d) wrong", step, y)
			}
		}
		if err := checkSet(&s, From64(width), uint64(len(model))); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	for i := 0; i < 60000; i++ {
		x := r.Uint64N(width)
		// Bias towards adding early and removing late, so the set grows to thousands of runs
		// and then shrinks to none.
		if (i < 30000) == (r.IntN(4) != 0) {
			if got := s.Add(From64(x)); got != !model[x] {
				t.Fatalf("add(%d) = %v", x, got)
			}
			model[x] = true
		} else {
			if got := s.Remove(From64(x)); got != model[x] {
				t.Fatalf("remove(%d) = %v", x, got)
			}
			delete(model, x)
		}
		if i%4999 == 0 {
			verify(i)
		}
	}
	for x := range uint64(width) {
		s.Remove(From64(x))
		delete(model, x)
	}
	verify(-1)
	for x := uint64(0); x < width; x += 2 {
		s.Add(From64(x))
		model[x] = true
	}
	verify(-2)
	if want := (width/2 + blockCap - 1) / blockCap; len(s.blocks) != want {
		t.Errorf("in-order adds: %d blocks, want %d (full blocks)", len(s.blocks), want)
	}
	for x := uint64(width - 1); x < width; x -= 2 {
		s.Add(From64(x))
		model[x] = true
	}
	verify(-3)
	if s.Runs() != 1 {
		t.Errorf("all added: %d runs", s.Runs())
	}
	for x := uint64(width - 2); x < width; x -= 2 {
		s.Remove(From64(x))
		delete(model, x)
	}
	verify(-4)
}
