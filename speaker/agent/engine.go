package agent

import (
	"iter"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/herald-lb/herald/speaker/plan"
)

// engine keeps the plan of every IP (package plan decides one IP at a time) and recomputes those
// a change affects. It is not safe for concurrent use: the agent's loop owns it. It reads no
// cache and does no I/O; the agent applies the changes it returns.
type engine struct {
	ctx  *plan.Context           // nil before the first full computation
	svcs map[string]plan.Service // by key: every handled Service with an IP
	// byIP names the Services holding each IP: almost always one, whose key is the entry (16 bytes,
	// no allocation, where a slice of keys cost 24 and its array for each of 10,000 IPs); the keys
	// of an IP several Services share are joined by holderSep.
	byIP map[netip.Addr]string
	ips  map[netip.Addr]kept // the plan of every IP some Service holds
	// routed are the IPs whose plans have routes, or prefixes other nodes advertise.
	routed map[netip.Addr]bool
}

// ipChange is the plan of one IP before and after a computation; a zero IPPlan (invalid IP) when
// no Service held it.
type ipChange struct {
	ip       netip.Addr
	old, new plan.IPPlan
}

// changes are what a computation changed.
type changes struct {
	ips []ipChange
	// services are the keys of the Services whose assignments or reasons may have changed: those
	// named by the old or new plans of the changed IPs, and those that changed themselves.
	services map[string]bool
	// routes is true when some route share changed.
	routes bool
	// recomputed counts the IPs decided again.
	recomputed int
}

// kept is what the engine keeps of the plan of an IP (the map's key): its layer-2 part, which
// almost every IP has, in place, and the rest, which few have (BGP), behind a pointer. 72 bytes
// instead of plan.IPPlan's 184, for each of 10,000 IPs, most of which another node owns in a
// cluster (only the owner is set).
type kept struct {
	owner  string
	ifaces []string
	l2     []plan.L2Assignment
	rest   *keptRest // nil when all of its parts are empty
}

type keptRest struct {
	bgp         []plan.BGPAssignment
	routes      []plan.PeerRoute
	elsewhere   []netip.Prefix
	unannounced []plan.Unannounced
}

func keep(p plan.IPPlan) kept {
	k := kept{owner: p.L2Owner, ifaces: p.L2Interfaces, l2: p.L2}
	if p.BGP != nil || p.Routes != nil || p.Elsewhere != nil || p.Unannounced != nil {
		k.rest = &keptRest{bgp: p.BGP, routes: p.Routes, elsewhere: p.Elsewhere, unannounced: p.Unannounced}
	}
	return k
}

// plan is the plan of ip that k keeps, as it was given to keep.
func (k kept) plan(ip netip.Addr) plan.IPPlan {
	p := plan.IPPlan{IP: ip, L2Owner: k.owner, L2Interfaces: k.ifaces, L2: k.l2}
	if r := k.rest; r != nil {
		p.BGP, p.Routes, p.Elsewhere, p.Unannounced = r.bgp, r.routes, r.elsewhere, r.unannounced
	}
	return p
}

// planOf returns the plan of ip; a zero plan (invalid IP) when no Service holds it.
func (e *engine) planOf(ip netip.Addr) plan.IPPlan {
	k, ok := e.ips[ip]
	if !ok {
		return plan.IPPlan{}
	}
	return k.plan(ip)
}

func newEngine() *engine {
	return &engine{svcs: map[string]plan.Service{}, byIP: map[netip.Addr]string{}, ips: map[netip.Addr]kept{}, routed: map[netip.Addr]bool{}}
}

// ready reports whether a full computation has been made.
func (e *engine) ready() bool { return e.ctx != nil }

// full recomputes every IP under a new context and set of Services, which the engine keeps (the
// caller gives up svcs): a full computation runs at every resync, and a copy of 10,000 Services
// (some 4 MB) would be garbage ten seconds later, held next to the caller's meanwhile.
func (e *engine) full(ctx *plan.Context, svcs map[string]plan.Service) changes {
	e.ctx = ctx
	ch := changes{services: map[string]bool{}}
	for k := range e.svcs {
		if _, ok := svcs[k]; !ok {
			ch.services[k] = true
		}
	}
	e.svcs = svcs
	clear(e.byIP)
	for k, s := range svcs {
		for _, ip := range s.IPs {
			e.hold(ip, k)
		}
	}
	affected := make(map[netip.Addr]bool, len(e.ips)+len(e.byIP))
	for ip := range e.ips {
		affected[ip] = true
	}
	for ip := range e.byIP {
		affected[ip] = true
	}
	e.recompute(affected, &ch)
	return ch
}

