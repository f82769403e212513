package allocator

// intervalSet is an ordered set of disjoint, maximal (never adjacent) inclusive intervals of
// 128-bit offsets, kept in a treap keyed by interval start. Adding or removing one offset, and
// finding the interval containing an offset, cost O(log r) expected, where r is the number of
// intervals (at most the number of offsets in the set, usually far fewer).
//
// Priorities come from a counter-based generator seeded with a constant, so the same sequence
// of operations always builds the same tree.
type intervalSet struct {
	root *ivNode
	seed uint64
	runs int // number of intervals
	// spare is a node kept from the last deletion, to spare the garbage collector the
	// churn of a run appearing and disappearing on every assign and release.
	spare *ivNode
}

func (s *intervalSet) newNode(start, end Uint128) *ivNode {
	n := s.spare
	if n == nil {
		n = new(ivNode)
	}
	s.spare = nil
	*n = ivNode{start: start, end: end, prio: s.nextPrio()}
	return n
}

// delete removes the run starting at key, which must exist.
func (s *intervalSet) delete(key Uint128) {
	var removed *ivNode
	s.root, removed = treapDelete(s.root, key)
	s.spare = removed
	s.runs--
}

type ivNode struct {
	start, end  Uint128
	prio        uint64
	left, right *ivNode
}

func (s *intervalSet) nextPrio() uint64 {
	s.seed += 0x9e3779b97f4a7c15
	z := s.seed
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// floor returns the interval with the greatest start <= x, or nil.
func (s *intervalSet) floor(x Uint128) *ivNode {
	var best *ivNode
	for n := s.root; n != nil; {
		if n.start.Cmp(x) <= 0 {
			best = n
			n = n.right
		} else {
			n = n.left
		}
	}
	return best
}

// around returns the interval with the greatest start <= x and the one with the least
// start > x, each possibly nil, in one descent.
func (s *intervalSet) around(x Uint128) (lo, hi *ivNode) {
	for n := s.root; n != nil; {
		if n.start.Cmp(x) <= 0 {
			lo = n
			n = n.right
		} else {
			hi = n
			n = n.left
		}
	}
	return lo, hi
}

// containing returns the interval that contains x, or nil.
func (s *intervalSet) containing(x Uint128) *ivNode {
	if n := s.floor(x); n != nil && x.Cmp(n.end) <= 0 {
		return n
	}
	return nil
}

func (s *intervalSet) contains(x Uint128) bool { return s.containing(x) != nil }

// add inserts x and reports whether it was absent.
func (s *intervalSet) add(x Uint128) bool {
	l, r := s.around(x)
	if l != nil && x.Cmp(l.end) <= 0 {
		return false
	}
	if r != nil && r.start != x.inc() {
		r = nil // not adjacent
	}
	joinLeft := l != nil && l.end.inc() == x
	switch {
	case joinLeft && r != nil:
		l.end = r.end
		s.delete(r.start)
	case joinLeft:
		l.end = x
	case r != nil:
		// Moving the key down to x keeps the tree ordered: nothing lies between x and r.start.
		r.start = x
	default:
		s.root = treapInsert(s.root, s.newNode(x, x))
		s.runs++
	}
	return true
}

// remove deletes x and reports whether it was present.
func (s *intervalSet) remove(x Uint128) bool {
	n := s.containing(x)
	if n == nil {
		return false
	}
	switch {
	case n.start == n.end:
		s.delete(n.start)
	case x == n.start:
		n.start = x.inc()
	case x == n.end:
		n.end = x.dec()
	default:
		end := n.end
		n.end = x.dec()
		s.root = treapInsert(s.root, s.newNode(x.inc(), end))
		s.runs++
	}
	return true
}

// each calls f for every interval in ascending order.
func (s *intervalSet) each(f func(start, end Uint128)) {
	var walk func(n *ivNode)
	walk = func(n *ivNode) {
		if n == nil {
			return
		}
		walk(n.left)
		f(n.start, n.end)
		walk(n.right)
	}
	walk(s.root)
}

func treapInsert(t, n *ivNode) *ivNode {
	if t == nil {
		return n
	}
	if n.prio > t.prio {
		n.left, n.right = treapSplit(t, n.start)
		return n
	}
	if n.start.less(t.start) {
		t.left = treapInsert(t.left, n)
	} else {
		t.right = treapInsert(t.right, n)
	}
	return t
}

// treapSplit splits t into the nodes with start < key and the rest.
func treapSplit(t *ivNode, key Uint128) (l, r *ivNode) {
	if t == nil {
		return nil, nil
	}
	if t.start.less(key) {
		t.right, r = treapSplit(t.right, key)
		return t, r
	}
	l, t.left = treapSplit(t.left, key)
	return l, t
}

// treapDelete removes the node with start key from t and returns the new root and the node.
func treapDelete(t *ivNode, key Uint128) (root, removed *ivNode) {
	if t == nil {
		return nil, nil
	}
	switch c := key.Cmp(t.start); {
	case c == 0:
		return treapMerge(t.left, t.right), t
	case c < 0:
		t.left, removed = treapDelete(t.left, key)
	default:
		t.right, removed = treapDelete(t.right, key)
	}
	return t, removed
}

func treapMerge(l, r *ivNode) *ivNode {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		l.right = treapMerge(l.right, r)
		return l
	default:
		r.left = treapMerge(l, r.left)
		return r
	}
}
