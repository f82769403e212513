package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/plan"
)

// Event reasons the speaker uses on Services (defined, and described, in api/v1beta1).
const (
	ReasonNodeAssigned = v1beta1.EventReasonNodeAssigned
	ReasonNotAnnounced = v1beta1.EventReasonNotAnnounced
)

// sync recomputes what changed since the last computation and applies it: the IPs of the
// Services that changed when only Services and EndpointSlices did (see model.go), those that other
// nodes' changes may affect when only they (Nodes, membership) and Services did, every IP
// otherwise.
func (a *Agent) sync(ctx context.Context, cause string) {
	start := time.Now()
	keys, full, nodes := a.model.take()
	switch {
	case full || nodes || cause != syncAPI || !a.eng.ready():
		a.syncAll(ctx, cause, !full && (cause == syncAPI || cause == syncMembers), keys)
	case len(keys) > 0:
		a.syncServices(ctx, keys)
	default:
		return
	}
	a.metrics.syncSeconds.Observe(time.Since(start).Seconds())
}

// syncAll reads the configuration and the Nodes, recomputes the IPs that changed and applies what
// changed. With nodesOnly (nothing but other Nodes, membership and the Services of keys may have
// changed) and when the new context differs from the last only in other nodes' state, it
// recomputes only the IPs those nodes may affect and those of keys (engine.affectedByNodes);
// otherwise every IP. A recomputation caused by a membership change is logged with its timings:
// it is a failover.
func (a *Agent) syncAll(ctx context.Context, cause string, nodesOnly bool, keys []string) {
	start := time.Now()
	mem := a.readMembers()
	in, err := a.inputs(ctx, mem)
	if err != nil {
		a.model.markFull()
		a.log.Warn("reading the cluster state; keeping the current announcements", "error", err)
		return
	}
	sameMembers := slices.Equal(a.members.alive, mem.alive)
	a.members = mem
	self := a.readyState(&in, mem)
	pctx := plan.NewContext(in.Config, in.Self, in.Nodes)
	var affected map[netip.Addr]bool
	partial := false
	if nodesOnly {
		affected, partial = a.eng.affectedByNodes(pctx) // before takeOver changes the context
	}
	// A failover: the IPs whose owner is no longer a live, ready speaker are re-elected and
	// handed to the announcer first, so that their outage does not wait for the re-election of
	// every other IP (which moves none of them). Every survivor of a large cluster re-elects at
	// the same moment, so that work competes for the CPU with the takeover.
	var first changes
	taken := 0
	if cause == syncMembers && a.eng.ready() {
		gone := map[string]bool{}
		for _, n := range in.Nodes {
			if !n.Alive || !n.SpeakerReady {
				gone[n.Name] = true
			}
		}
		if orphans := a.eng.orphaned(gone); len(orphans) > 0 {
			first = a.eng.takeOver(pctx, orphans)
			taken = a.announce(ctx, first, false)
		}
	}
	tookOver := time.Now()
	var ch changes
	if partial {
		ch = a.eng.partial(pctx, affected, a.model.planServices(keys, a.handles))
		a.pace.scope.WithLabelValues(scopeNodes).Inc()
	} else {
		ch = a.eng.full(pctx, a.model.allPlanServices(a.handles))
		a.pace.scope.WithLabelValues(scopeAll).Inc()
	}
	a.pace.ips.Add(float64(ch.recomputed + first.recomputed))
	planned := time.Now()
	// What is applied whole: everything after a full computation, and after a change of the live
	// speakers (the status objects say who is alive, and dead speakers' objects are swept); after
	// a partial one otherwise only what changed, as for Services (the peers, which depend on the
	// configuration and this node only, cannot have changed).
	whole := !partial || !sameMembers || cause == syncMembers

	// Announce first: nothing below may delay taking over or giving up an IP.
	taken += a.announce(ctx, ch, whole)
	announced := time.Now()
	if first.services != nil {
		ch.merge(first)
	}
	// Then tell the others what this node can do: after it stopped answering what it no longer
	// can, before it answers anything new (publish asks for the computation that does).
	a.publish(self)
	a.report(ch, whole)
	if cause == syncMembers {
		alive := 0
		for _, n := range in.Nodes {
			if n.Alive {
				alive++
			}
		}
		a.log.Info("re-elected after a membership change", "alive", alive, "changedIPs", len(ch.ips),
			"takenOver", taken, "takeover", tookOver.Sub(start), "plan", planned.Sub(tookOver),
			"announce", announced.Sub(planned), "took", time.Since(start))
	}
}

// syncServices recomputes the IPs of the Services with the given keys and applies what changed.
func (a *Agent) syncServices(ctx context.Context, keys []string) {
	ch := a.eng.update(a.model.planServices(keys, a.handles))
	a.pace.scope.WithLabelValues(scopeServices).Inc()
	a.pace.ips.Add(float64(ch.recomputed))
	if len(ch.ips) == 0 && len(ch.services) == 0 {
		return
	}
	a.announce(ctx, ch, false)
	a.report(ch, false)
}

