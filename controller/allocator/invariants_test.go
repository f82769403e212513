package allocator

import (
	"fmt"
	"net/netip"
	"slices"
)

// checkInvariants checks the allocator's state against itself and, for small pools, against a
// brute-force recount of the pools' addresses.
func checkInvariants(a *Allocator) error {
	for key, st := range a.services {
		if st.svc.Key != key {
			return fmt.Errorf("service %q stored under key %q", st.svc.Key, key)
		}
		if !st.ips[0].IsValid() && !st.ips[1].IsValid() {
			return fmt.Errorf("service %s is stored but holds nothing", key)
		}
		for i, ip := range st.ips {
			if !ip.IsValid() {
				continue
			}
			if FamilyOf(ip).index() != i {
				return fmt.Errorf("service %s holds %s in the wrong family slot", key, ip)
			}
			if !slices.Contains(st.svc.Families, FamilyOf(ip)) {
				return fmt.Errorf("service %s holds %s, but its families are %v", key, ip, st.svc.Families)
			}
			is := a.ips[ip]
			if is == nil || st.is[i] != is || !slices.Contains(is.holders, st) {
				return fmt.Errorf("service %s holds %s, which does not list it", key, ip)
			}
			if err := mayUse(is.pool, &st.svc); err != nil {
				return fmt.Errorf("service %s holds %s: %v", key, ip, err)
			}
			if req := st.svc.RequestedIPs; len(req) > 0 && !slices.Contains(req, ip) {
				return fmt.Errorf("service %s holds %s but requests %v", key, ip, req)
			}
		}
	}
	perSpace := map[*space]uint64{}
	for ip, is := range a.ips {
		if len(is.holders) == 0 {
			return fmt.Errorf("%s has no holder", ip)
		}
		if !slices.IsSortedFunc(is.holders, func(x, y *serviceState) int { return compareStrings(x.svc.Key, y.svc.Key) }) {
			return fmt.Errorf("%s: holders not sorted", ip)
		}
		for i, h := range is.holders {
			if a.services[h.svc.Key] != h || h.ips[FamilyOf(ip).index()] != ip {
				return fmt.Errorf("%s lists %s, which does not hold it", ip, h.svc.Key)
			}
			if h.svc.SharingKey != is.key {
				return fmt.Errorf("%s is indexed under key %q but %s has key %q", ip, is.key, h.svc.Key, h.svc.SharingKey)
			}
			for _, o := range is.holders[:i] {
				if err := checkShare(&h.svc, ip, &ipState{holders: []*serviceState{o}}); err != nil {
					return fmt.Errorf("%s held by incompatible services: %v", ip, err)
				}
			}
		}
		if p := a.pools.poolOf(ip); p != is.pool {
			return fmt.Errorf("%s recorded in pool %s, found in %v", ip, is.pool.Name, p)
		}
		sp := is.pool.spaces[FamilyOf(ip).index()]
		o, ok := sp.offset(ip)
		if !ok || !sp.taken.contains(o) || sp.addr(o) != ip {
			return fmt.Errorf("%s not taken in the space of pool %s", ip, is.pool.Name)
		}
		perSpace[sp]++
		if is.key != "" {
			if _, found := slices.BinarySearchFunc(a.shared[is.key], ip, netip.Addr.Compare); !found {
				return fmt.Errorf("%s missing from the index of sharing key %q", ip, is.key)
			}
		}
	}
	for key, l := range a.shared {
		if len(l) == 0 || !slices.IsSortedFunc(l, netip.Addr.Compare) {
			return fmt.Errorf("index of sharing key %q is empty or unsorted: %v", key, l)
		}
		for _, ip := range l {
			if is := a.ips[ip]; is == nil || is.key != key {
				return fmt.Errorf("index of sharing key %q lists %s wrongly", key, ip)
			}
		}
	}
	for _, p := range a.pools.sorted {
		for _, sp := range p.spaces {
			if err := checkSpace(sp, perSpace[sp]); err != nil {
				return fmt.Errorf("pool %s %s: %v", p.Name, sp.family, err)
			}
		}
		if err := recount(a, p); err != nil {
			return err
		}
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkSpace(sp *space, used uint64) error {
	if sp.used != used {
		return fmt.Errorf("used %d, %d addresses held", sp.used, used)
	}
	var n Uint128
	var prev *Uint128
	var bad error
	runs := 0
	sp.taken.each(func(s, e Uint128) {
		runs++
		if e.less(s) || !e.less(sp.size) {
			bad = fmt.Errorf("bad run [%s, %s] in space of size %s", s, e, sp.size)
		}
		if prev != nil && !prev.inc().less(s) {
			bad = fmt.Errorf("run [%s, %s] overlaps or touches the previous one ending %s", s, e, *prev)
		}
		n, _ = n.add(e.sub(s).inc())
		e2 := e
		prev = &e2
	})
	if bad != nil {
		return bad
	}
	if err := sp.taken.check(); err != nil {
		return err
	}
	if runs != sp.taken.runs {
		return fmt.Errorf("%d runs, counted %d", runs, sp.taken.runs)
	}
	if n != u128(used) {
		return fmt.Errorf("runs hold %s offsets, %d addresses held", n, used)
	}
	return nil
}

// recount counts the addresses of small pools one by one and compares with Counts.
func recount(a *Allocator, p *poolState) error {
	var want PoolCounts
	want.Pool = p.Name
	for _, r := range p.Ranges {
		if n := addrValue(r.Last).sub(addrValue(r.First)); n.Hi != 0 || n.Lo > 1<<16 {
			return nil // too big to enumerate
		}
		fc := &want.IPv4
		if r.First.Is6() {
			fc = &want.IPv6
		}
		for ip := r.First; ; ip = ip.Next() {
			buggy := ip.Is4() && (ip.As4()[3] == 0 || ip.As4()[3] == 255)
			if !(p.AvoidBuggyIPs && buggy) {
				fc.Size, _ = fc.Size.add(u128(1))
				if a.ips[ip] != nil {
					fc.Assigned, _ = fc.Assigned.add(u128(1))
				}
			}
			if ip == r.Last {
				break
			}
		}
	}
	want.IPv4.Available = want.IPv4.Size.sub(want.IPv4.Assigned)
	want.IPv6.Available = want.IPv6.Size.sub(want.IPv6.Assigned)
	if got, _ := a.PoolCounts(p.Name); got != want {
		return fmt.Errorf("pool %s: counts %+v, recount %+v", p.Name, got, want)
	}
	return nil
}
