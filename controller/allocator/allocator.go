package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Allocator hands out load-balancer addresses from pools. It is not safe for concurrent use;
// the reconciler serialises calls.
type Allocator struct {
	pools    *poolSet
	services map[string]*serviceState
	// ips maps every address in use (by addrKey) to its first holder by Service key; multi
	// lists, sorted by Service key, the holders of the addresses held by more than one.
	// Neither holds a pointer in its keys, and the common unshared address costs one entry.
	ips   map[Uint128]*serviceState
	multi map[Uint128][]*serviceState
	// shared lists, per sharing key, the addresses held under it, sorted.
	shared map[string][]netip.Addr
	// nsLabels holds one copy of the labels of each namespace that had a Service here, shared
	// by the descriptions of its Services: a cluster has thousands of Services in a few
	// namespaces, and a copy per Service was a third of the allocator's memory.
	nsLabels map[string]map[string]string

	// Buffers and spare objects that keep Services coming and going from feeding the
	// garbage collector, whose cost grows with the number of addresses held.
	scratch  Service
	ports    []Port
	fams     []Family
	spareSvc *serviceState
	one      [1]*serviceState // backing for the holders of an address held by one Service
}

// serviceState is a Service and the addresses it holds.
type serviceState struct {
	svc  Service       // the allocator's copy, as last passed to Assign or Reserve
	ips  [2]netip.Addr // by Family.index(); zero when none
	pool [2]*poolState // the pool of ips, nil when none
	// Backing arrays for svc.Ports and svc.Families when they are short: most Services have
	// one port, and room for one keeps the record in a smaller size class of the heap.
	portBuf [1]Port
	famBuf  [2]Family
}

// setSvc makes svc the description of st, copying its Ports and Families into st (or, for
// more ports than portBuf holds, into the array that held them before when it is big enough).
func (st *serviceState) setSvc(svc *Service) {
	ports := st.portBuf[:0:len(st.portBuf)]
	if prev := st.svc.Ports; len(svc.Ports) > cap(ports) {
		ports = nil
		if cap(prev) >= len(svc.Ports) {
			ports = prev[:0]
		}
	}
	st.svc = *svc
	st.svc.Ports = append(ports, svc.Ports...)
	st.svc.Families = append(st.famBuf[:0:len(st.famBuf)], svc.Families...)
}

// addrKey is the key of an address in the maps of addresses in use: its 16-byte form, with
// IPv4 addresses IPv4-mapped (IPv4-mapped IPv6 addresses are never in use), as an integer.
func addrKey(ip netip.Addr) Uint128 {
	v := addrValue(ip)
	if ip.Is4() {
		v.Lo |= 0xffff << 32
	}
	return v
}

// holders returns the Services holding ip, sorted by key, or nil when it is free. The slice
// is valid until the next call.
func (a *Allocator) holders(ip netip.Addr) []*serviceState {
	k := addrKey(ip)
	h := a.ips[k]
	if h == nil {
		return nil
	}
	if len(a.multi) > 0 {
		if l, ok := a.multi[k]; ok {
			return l
		}
	}
	a.one[0] = h
	return a.one[:]
}

// pick is an address chosen for a Service, not yet held.
type pick struct {
	ip    netip.Addr
	pool  *poolState
	fresh bool // a free address found by the search, rather than requested or shared
}

// picks holds up to two picks off the heap.
type picks struct {
	p [2]pick
	n int
}

func (ps *picks) add(p pick)   { ps.p[ps.n] = p; ps.n++ }
func (ps *picks) list() []pick { return ps.p[:ps.n] }
func (ps *picks) ok() bool     { return ps.n > 0 }

// New returns an Allocator over pools, holding no addresses. On start-up, call Reserve for
// every Service that already has addresses before calling Assign for any.
func New(pools []Pool) (*Allocator, error) {
	ps, err := buildPools(pools)
	if err != nil {
		return nil, fmt.Errorf("creating allocator: %w", err)
	}
	return &Allocator{
		pools:    ps,
		services: map[string]*serviceState{},
		ips:      map[Uint128]*serviceState{},
		multi:    map[Uint128][]*serviceState{},
		shared:   map[string][]netip.Addr{},
	}, nil
}

