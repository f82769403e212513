package allocator

import (
	"github.com/herald-lb/herald/controller/allocator/ipset"

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
			if !slices.Contains(a.holders(ip), st) {
				return fmt.Errorf("service %s holds %s, which does not list it", key, ip)
			}
			if st.pool[i] == nil {
				return fmt.Errorf("service %s holds %s in no pool", key, ip)
			}
			if err := mayUse(st.pool[i], &st.svc); err != nil {
				return fmt.Errorf("service %s holds %s: %w", key, ip, err)
			}
			if req := st.svc.RequestedIPs; len(req) > 0 && !slices.Contains(req, ip) {
				return fmt.Errorf("service %s holds %s but requests %v", key, ip, req)
			}
		}
	}
	perSpace := map[*space]uint64{}
	perOutside := map[*space]uint64{}
	for k, l := range a.multi {
		if len(l) < 2 || a.ips[k] != l[0] {
			return fmt.Errorf("address %s: %d holders listed, first %v", k, len(l), a.ips[k])
		}
	}
	for k, first := range a.ips {
		if first == nil {
			return fmt.Errorf("address %s has no holder", k)
		}
		var ip netip.Addr
		for _, x := range first.ips {
			if x.IsValid() && addrKey(x) == k {
				ip = x
			}
		}
		if !ip.IsValid() {
			return fmt.Errorf("address %s is listed for %s, which does not hold it", k, first.svc.Key)
		}
		f := FamilyOf(ip).index()
		holders := a.holders(ip)
		if !slices.IsSortedFunc(holders, func(x, y *serviceState) int { return compareStrings(x.svc.Key, y.svc.Key) }) {
			return fmt.Errorf("%s: holders not sorted", ip)
		}
		pool, key := first.pool[f], first.svc.SharingKey
		for i, h := range holders {
			if a.services[h.svc.Key] != h || h.ips[f] != ip {
				return fmt.Errorf("%s lists %s, which does not hold it", ip, h.svc.Key)
			}
			if h.svc.SharingKey != key || h.pool[f] != pool {
				return fmt.Errorf("%s: holders %s and %s disagree on the sharing key (%q, %q) or pool", ip, first.svc.Key, h.svc.Key, key, h.svc.SharingKey)
			}
			for _, o := range holders[:i] {
				if err := checkShare(&h.svc, ip, []*serviceState{o}); err != nil {
					return fmt.Errorf("%s held by incompatible services: %w", ip, err)
				}
			}
		}
		if p := a.pools.poolOf(ip); p != pool {
			return fmt.Errorf("%s recorded in pool %s, found in %v", ip, pool.Name, p)
		}
		sp := pool.spaces[f]
		if o, ok := sp.offset(ip); ok {
			if !sp.taken.Contains(o) || sp.addr(o) != ip {
				return fmt.Errorf("%s not taken in the space of pool %s", ip, pool.Name)
			}
			perSpace[sp]++
		} else {
			// A skipped address, held since before the pool skipped it: in the pool's
			// ranges (poolOf above) but outside the numbering.
			if buggy := pool.AvoidBuggyIPs && isBuggy(ip); !buggy && !slices.Contains(pool.Skip, ip) {
				return fmt.Errorf("%s is outside the numbering of pool %s but not skipped", ip, pool.Name)
			}
			perOutside[sp]++
		}
		if key != "" {
			if _, found := slices.BinarySearchFunc(a.shared[key], ip, netip.Addr.Compare); !found {
				return fmt.Errorf("%s missing from the index of sharing key %q", ip, key)
			}
		}
	}
	for key, l := range a.shared {
		if len(l) == 0 || !slices.IsSortedFunc(l, netip.Addr.Compare) {
			return fmt.Errorf("index of sharing key %q is empty or unsorted: %v", key, l)
		}
		for _, ip := range l {
			if h := a.ips[addrKey(ip)]; h == nil || h.svc.SharingKey != key {
				return fmt.Errorf("index of sharing key %q lists %s wrongly", key, ip)
			}
		}
	}
	for _, p := range a.pools.sorted {
		for _, sp := range p.spaces {
			if sp.outside != perOutside[sp] {
				return fmt.Errorf("pool %s %s: %d skipped addresses counted in use, %d held", p.Name, sp.family, sp.outside, perOutside[sp])
			}
			if err := checkSpace(sp, perSpace[sp]); err != nil {
				return fmt.Errorf("pool %s %s: %w", p.Name, sp.family, err)
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
	sp.taken.Each(func(s, e Uint128) {
		runs++
		if e.Less(s) || !e.Less(sp.size) {
			bad = fmt.Errorf("bad run [%s, %s] in space of size %s", s, e, sp.size)
		}
		if prev != nil && !prev.Inc().Less(s) {
			bad = fmt.Errorf("run [%s, %s] overlaps or touches the previous one ending %s", s, e, *prev)
		}
		n, _ = n.Add(e.Sub(s).Inc())
		e2 := e
		prev = &e2
	})
	if bad != nil {
		return bad
	}
	if err := sp.taken.Check(); err != nil {
		return err
	}
	if runs != sp.taken.Runs() {
		return fmt.Errorf("%d runs, counted %d", runs, sp.taken.Runs())
	}
	if n != ipset.From64(used) {
		return fmt.Errorf("runs hold %s offsets, %d addresses held", n, used)
	}
	return nil
}

func isBuggy(ip netip.Addr) bool {
	return ip.Is4() && (ip.As4()[3] == 0 || ip.As4()[3] == 255)
}

// recount counts the addresses of small pools one by one and compares with Counts: the size
// is the addresses handed out plus the skipped addresses held, the assigned ones are those
// held.
func recount(a *Allocator, p *poolState) error {
	var want PoolCounts
	want.Pool = p.Name
	for _, r := range p.Ranges {
		if n := addrValue(r.Last).Sub(addrValue(r.First)); n.Hi != 0 || n.Lo > 1<<16 {
			return nil // too big to enumerate
		}
		fc := &want.IPv4
		if r.First.Is6() {
			fc = &want.IPv6
		}
		for ip := r.First; ; ip = ip.Next() {
			buggy := p.AvoidBuggyIPs && isBuggy(ip)
			handedOut := !buggy && !slices.Contains(p.Skip, ip)
			held := a.ips[addrKey(ip)] != nil
			if handedOut || held {
				fc.Size, _ = fc.Size.Add(ipset.From64(1))
			}
			if held {
				fc.Assigned, _ = fc.Assigned.Add(ipset.From64(1))
			}
			if ip == r.Last {
				break
			}
		}
	}
	want.IPv4.Available = want.IPv4.Size.Sub(want.IPv4.Assigned)
	want.IPv6.Available = want.IPv6.Size.Sub(want.IPv6.Assigned)
	if got, _ := a.PoolCounts(p.Name); got != want {
		return fmt.Errorf("pool %s: counts %+v, recount %+v", p.Name, got, want)
	}
	return nil
}