// membership is one reading of memberlist: a computation takes one and plans, reports events and
// writes status with it, so that all of them agree on who is alive even when memberlist changes
// meanwhile (the change causes the next computation).
type membership struct {
	alive []string          // the live speakers, sorted by name
	meta  map[string][]byte // what each of them published, by name
}

// readMembers reads memberlist once.
func (a *Agent) readMembers() membership {
	meta := a.opts.Members.MemberMeta()
	return membership{alive: slices.Sorted(maps.Keys(meta)), meta: meta}
}

// inputs reads what every IP's plan depends on: the configuration and the nodes from the cache,
// the nodes' liveness and readiness from mem.
func (a *Agent) inputs(ctx context.Context, mem membership) (plan.Input, error) {
	in := plan.Input{Self: a.opts.NodeName}
	cfg, err := a.config(ctx)
	if err != nil {
		return in, err
	}
	in.Config = cfg

	var nodes corev1.NodeList
	if err := a.opts.Cache.List(ctx, &nodes); err != nil {
		return in, fmt.Errorf("listing nodes: %w", err)
	}
	a.metrics.members.Set(float64(len(mem.alive)))
	for _, n := range nodes.Items {
		en := plan.NodeFromKube(&n)
		meta, alive := mem.meta[n.Name]
		en.Alive = alive
		if n.Name == a.opts.NodeName {
			a.noteNode(&n) // its own state is filled in by readyState
		} else {
			a.gossiped(&en, meta)
		}
		in.Nodes = append(in.Nodes, en)
	}
	return in, nil
}

// handles reports whether the Service is one this speaker announces.
func (a *Agent) handles(s *service) bool { return s.managed(a.opts.LBClass) }

// bgpPeers converts the configured peers of this node for the BGP speaker. Every peer that
// config.Parse accepts is one the speaker can use (a fuzz test checks it), so a BGPPeer the API
// accepted never reaches the speaker as a peer it refuses.
func bgpPeers(peers []*config.Peer) []bgp.Peer {
	out := make([]bgp.Peer, 0, len(peers))
	for _, p := range peers {
		out = append(out, bgp.Peer{
			Name: p.Name, MyASN: p.MyASN, PeerASN: p.PeerASN, Address: p.Address, Interface: p.Interface, Port: p.Port,
			SourceAddress: p.SourceAddress, RouterID: p.RouterID,
			HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectTime: p.ConnectTime,
			EBGPMultiHop: p.EBGPMultiHop, Password: p.Password, GracefulRestart: p.GracefulRestart, RestartTime: p.GracefulRestartTime,
			MaxPrefixes: p.MaxPrefixes, BFD: bgpBFD(p.BFDProfile), VRF: p.VRF, GracefulShutdown: p.GracefulShutdownTime,
		})
	}
	return out
}

// bgpBFD converts a peer's BFD profile (nil: no BFD) for the BGP speaker.
func bgpBFD(p *config.BFDProfile) bgp.BFD {
	if p == nil {
		return bgp.BFD{}
	}
	return bgp.BFD{Enabled: true, ReceiveInterval: p.ReceiveInterval, TransmitInterval: p.TransmitInterval,
		DetectMultiplier: uint8(min(p.DetectMultiplier, 255)), Passive: p.PassiveMode, MinimumTTL: uint8(min(p.MinimumTTL, 255))}
}

// bgpRoutes converts the plan's route table of each peer for the BGP speaker.
func bgpRoutes(tables map[string][]plan.Route) bgp.Routes {
	out := make(bgp.Routes, len(tables))
	for peer, routes := range tables {
		rs := make([]bgp.Route, 0, len(routes))
		for _, r := range routes {
			br := bgp.Route{Prefix: r.Prefix, LocalPref: r.LocalPref}
			for _, c := range r.Communities {
				if c.Large {
					br.LargeCommunities = append(br.LargeCommunities, c.LargeValue)
				} else {
					br.Communities = append(br.Communities, c.Value)
				}
			}
			rs = append(rs, br)
		}
		out[peer] = rs
	}
	return out
}

// handOver returns the route tables of p for the BGP speaker, with the routes that other nodes
// take over kept for handoverDelay (holdWithdrawals), and schedules the sync that withdraws them.
func (a *Agent) handOver(p plan.Plan) bgp.Routes {
	peers := make(map[string]bool, len(p.Peers))
	for _, peer := range p.Peers {
		peers[peer.Name] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	routes, next := holdWithdrawals(a.bgpApplied, bgpRoutes(p.Routes), peers, p.BGPElsewhere, a.bgpPending, time.Now(), handoverDelay)
	a.bgpApplied = routes
	if !next.IsZero() {
		if a.handoverTimer == nil {
			a.handoverTimer = time.AfterFunc(time.Until(next), a.Trigger)
		} else {
			a.handoverTimer.Reset(time.Until(next))
		}
	}
	return routes
}

// advertisedPrefixes counts the distinct prefixes of the plan's route tables.
func advertisedPrefixes(tables map[string][]plan.Route) int {
	set := map[netip.Prefix]bool{}
	for _, routes := range tables {
		for _, r := range routes {
			set[r.Prefix] = true
		}
	}
	return len(set)
}