// update recomputes the IPs of the given Services (nil: gone, not handled, or without an IP), old
// and new.
func (e *engine) update(svcs map[string]*plan.Service) changes {
	return e.partial(e.ctx, map[netip.Addr]bool{}, svcs)
}

// affectedByNodes returns the IPs whose plan may change from the engine's context to ctx, and
// true, when ctx differs from it only in the state of other nodes (plan.Context.NodesChanged):
// those a changed node owns or may come to own, and those whose plan depends on every node (see
// plan.Context.MayChange). It returns false when everything is to be recomputed. It reads the
// kept plans only: a few hashes per IP, no election.
func (e *engine) affectedByNodes(ctx *plan.Context) (map[netip.Addr]bool, bool) {
	if e.ctx == nil {
		return nil, false
	}
	changed, ok := ctx.NodesChanged(e.ctx)
	if !ok {
		return nil, false
	}
	affected := map[netip.Addr]bool{}
	if len(changed) == 0 {
		return affected, true // no change the election sees (a label no advertisement reads)
	}
	for ip, k := range e.ips {
		if ctx.MayChange(k.plan(ip), changed) {
			affected[ip] = true
		}
	}
	return affected, true
}

// partial recomputes, under ctx, the given IPs and those of the given Services (as update). ctx
// must be the engine's context or one that differs from it only where affectedByNodes allowed,
// with ips the IPs it returned. The caller gives up ips.
func (e *engine) partial(ctx *plan.Context, ips map[netip.Addr]bool, svcs map[string]*plan.Service) changes {
	e.ctx = ctx
	ch := changes{services: map[string]bool{}}
	for k, s := range svcs {
		old, had := e.svcs[k]
		if !had && s == nil {
			continue
		}
		if had && s != nil && reflect.DeepEqual(old, *s) {
			continue
		}
		ch.services[k] = true
		if had {
			for _, ip := range old.IPs {
				ips[ip] = true
				e.release(ip, k)
			}
			delete(e.svcs, k)
		}
		if s != nil {
			e.svcs[k] = *s
			for _, ip := range s.IPs {
				ips[ip] = true
				e.hold(ip, k)
			}
		}
	}
	e.recompute(ips, &ch)
	return ch
}

// orphaned returns the IPs whose layer-2 owner, in the last computation, is one of gone: the IPs a
// failover moves. It reads the kept plans only, so it costs a map lookup per IP.
func (e *engine) orphaned(gone map[string]bool) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	if len(gone) == 0 {
		return out
	}
	for ip, k := range e.ips {
		if k.owner != "" && gone[k.owner] {
			out[ip] = true
		}
	}
	return out
}

// takeOver decides the given IPs again under a new context, ahead of the full computation that
// must follow under the same context: on a failover, the IPs of the dead owner are taken over
// before the other IPs are re-elected, so that their outage does not wait for work that moves
// nothing.
func (e *engine) takeOver(ctx *plan.Context, ips map[netip.Addr]bool) changes {
	e.ctx = ctx
	ch := changes{services: map[string]bool{}}
	e.recompute(ips, &ch)
	return ch
}

// merge adds the changes of an earlier computation (takeOver) to ch, for reporting.
func (ch *changes) merge(earlier changes) {
	ch.ips = append(ch.ips, earlier.ips...)
	slices.SortFunc(ch.ips, func(a, b ipChange) int { return a.ip.Compare(b.ip) })
	for k := range earlier.services {
		ch.services[k] = true
	}
	ch.routes = ch.routes || earlier.routes
	ch.recomputed += earlier.recomputed
}

// holderSep joins the keys of the Services that share an IP in engine.byIP: no key
// ("namespace/name") holds it.
const holderSep = "\x00"

func (e *engine) hold(ip netip.Addr, key string) {
	cur, ok := e.byIP[ip]
	if !ok {
		e.byIP[ip] = key
		return
	}
	for k := range strings.SplitSeq(cur, holderSep) {
		if k == key {
			return
		}
	}
	e.byIP[ip] = cur + holderSep + key
}

func (e *engine) release(ip netip.Addr, key string) {
	cur, ok := e.byIP[ip]
	if !ok {
		return
	}
	if cur == key {
		delete(e.byIP, ip)
		return
	}
	keys := strings.Split(cur, holderSep) // a shared IP: rare
	i := slices.Index(keys, key)
	if i < 0 {
		return
	}
	e.byIP[ip] = strings.Join(slices.Delete(keys, i, i+1), holderSep)
}

