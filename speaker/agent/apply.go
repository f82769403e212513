package agent

import (
	"context"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/plan"
	"github.com/herald-lb/herald/speaker/status"
)

// Layer2Updater is a layer-2 announcer that takes changes rather than the complete owned set
// (package layer2's Announcer implements it). When Options.L2 implements it, a computation that
// changed a few IPs hands it those IPs only, so its cost does not grow with the IPs owned.
type Layer2Updater interface {
	// UpdateOwned changes the interfaces of the IPs in changed (nil or empty: no longer owned);
	// the others stay as they are. fresh marks newly owned IPs nobody announced before (see
	// Layer2Guard), ignored without conflict detection.
	UpdateOwned(changed map[netip.Addr][]string, fresh map[netip.Addr]bool) error
}

// Layer2Seq is implemented by a layer-2 announcer (layer2.Announcer) that takes the complete owned
// set as a sequence: the agent then hands it its engine's plans as they are, without a map of
// every owned IP kept for the purpose (110 bytes an IP at 10,000). fresh is as for Layer2Guard.
type Layer2Seq interface {
	SetOwnedSeq(owned iter.Seq2[netip.Addr, []string], fresh map[netip.Addr]bool) error
}

// announce hands what changed to the layer-2 announcer and the BGP speaker. A full computation
// hands them everything, which also retries what failed before. It returns how many IPs this node
// took over from another.
func (a *Agent) announce(ctx context.Context, ch changes, full bool) int {
	self := a.opts.NodeName
	delta := map[netip.Addr][]string{}
	fresh := map[netip.Addr]bool{}
	guard := a.guard()
	taken := 0
	for _, c := range ch.ips {
		if takenOver(c.old, c.new, self) {
			taken++
		}
		if slices.Equal(c.old.L2Interfaces, c.new.L2Interfaces) {
			continue
		}
		delta[c.ip] = c.new.L2Interfaces
		if c.new.L2Interfaces == nil {
			continue
		}
		// An address nobody announced before (no node owned it in the last computation, and no
		// ServiceL2Status names its Services) is probed before its first announcement. Anything
		// else is a takeover and answered at once: a failover must never wait for a probe, and a
		// dead owner does not answer one anyway.
		if guard != nil && c.old.L2Interfaces == nil && c.old.L2Owner == "" && !a.announcedBefore(c.new.L2) {
			fresh[c.ip] = true
		}
	}
	a.metrics.takeovers.Add(float64(taken))
	if err := a.setL2(delta, fresh, full); err != nil {
		a.log.Warn("layer-2 announcer", "error", err)
	}
	if full {
		if err := a.opts.BGP.SetPeers(ctx, bgpPeers(a.eng.ctx.Peers())); err != nil {
			a.log.Warn("BGP peers", "error", err)
		}
	}
	if full || ch.routes {
		routes, elsewhere := a.eng.routes()
		if err := a.opts.BGP.SetRoutes(ctx, a.handOver(plan.Plan{Peers: a.eng.ctx.Peers(), Routes: routes, BGPElsewhere: elsewhere})); err != nil {
			a.log.Warn("BGP routes", "error", err)
		}
		a.metrics.routes.Set(float64(advertisedPrefixes(routes)))
	}
	return taken
}

// setL2 hands the layer-2 changes to the announcer: only delta when it takes changes and the
// computation was not a full one, the complete owned set otherwise.
func (a *Agent) setL2(delta map[netip.Addr][]string, fresh map[netip.Addr]bool, full bool) error {
	if u, ok := a.opts.L2.(Layer2Updater); ok && !full {
		if len(delta) == 0 {
			return nil
		}
		return u.UpdateOwned(delta, fresh)
	}
	if !full && len(delta) == 0 {
		return nil
	}
	// The owned set is read from the engine's plans, which the announcer reads only while it runs.
	if s, ok := a.opts.L2.(Layer2Seq); ok {
		return s.SetOwnedSeq(a.eng.l2Owned(), fresh)
	}
	owned := maps.Collect(a.eng.l2Owned())
	if g := a.guard(); g != nil {
		return g.SetOwnedFresh(owned, fresh)
	}
	return a.opts.L2.SetOwned(owned)
}

// takenOver reports whether self answers for an IP that another node owned before.
func takenOver(old, new plan.IPPlan, self string) bool {
	return new.L2Interfaces != nil && new.L2Owner == self && old.L2Owner != "" && old.L2Owner != self
}

// announcedBefore reports whether a ServiceL2Status (of any node) names one of the Services: an
// address is only probed when it is certainly new.
func (a *Agent) announcedBefore(l2 []plan.L2Assignment) bool {
	return slices.ContainsFunc(l2, func(as plan.L2Assignment) bool { return a.model.hasStatus(as.Service) })
}

// statusStartGrace bounds, after JoinTimeout, how long a starting speaker that is not ready
// leaves the status objects of the speaker before it (see Agent.statusOpen).
const statusStartGrace = 10 * time.Second