// Assign gives svc an address for each family it wants and lacks, and returns everything it
// holds. Addresses it already holds are kept while they stay valid for it: inside a pool it
// may use, equal to its requested address if any, of a wanted family, and compatible with the
// Services it shares them with. Invalid ones are released and reported in Result.Released.
//
// New addresses come from the requested addresses if the Service has any; otherwise from the
// pool of an address the Service already holds if any (so a dual-stack Service stays in one
// pool); otherwise from the first pool that has a free address, in this order: the requested
// pool; the eligible restricted auto-assign pools by Priority then name; the other eligible
// auto-assign pools by name. Within a pool, an address already held under the Service's
// sharing key is preferred when the Service can share it.
//
// RequireDualStack gets both families from one pool or no new address. PreferDualStack gets
// what the first pool (in the order above) that can give anything gives; families left
// without an address are listed in Result.Missing, and a later Assign adds them when that
// pool gains them. On error nothing new is assigned, but invalid addresses are still
// released, and the Result says so.
func (a *Allocator) Assign(in *Service) (Result, error) {
	svc, rq, err := a.normalize(in)
	if err != nil {
		key := keyOf(in)
		return Result{Assigned: a.Assignments(key)}, fmt.Errorf("assigning addresses to %s: %w", key, err)
	}
	st := a.service(svc.Key)
	defer a.store(st)
	res := Result{Released: a.revalidate(st, svc, &rq)}

	var missing famSet
	var kept *poolState
	for _, f := range rq.fams {
		ip := st.ips[f.index()]
		missing.addIf(!ip.IsValid(), f)
		if ip.IsValid() && kept == nil {
			kept = st.pool[f.index()]
		}
	}
	if missing.n > 0 {
		var picks picks
		picks, res.Missing, err = a.plan(&st.svc, &rq, missing.list(), kept)
		if err != nil {
			err = fmt.Errorf("assigning addresses to %s: %w", svc.Key, err)
		}
		for _, p := range picks.list() {
			a.hold(st, p.ip, p.pool, p.fresh)
		}
	}
	res.Assigned = a.assignments(st)
	return res, err
}

// Reserve restores addresses a Service already holds according to its status, typically at
// start-up, before any Assign. Each address must be of a family the Service wants, equal to
// its requested address if any, in a pool the Service may use, and not held by a Service it
// cannot share with. An address the pool skips (Pool.Skip, AvoidBuggyIPs) is kept too: the
// rules that skip addresses only apply to addresses handed out anew, never to one a Service
// holds, for example one handed out before the pool (or this version) started skipping it.
// Valid addresses are kept even when others are rejected; the error joins one error per
// rejected address.
//
// Like Assign, Reserve first releases addresses the Service held that are no longer valid for
// it, and reports them in Result.Released.
func (a *Allocator) Reserve(in *Service, ips []netip.Addr) (Result, error) {
	svc, rq, err := a.normalize(in)
	if err != nil {
		key := keyOf(in)
		return Result{Assigned: a.Assignments(key)}, fmt.Errorf("restoring addresses of %s: %w", key, err)
	}
	st := a.service(svc.Key)
	defer a.store(st)
	res := Result{Released: a.revalidate(st, svc, &rq)}
	var errs []error
	for _, ip := range ips {
		if err := a.reserve(st, &rq, ip); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s for %s: %w", ip, svc.Key, err))
		}
	}
	res.Assigned = a.assignments(st)
	return res, errors.Join(errs...)
}

func (a *Allocator) reserve(st *serviceState, rq *request, ip netip.Addr) error {
	if err := CheckAddr(ip); err != nil {
		return invalidf("%v", err)
	}
	f := FamilyOf(ip)
	switch {
	case rq.hasReq && rq.req[f.index()] != ip:
		return invalidf("the Service requests [%s] instead", addrList(rq.req[:]))
	case !rq.wants(f):
		return invalidf("the address is %s but ipFamilies is [%s]", f, famList(st.svc.Families))
	}
	if held := st.ips[f.index()]; held.IsValid() {
		if held == ip {
			return nil
		}
		return invalidf("the Service already holds %s address %s", f, held)
	}
	p, err := a.checkAddress(&st.svc, ip, true)
	if err != nil {
		return err
	}
	a.hold(st, ip, p, false)
	return nil
}

