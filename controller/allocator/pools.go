package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// poolState is a pool with its two address spaces.
type poolState struct {
	Pool
	spaces [2]*space       // by Family.index(); never nil, possibly empty
	skip   [2][]netip.Addr // Pool.Skip by Family.index(), sorted, without duplicates
}

// indexEntry maps one range to its pool, for finding the pool of an address.
type indexEntry struct {
	first, last Uint128
	r           Range
	pool        *poolState
}

// poolSet is a validated set of pools.
type poolSet struct {
	byName map[string]*poolState
	sorted []*poolState // by name
	// auto is the order of automatic assignment: restricted auto-assign pools by priority
	// then name, then unrestricted auto-assign pools by name. autoMatch is true when one of
	// them has a Match, so that the order must be filtered per Service.
	auto      []*poolState
	autoMatch bool
	index     [2][]indexEntry // per family, sorted by first address
}

// buildPools validates pools and builds their spaces. It reports every problem it finds.
func buildPools(pools []Pool) (*poolSet, error) {
	ps := &poolSet{byName: make(map[string]*poolState, len(pools))}
	var errs []error
	for _, in := range pools {
		if in.Name == "" {
			errs = append(errs, newErr(ErrInvalidPool, "a pool has an empty name"))
			continue
		}
		if _, dup := ps.byName[in.Name]; dup {
			errs = append(errs, newErr(ErrInvalidPool, "pool %q is given twice", in.Name))
			continue
		}
		p := &poolState{Pool: in}
		p.Ranges = slices.Clone(in.Ranges)
		var byFam [2][]Range
		for _, r := range in.Ranges {
			if err := checkRange(r); err != nil {
				errs = append(errs, newErr(ErrInvalidPool, "pool %q: range %s: %v", in.Name, r, err))
				continue
			}
			f := FamilyOf(r.First)
			byFam[f.index()] = append(byFam[f.index()], r)
		}
		p.Skip = slices.Clone(in.Skip)
		for _, f := range []Family{IPv4, IPv6} {
			slices.SortFunc(byFam[f.index()], func(x, y Range) int { return x.First.Compare(y.First) })
		}
		for _, a := range in.Skip {
			if err := checkSkip(a, byFam); err != nil {
				errs = append(errs, newErr(ErrInvalidPool, "pool %q: skipped address %s: %v", in.Name, a, err))
				continue
			}
			f := FamilyOf(a).index()
			p.skip[f] = append(p.skip[f], a)
		}
		for _, f := range []Family{IPv4, IPv6} {
			rs := byFam[f.index()]
			skip := p.skip[f.index()]
			slices.SortFunc(skip, netip.Addr.Compare)
			p.skip[f.index()] = slices.Compact(skip)
			sp, ok := newSpace(f, in.AvoidBuggyIPs, rs, p.skip[f.index()])
			if !ok {
				errs = append(errs, newErr(ErrInvalidPool, "pool %q holds 2^128 IPv6 addresses, more than the allocator counts", in.Name))
				sp = &space{family: f}
			}
			p.spaces[f.index()] = sp
			for _, r := range rs {
				ps.index[f.index()] = append(ps.index[f.index()], indexEntry{addrValue(r.First), addrValue(r.Last), r, p})
			}
		}
		ps.byName[in.Name] = p
		ps.sorted = append(ps.sorted, p)
	}
	slices.SortFunc(ps.sorted, func(x, y *poolState) int { return cmp.Compare(x.Name, y.Name) })
	var open []*poolState
	for _, p := range ps.sorted {
		switch {
		case !p.AutoAssign:
			continue
		case p.Restricted:
			ps.auto = append(ps.auto, p)
		default:
			open = append(open, p)
		}
		ps.autoMatch = ps.autoMatch || p.Match != nil
	}
	slices.SortStableFunc(ps.auto, func(x, y *poolState) int { return cmp.Compare(x.Priority, y.Priority) })
	ps.auto = append(ps.auto, open...)
	for i := range ps.index {
		idx := ps.index[i]
		slices.SortFunc(idx, func(x, y indexEntry) int { return x.first.Cmp(y.first) })
		for j := 1; j < len(idx); j++ {
			if prev := idx[j-1]; !prev.last.Less(idx[j].first) {
				if prev.pool == idx[j].pool {
					errs = append(errs, newErr(ErrInvalidPool, "pool %q: ranges %s and %s overlap", prev.pool.Name, prev.r, idx[j].r))
				} else {
					errs = append(errs, newErr(ErrInvalidPool, "pools %q and %q overlap: %s and %s", prev.pool.Name, idx[j].pool.Name, prev.r, idx[j].r))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ps, nil
}

// checkSkip checks that a, an address of Pool.Skip, is in one of ranges (by family, sorted).
func checkSkip(a netip.Addr, ranges [2][]Range) error {
	switch {
	case !a.IsValid():
		return errors.New("is invalid (zero)")
	case a.Zone() != "":
		return errors.New("has an IPv6 zone")
	case a.Is4In6():
		return fmt.Errorf("is an IPv4-mapped IPv6 address: write it as %s", a.Unmap())
	}
	rs := ranges[FamilyOf(a).index()]
	i, _ := slices.BinarySearchFunc(rs, a, func(r Range, a netip.Addr) int {
		if r.First.Compare(a) <= 0 {
			return -1
		}
		return 1
	})
	if i == 0 || rs[i-1].Last.Less(a) {
		return errors.New("is not in the pool's ranges")
	}
	return nil
}

// skipped reports whether ip is in p.Skip.
func (p *poolState) skipped(ip netip.Addr) bool {
	_, found := slices.BinarySearchFunc(p.skip[FamilyOf(ip).index()], ip, netip.Addr.Compare)
	return found
}

func checkRange(r Range) error {
	for _, a := range []netip.Addr{r.First, r.Last} {
		switch {
		case !a.IsValid():
			return errors.New("has an invalid (zero) address")
		case a.Zone() != "":
			return fmt.Errorf("%s has an IPv6 zone", a)
		case a.Is4In6():
			return fmt.Errorf("%s is an IPv4-mapped IPv6 address: write it as %s", a, a.Unmap())
		}
	}
	if r.First.Is4() != r.Last.Is4() {
		return errors.New("mixes IPv4 and IPv6")
	}
	if r.Last.Less(r.First) {
		return errors.New("the first address is after the last")
	}
	return nil
}

// poolOf returns the pool whose ranges contain ip, or nil.
func (ps *poolSet) poolOf(ip netip.Addr) *poolState {
	idx := ps.index[FamilyOf(ip).index()]
	v := addrValue(ip)
	i, _ := slices.BinarySearchFunc(idx, v, func(e indexEntry, v Uint128) int {
		if e.first.Cmp(v) <= 0 {
			return -1
		}
		return 1
	})
	if i == 0 || idx[i-1].last.Less(v) {
		return nil
	}
	return idx[i-1].pool
}