// report tells people what changed: events on the Services (a node taking an IP, an IP nobody
// announces), the unannounced-IP metrics, and this node's status objects.
func (a *Agent) report(ch changes, full bool) {
	before := a.statusOpen
	if !before && (a.selfReady || time.Since(a.startedAt) >= a.opts.JoinTimeout+statusStartGrace) {
		a.statusOpen = true
	}
	a.events(ch, !before)
	a.conflictEvents()
	if !a.statusOpen {
		return
	}
	opening := !before
	if opening {
		a.prev.close()
	}
	a.warnings(ch, full || opening)
	if full || opening {
		// A resync's full computation almost always changes nothing: then the writer converges
		// the desired state it has (kept up to date by the computations since it was built)
		// instead of being handed all of it anew, which at 10,000 Services is some 10 MB built
		// every 10 s for nothing.
		if !opening && a.statusAlive != nil && len(ch.services) == 0 && slices.Equal(a.statusAlive, a.members.alive) && !a.decorationsChanged() {
			a.restoreStatus(a.status.Wants) // nothing was recorded as deleted without conflict detection
			a.status.Resync()
			return
		}
		l2, bgp := a.eng.assignments()
		a.status.Set(a.withConflicts(status.FromAssignments(l2, bgp, a.opts.NodeName, a.members.alive)))
		a.statusAlive = append([]string{}, a.members.alive...)
		a.metrics.statusBuilds.Inc()
		return
	}
	l2 := map[string]*v1beta1.ServiceL2StatusStatus{}
	bgp := map[string]*v1beta1.ServiceBGPStatusStatus{}
	for key := range ch.services {
		name := status.Name(a.opts.NodeName, key)
		l2[name], bgp[name] = nil, nil
		if as := a.eng.l2Of(key); len(as) > 0 {
			st := a.decorate(status.L2Status(a.opts.NodeName, key, as), as)
			l2[name] = &st
		}
		if as := a.eng.bgpOf(key); len(as) > 0 {
			st := status.BGPStatus(a.opts.NodeName, key, as)
			bgp[name] = &st
		}
	}
	a.status.Put(l2, bgp)
}

// events reports, for the Services whose assignments may have changed, this node starting to
// announce them over layer 2 or BGP. While starting, a Service this node's status objects already
// name is no news: the speaker before this one announced it, and a DaemonSet rollout would
// otherwise write an event per Service and node.
func (a *Agent) events(ch changes, starting bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	known := func(kind, key string) bool { return starting && a.prev.has(kind, status.Name(a.opts.NodeName, key)) }
	for _, key := range slices.Sorted(maps.Keys(ch.services)) {
		l2, bgp := a.eng.l2Of(key), a.eng.bgpOf(key)
		if len(l2) > 0 && !a.prevOwned[key] && !known("l2", key) {
			if s, ok := a.model.serviceRef(key); ok {
				a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonNodeAssigned,
					"announcing %s from node %s over layer 2", strings.Join(ipsOf(l2, func(as plan.L2Assignment) netip.Addr { return as.IP }), ", "), a.opts.NodeName)
			}
		}
		if len(bgp) > 0 && !a.prevBGP[key] && !known("bgp", key) {
			if s, ok := a.model.serviceRef(key); ok {
				a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonNodeAssigned,
					"advertising %s from node %s over BGP", strings.Join(ipsOf(bgp, func(as plan.BGPAssignment) netip.Addr { return as.IP }), ", "), a.opts.NodeName)
			}
		}
		setOrDelete(a.prevOwned, key, len(l2) > 0)
		setOrDelete(a.prevBGP, key, len(bgp) > 0)
	}
}

func ipsOf[T any](as []T, ip func(T) netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, x := range as {
		out = append(out, ip(x).String())
	}
	return out
}

func setOrDelete(m map[string]bool, key string, v bool) {
	if v {
		m[key] = true
	} else {
		delete(m, key)
	}
}

// warnings reports unannounced IPs as events, each by one speaker only, elected among the live
// ones: after a full computation (the live speakers may have changed) for every IP, otherwise for
// the IPs that changed. The speakers are those the last full computation planned with.
func (a *Agent) warnings(ch changes, full bool) {
	alive := a.members.alive
	a.mu.Lock()
	defer a.mu.Unlock()
	if full {
		warned := map[string]string{}
		for ip, k := range a.eng.ips {
			a.warnIP(ip, k.plan(ip).Unannounced, alive, a.warned, warned)
		}
		a.warned = warned
		a.metrics.setUnannounced(warned)
		return
	}
	for _, c := range ch.ips {
		before := map[string]string{}
		for _, u := range c.old.Unannounced {
			id := u.Service + " " + u.IP.String()
			if r, ok := a.warned[id]; ok {
				before[id] = r
				a.metrics.unannounced.WithLabelValues(unannouncedCause(r)).Dec()
				delete(a.warned, id)
			}
		}
		added := map[string]string{}
		a.warnIP(c.ip, c.new.Unannounced, alive, before, added)
		for id, r := range added {
			a.warned[id] = r
			a.metrics.unannounced.WithLabelValues(unannouncedCause(r)).Inc()
		}
	}
}

// warnIP records in warned the unannounced Services of ip this node reports, with an event for
// each whose reason is not the one in before. a.mu must be held.
func (a *Agent) warnIP(ip netip.Addr, unannounced []plan.Unannounced, alive []string, before, warned map[string]string) {
	if len(unannounced) == 0 {
		return
	}
	if reporter, ok := election.Owner(ip, alive); !ok || reporter != a.opts.NodeName {
		return
	}
	for _, u := range unannounced {
		id := u.Service + " " + u.IP.String()
		warned[id] = u.Reason
		if before[id] == u.Reason {
			continue
		}
		if s, ok := a.model.serviceRef(u.Service); ok {
			a.opts.Recorder.Eventf(s, corev1.EventTypeWarning, ReasonNotAnnounced,
				"%s is assigned but not announced: %s", u.IP, u.Reason)
		}
	}
}

// The layer-2 announcer takes changes.
var _ Layer2Updater = (*layer2.Announcer)(nil)