// Release frees every address of the Service and returns what it held.
func (a *Allocator) Release(key string) []Assignment {
	st := a.services[key]
	if st == nil {
		return nil
	}
	held := st.held()
	rel := make([]Assignment, 0, held.n)
	for _, f := range held.list() {
		rel = append(rel, a.unhold(st, f))
	}
	delete(a.services, key)
	*st = serviceState{}
	a.spareSvc = st
	return rel
}

// SetPools replaces the pools. Every address stays with its Service while it is still an
// address of a pool the Service may use (as known from the last Assign or Reserve), even one
// the new pool skips (Pool.Skip, AvoidBuggyIPs); the others are released and returned, with
// the pool they belonged to, sorted by Service then family.
// Nothing is reassigned: call Assign for the Services concerned. When pools is invalid,
// nothing changes.
func (a *Allocator) SetPools(pools []Pool) ([]Assignment, error) {
	ps, err := buildPools(pools)
	if err != nil {
		return nil, fmt.Errorf("updating pools: %w", err)
	}
	var rel []Assignment
	for _, key := range slices.Sorted(maps.Keys(a.services)) {
		st := a.services[key]
		held := st.held()
		for _, f := range held.list() {
			ip := st.ips[f.index()]
			if p := ps.poolOf(ip); p != nil && mayUse(p, &st.svc) == nil {
				continue
			}
			rel = append(rel, a.unhold(st, f))
		}
		a.store(st)
	}
	// Keep the search cursor of spaces that did not change.
	for _, np := range ps.sorted {
		if op := a.pools.byName[np.Name]; op != nil {
			for i, ns := range np.spaces {
				if os := op.spaces[i]; os.avoidBuggy == ns.avoidBuggy && slices.Equal(os.segs, ns.segs) {
					ns.cursor = os.cursor
				}
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(a.ips), Uint128.Cmp) {
		h := a.ips[k]
		for i, ip := range h.ips {
			if addrKey(ip) != k {
				continue
			}
			p := ps.poolOf(ip)
			for _, o := range a.holders(ip) {
				o.pool[i] = p
			}
			p.spaces[i].take(ip, false)
		}
	}
	a.pools = ps
	return rel, nil
}

// Assignments returns the addresses the Service holds, primary family first.
func (a *Allocator) Assignments(key string) []Assignment {
	if st := a.services[key]; st != nil {
		return a.assignments(st)
	}
	return nil
}

// PoolOf returns the name of the pool whose ranges hold ip, and false when no pool does.
func (a *Allocator) PoolOf(ip netip.Addr) (string, bool) {
	if p := a.pools.poolOf(ip); p != nil {
		return p.Name, true
	}
	return "", false
}

// Counts returns the address counts of every pool, sorted by pool name. It costs O(pools).
func (a *Allocator) Counts() []PoolCounts {
	out := make([]PoolCounts, 0, len(a.pools.sorted))
	for _, p := range a.pools.sorted {
		out = append(out, p.counts())
	}
	return out
}

// PoolCounts returns the address counts of one pool.
func (a *Allocator) PoolCounts(pool string) (PoolCounts, bool) {
	p := a.pools.byName[pool]
	if p == nil {
		return PoolCounts{}, false
	}
	return p.counts(), true
}

func (p *poolState) counts() PoolCounts {
	return PoolCounts{Pool: p.Name, IPv4: p.spaces[IPv4.index()].counts(), IPv6: p.spaces[IPv6.index()].counts()}
}

// plan chooses addresses for the missing families of svc, without changing anything. It
// returns the families a PreferDualStack Service does without.
func (a *Allocator) plan(svc *Service, rq *request, missing []Family, kept *poolState) (picks, []Family, error) {
	if rq.hasReq {
		var out picks
		var errs []error
		for _, f := range missing {
			ip := rq.req[f.index()]
			p, err := a.checkAddress(svc, ip, false)
			if err != nil {
				errs = append(errs, fmt.Errorf("requested address %s: %w", ip, err))
				continue
			}
			out.add(pick{ip: ip, pool: p})
		}
		if len(errs) > 0 {
			return picks{}, nil, errors.Join(errs...)
		}
		return out, nil, nil
	}

	var cands []*poolState
	if kept != nil {
		cands = []*poolState{kept}
	} else {
		var err error
		if cands, err = a.candidates(svc); err != nil {
			return picks{}, nil, err
		}
	}
	if rq.policy == PreferDualStack {
		// The first pool that can give anything gives what it can: pool order wins over
		// getting both families.
		for _, p := range cands {
			if picks, lacking := a.pickIn(svc, p, missing, true); picks.ok() {
				return picks, lacking, nil
			}
		}
		if kept != nil {
			return picks{}, slices.Clone(missing), nil
		}
	} else {
		for _, p := range cands {
			if picks, _ := a.pickIn(svc, p, missing, false); picks.ok() {
				return picks, nil, nil
			}
		}
	}
	return picks{}, nil, a.explain(svc, cands, missing)
}

// candidates returns the pools svc may get an address from automatically, best first.
func (a *Allocator) candidates(svc *Service) ([]*poolState, error) {
	if svc.Pool != "" {
		p := a.pools.byName[svc.Pool]
		if p == nil {
			return nil, fieldErr(FieldPool, ErrNoPool, "the Service's pool %q does not exist", svc.Pool)
		}
		if err := mayUse(p, svc); err != nil {
			return nil, err
		}
		return []*poolState{p}, nil
	}
	if !a.pools.autoMatch {
		if len(a.pools.auto) > 0 {
			return a.pools.auto, nil // no pool has a selector: share the precomputed order
		}
	} else {
		var cands []*poolState
		for _, p := range a.pools.auto {
			if p.Match == nil || p.Match(svc) {
				cands = append(cands, p)
			}
		}
		if len(cands) > 0 {
			return cands, nil
		}
	}
	var unselected, manual []string
	for _, p := range a.pools.sorted {
		switch {
		case p.Match != nil && !p.Match(svc):
			unselected = append(unselected, p.Name)
		case !p.AutoAssign:
			manual = append(manual, p.Name)
		}
	}
	if len(a.pools.sorted) == 0 {
		return nil, newErr(ErrNoPool, "no pools are configured")
	}
	var why []string
	if len(unselected) > 0 {
		why = append(why, fmt.Sprintf("the serviceAllocation of %s does not select it", poolList(unselected)))
	}
	if len(manual) > 0 {
		why = append(why, fmt.Sprintf("%s %s autoAssign false (name one as the Service's pool)", poolList(manual), plural(len(manual), "has", "have")))
		return nil, fieldErr(FieldPool, ErrNoPool, "no pool can serve %s: %s", svc.Key, strings.Join(why, "; "))
	}
	return nil, newErr(ErrNoPool, "no pool can serve %s: %s", svc.Key, strings.Join(why, "; "))
}

// pickIn chooses an address of each of fams in pool p for svc. When partial is false it
// returns nothing unless it found all; otherwise it also returns the families it found none of.
func (a *Allocator) pickIn(svc *Service, p *poolState, fams []Family, partial bool) (picks, []Family) {
	var out picks
	var lacking []Family
	for _, f := range fams {
		if ip, ok := a.sharedIn(svc, p, f); ok {
			out.add(pick{ip: ip, pool: p})
			continue
		}
		sp := p.spaces[f.index()]
		o, ok := sp.nextFree()
		if !ok {
			if !partial {
				return picks{}, nil
			}
			lacking = append(lacking, f)
			continue
		}
		out.add(pick{ip: sp.addr(o), pool: p, fresh: true})
	}
	return out, lacking
}

// sharedIn returns the lowest address of family f in pool p held under svc's sharing key that
// svc can share. A skipped address that Services hold is not handed to another one.
func (a *Allocator) sharedIn(svc *Service, p *poolState, f Family) (netip.Addr, bool) {
	if svc.SharingKey == "" {
		return netip.Addr{}, false
	}
	for _, ip := range a.shared[svc.SharingKey] {
		if FamilyOf(ip) == f && a.poolOf(ip) == p && p.handsOut(ip) && checkShare(svc, ip, a.holders(ip)) == nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// explain says why no pool of cands could give svc an address of each of fams.
func (a *Allocator) explain(svc *Service, cands []*poolState, fams []Family) error {
	kinds := []error{ErrNoPool}
	var why []string
	for _, p := range cands {
		for _, f := range fams {
			sp := p.spaces[f.index()]
			switch {
			case sp.size.IsZero():
				why = append(why, fmt.Sprintf("pool %q has no %s addresses", p.Name, f))
			case sp.full():
				kinds[0] = ErrPoolFull
				c := sp.counts()
				r := fmt.Sprintf("pool %q is full: %s of %s %s addresses in use", p.Name, c.Assigned, c.Size, f)
				if err := a.shareConflict(svc, p, f); err != nil {
					r += fmt.Sprintf(", and the address held under sharing key %q cannot be shared: %v", svc.SharingKey, err)
					kinds = append(kinds, err)
				}
				why = append(why, r)
			}
		}
	}
	return &allocError{kinds: kinds, msg: fmt.Sprintf("no %s address for %s: %s", strings.ReplaceAll(famList(fams), ", ", " and "), svc.Key, strings.Join(why, "; "))}
}

// shareConflict returns why svc cannot share the first address of family f in pool p held
// under its sharing key, or nil.
func (a *Allocator) shareConflict(svc *Service, p *poolState, f Family) error {
	if svc.SharingKey == "" {
		return nil
	}
	for _, ip := range a.shared[svc.SharingKey] {
		if FamilyOf(ip) == f && a.poolOf(ip) == p {
			return checkShare(svc, ip, a.holders(ip))
		}
	}
	return nil
}

// checkAddress checks that svc may hold ip, a requested or (restore true) restored address, and
// returns its pool. Only a restored address may be one the pool skips.
func (a *Allocator) checkAddress(svc *Service, ip netip.Addr, restore bool) (*poolState, error) {
	p := a.pools.poolOf(ip)
	if p == nil {
		return nil, newErr(ErrNotInPool, "%s is not in any pool", ip)
	}
	if !restore && !p.handsOut(ip) {
		return nil, skippedErr(p, ip)
	}
	if err := mayUse(p, svc); err != nil {
		return nil, err
	}
	if err := checkShare(svc, ip, a.holders(ip)); err != nil {
		return nil, err
	}
	return p, nil
}

// handsOut reports whether p hands out ip, one of its addresses: ip is not skipped.
func (p *poolState) handsOut(ip netip.Addr) bool {
	_, ok := p.spaces[FamilyOf(ip).index()].offset(ip)
	return ok
}

// skippedErr says why pool p does not hand out ip, one of its addresses, and what to do.
func skippedErr(p *poolState, ip netip.Addr) error {
	what := "the network or broadcast address"
	if ip.Is6() {
		what = "the subnet-router anycast address (the first address)"
	}
	buggy := p.AvoidBuggyIPs && ip.Is4() && (ip.As4()[3] == 0 || ip.As4()[3] == 255)
	switch {
	case p.skipped(ip) && buggy:
		return newErr(ErrNotInPool, "%s is %s of a CIDR of pool %q and ends in .0 or .255, which the pool does not hand out: request another address, or set spec.allocateNetworkAndBroadcast to true and spec.avoidBuggyIPs to false on the pool", ip, what, p.Name)
	case p.skipped(ip):
		return newErr(ErrNotInPool, "%s is %s of a CIDR of pool %q, which the pool does not hand out: request another address, or set spec.allocateNetworkAndBroadcast to true on the pool", ip, what, p.Name)
	}
	return newErr(ErrNotInPool, "%s is in a range of pool %q but is never handed out: the pool has avoidBuggyIPs and the address ends in .0 or .255", ip, p.Name)
}

// mayUse returns nil when svc may hold addresses of pool p.
func mayUse(p *poolState, svc *Service) error {
	if svc.Pool != "" && svc.Pool != p.Name {
		return fieldErr(FieldPool, ErrPoolNotAllowed, "pool %q may not serve %s, whose pool is %q", p.Name, svc.Key, svc.Pool)
	}
	if p.Match != nil && !p.Match(svc) {
		return newErr(ErrPoolNotAllowed, "pool %q may not serve %s: the pool's serviceAllocation does not select it", p.Name, svc.Key)
	}
	return nil
}

// poolOf returns the pool of ip, an address in use.
func (a *Allocator) poolOf(ip netip.Addr) *poolState {
	return a.ips[addrKey(ip)].pool[FamilyOf(ip).index()]
}

// checkShare returns nil when svc may hold ip alongside holders, its current holders.
func checkShare(svc *Service, ip netip.Addr, holders []*serviceState) error {
	for _, h := range holders {
		o := &h.svc
		if o.Key == svc.Key {
			continue
		}
		switch {
		case o.SharingKey == "":
			return fieldErr(FieldSharingKey, ErrInUse, "%s is in use by %s, which does not share it (it has no sharing key)", ip, o.Key)
		case svc.SharingKey == "":
			return fieldErr(FieldSharingKey, ErrInUse, "%s is in use by %s under sharing key %q: set the Service's sharing key to %q to share it", ip, o.Key, o.SharingKey, o.SharingKey)
		case svc.SharingKey != o.SharingKey:
			return fieldErr(FieldSharingKey, ErrInUse, "%s is in use by %s under sharing key %q, not %q", ip, o.Key, o.SharingKey, svc.SharingKey)
		}
		for _, p := range svc.Ports {
			if slices.Contains(o.Ports, p) {
				return newErr(ErrSharingConflict, "port %s is already used by %s on %s under sharing key %q", p, o.Key, ip, svc.SharingKey)
			}
		}
		if svc.ExternalTrafficPolicyLocal != o.ExternalTrafficPolicyLocal {
			local, cluster := svc.Key, o.Key
			if o.ExternalTrafficPolicyLocal {
				local, cluster = cluster, local
			}
			return newErr(ErrSharingConflict, "%s cannot share %s with %s under sharing key %q: %s has externalTrafficPolicy Local and %s Cluster; Services sharing an address must all be Local with the same pod selector, or all Cluster", svc.Key, ip, o.Key, svc.SharingKey, local, cluster)
		}
		if svc.ExternalTrafficPolicyLocal && svc.Selector != o.Selector {
			return newErr(ErrSharingConflict, "%s cannot share %s with %s under sharing key %q: with externalTrafficPolicy Local they must select the same pods, but their selectors differ (%q and %q)", svc.Key, ip, o.Key, svc.SharingKey, svc.Selector, o.Selector)
		}
	}
	return nil
}

// revalidate releases the addresses of st that svc (its new description) may no longer hold,
// then makes svc the description of st.
func (a *Allocator) revalidate(st *serviceState, svc *Service, rq *request) []Assignment {
	var rel []Assignment
	held := st.held()
	for _, f := range held.list() {
		ip := st.ips[f.index()]
		if rq.wants(f) && (!rq.hasReq || rq.req[f.index()] == ip) && mayUse(st.pool[f.index()], svc) == nil && checkShare(svc, ip, a.holders(ip)) == nil {
			continue
		}
		rel = append(rel, a.unhold(st, f))
	}
	// A sole holder may have changed its sharing key (had the address other holders, they
	// have the old key, and checkShare has released it).
	old := st.svc.SharingKey
	st.setSvc(svc)
	if old != svc.SharingKey {
		for _, ip := range st.ips {
			if ip.IsValid() {
				a.removeShared(old, ip)
				a.addShared(svc.SharingKey, ip)
			}
		}
	}
	return rel
}

// hold gives ip, of pool p, to st; advance moves the pool's search cursor past it. An address
// to advance past comes from the search for a free one, and so has no holder yet.
func (a *Allocator) hold(st *serviceState, ip netip.Addr, p *poolState, advance bool) {
	f := FamilyOf(ip)
	k := addrKey(ip)
	st.ips[f.index()], st.pool[f.index()] = ip, p
	var h *serviceState
	if !advance {
		h = a.ips[k]
	}
	if h == nil {
		a.ips[k] = st
		p.spaces[f.index()].take(ip, advance)
		a.addShared(st.svc.SharingKey, ip)
		return
	}
	l, ok := a.multi[k]
	if !ok {
		l = []*serviceState{h}
	}
	i, _ := slices.BinarySearchFunc(l, st.svc.Key, func(h *serviceState, k string) int { return cmp.Compare(h.svc.Key, k) })
	l = slices.Insert(l, i, st)
	a.multi[k], a.ips[k] = l, l[0]
}

// unhold takes the address of family f from st, freeing it when nobody else holds it.
func (a *Allocator) unhold(st *serviceState, f Family) Assignment {
	ip, p := st.ips[f.index()], st.pool[f.index()]
	as := Assignment{Service: st.svc.Key, IP: ip, Pool: p.Name}
	st.ips[f.index()], st.pool[f.index()] = netip.Addr{}, nil
	k := addrKey(ip)
	if l, ok := a.multi[k]; ok {
		l = slices.DeleteFunc(l, func(h *serviceState) bool { return h == st })
		if len(l) == 1 {
			delete(a.multi, k)
		} else {
			a.multi[k] = l
		}
		a.ips[k] = l[0]
		return as
	}
	delete(a.ips, k)
	p.spaces[f.index()].free(ip)
	a.removeShared(st.svc.SharingKey, ip)
	return as
}

func (a *Allocator) addShared(key string, ip netip.Addr) {
	if key == "" {
		return
	}
	l := a.shared[key]
	if i, found := slices.BinarySearchFunc(l, ip, netip.Addr.Compare); !found {
		a.shared[key] = slices.Insert(l, i, ip)
	}
}

func (a *Allocator) removeShared(key string, ip netip.Addr) {
	if key == "" {
		return
	}
	l := a.shared[key]
	if i, found := slices.BinarySearchFunc(l, ip, netip.Addr.Compare); found {
		l = slices.Delete(l, i, i+1)
	}
	if len(l) == 0 {
		delete(a.shared, key)
	} else {
		a.shared[key] = l
	}
}

// service returns the state of key, new and unregistered when it holds nothing.
func (a *Allocator) service(key string) *serviceState {
	if st := a.services[key]; st != nil {
		return st
	}
	if st := a.spareSvc; st != nil {
		a.spareSvc = nil
		return st
	}
	return new(serviceState)
}

// normalize validates in, using the allocator's buffers for the copy's slices: the copy is
// valid until the next call, and setSvc copies what it keeps.
func (a *Allocator) normalize(in *Service) (*Service, request, error) {
	svc, rq, err := normalizeInto(in, a.ports, a.fams)
	if err != nil {
		return nil, rq, err
	}
	svc.NamespaceLabels = a.namespaceLabels(svc.Namespace, svc.NamespaceLabels)
	a.scratch = svc
	a.ports, a.fams = svc.Ports[:0], svc.Families[:0]
	return &a.scratch, rq, nil
}

// namespaceLabels returns the allocator's copy of labels, the labels of namespace ns: the copy
// it holds when they are the same, or a new one that replaces it. Nothing changes the copies.
func (a *Allocator) namespaceLabels(ns string, labels map[string]string) map[string]string {
	if labels == nil {
		return nil
	}
	if cur, ok := a.nsLabels[ns]; ok && maps.Equal(cur, labels) {
		return cur
	}
	c := maps.Clone(labels)
	if a.nsLabels == nil {
		a.nsLabels = map[string]map[string]string{}
	}
	a.nsLabels[ns] = c
	return c
}

// store registers st when it holds an address and forgets it otherwise.
func (a *Allocator) store(st *serviceState) {
	if st.ips[0].IsValid() || st.ips[1].IsValid() {
		a.services[st.svc.Key] = st
	} else {
		delete(a.services, st.svc.Key)
	}
}

func (a *Allocator) assignments(st *serviceState) []Assignment {
	held := st.held()
	if held.n == 0 {
		return nil
	}
	out := make([]Assignment, 0, held.n)
	for _, f := range held.list() {
		ip := st.ips[f.index()]
		out = append(out, Assignment{Service: st.svc.Key, IP: ip, Pool: st.pool[f.index()].Name})
	}
	return out
}

// held returns the families st holds an address of, in the order of its families.
func (st *serviceState) held() famSet {
	var out famSet
	for _, f := range st.svc.Families {
		out.addIf(st.ips[f.index()].IsValid(), f)
	}
	for _, f := range [2]Family{IPv4, IPv6} {
		out.addIf(st.ips[f.index()].IsValid(), f)
	}
	return out
}

// famSet is an ordered set of at most two families, kept off the heap.
type famSet struct {
	f [2]Family
	n int
}

func (s *famSet) addIf(cond bool, f Family) {
	if cond && !slices.Contains(s.f[:s.n], f) {
		s.f[s.n] = f
		s.n++
	}
}

func (s *famSet) list() []Family { return s.f[:s.n] }

func keyOf(svc *Service) string {
	if svc == nil {
		return "<nil>"
	}
	return svc.Key
}

func poolList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return plural(len(names), "pool ", "pools ") + strings.Join(q, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func addrList(ips []netip.Addr) string {
	var s []string
	for _, ip := range ips {
		if ip.IsValid() {
			s = append(s, ip.String())
		}
	}
	return strings.Join(s, ", ")
}