// recompute decides the affected IPs again and records those whose plan changed.
func (e *engine) recompute(affected map[netip.Addr]bool, ch *changes) {
	ch.recomputed = len(affected)
	var svcs []plan.Service // one buffer for every IP: Context.IP does not keep it
	for ip := range affected {
		old := e.planOf(ip)
		var next plan.IPPlan
		if keys, ok := e.byIP[ip]; ok {
			svcs = svcs[:0]
			for k := range strings.SplitSeq(keys, holderSep) {
				svcs = append(svcs, e.svcs[k])
			}
			next = e.ctx.IP(ip, svcs)
			e.ips[ip] = keep(next)
		} else {
			delete(e.ips, ip)
		}
		if len(next.Routes) > 0 || len(next.Elsewhere) > 0 {
			e.routed[ip] = true
		} else {
			delete(e.routed, ip)
		}
		if old.Equal(next) {
			continue
		}
		ch.ips = append(ch.ips, ipChange{ip: ip, old: old, new: next})
		if !old.SameRoutes(next) {
			ch.routes = true
		}
		for _, p := range []plan.IPPlan{old, next} {
			for _, as := range p.L2 {
				ch.services[as.Service] = true
			}
			for _, as := range p.BGP {
				ch.services[as.Service] = true
			}
			for _, u := range p.Unannounced {
				ch.services[u.Service] = true
			}
		}
	}
	slices.SortFunc(ch.ips, func(a, b ipChange) int { return a.ip.Compare(b.ip) })
}

// routes returns this node's BGP route tables (the routes of every IP, merged) and the prefixes
// other nodes advertise (plan.Plan's Routes and BGPElsewhere).
func (e *engine) routes() (map[string][]plan.Route, map[netip.Prefix]bool) {
	var routes []plan.PeerRoute
	elsewhere := map[netip.Prefix]bool{}
	for ip := range e.routed {
		r := e.ips[ip].rest
		if r == nil {
			continue
		}
		routes = append(routes, r.routes...)
		for _, prefix := range r.elsewhere {
			elsewhere[prefix] = true
		}
	}
	return plan.RouteTables(routes), elsewhere
}

// l2Of returns the layer-2 assignments of a Service (its IPs this node answers for, with their
// interfaces), by IP.
func (e *engine) l2Of(key string) []plan.L2Assignment {
	var out []plan.L2Assignment
	for _, ip := range e.svcs[key].IPs {
		for _, as := range e.ips[ip].l2 {
			if as.Service == key {
				out = append(out, as)
			}
		}
	}
	slices.SortFunc(out, func(a, b plan.L2Assignment) int { return a.IP.Compare(b.IP) })
	return slices.CompactFunc(out, func(a, b plan.L2Assignment) bool { return a.IP == b.IP })
}

// bgpOf returns the BGP assignments of a Service, by IP.
func (e *engine) bgpOf(key string) []plan.BGPAssignment {
	var out []plan.BGPAssignment
	for _, ip := range e.svcs[key].IPs {
		if r := e.ips[ip].rest; r != nil {
			for _, as := range r.bgp {
				if as.Service == key {
					out = append(out, as)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b plan.BGPAssignment) int { return a.IP.Compare(b.IP) })
	return slices.CompactFunc(out, func(a, b plan.BGPAssignment) bool { return a.IP == b.IP })
}

// l2Owned yields the IPs this node answers for over layer 2, with their interfaces: what the
// layer-2 announcer is to hold after the changes of every computation were handed to it.
func (e *engine) l2Owned() iter.Seq2[netip.Addr, []string] {
	return func(yield func(netip.Addr, []string) bool) {
		for ip, k := range e.ips {
			if len(k.ifaces) > 0 && !yield(ip, k.ifaces) {
				return
			}
		}
	}
}

// assignments are this node's layer-2 and BGP assignments of every IP, in no order: what its
// status objects say (status.FromAssignments), without assembling the whole plan.
func (e *engine) assignments() (l2 []plan.L2Assignment, bgp []plan.BGPAssignment) {
	for _, k := range e.ips {
		l2 = append(l2, k.l2...)
		if k.rest != nil {
			bgp = append(bgp, k.rest.bgp...)
		}
	}
	return l2, bgp
}
