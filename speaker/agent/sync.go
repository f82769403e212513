package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/plan"
)

// Event reasons the speaker uses on Services.
const (
	ReasonNodeAssigned  = "nodeAssigned"
	ReasonNotAnnounced  = "NotAnnounced"
	ReasonInvalidConfig = "InvalidConfig"
)

// sync recomputes the plan from the cache and applies it.
func (a *Agent) sync(ctx context.Context) {
	start := time.Now()
	in, svcByKey, err := a.inputs(ctx)
	if err != nil {
		a.log.Warn("reading the cluster state; keeping the current announcements", "err", err)
		return
	}
	self := a.readyState(&in)
	p := plan.Compute(in)
	a.metrics.observeOwners(p, a.opts.NodeName)

	// Announce first: nothing below may delay taking over or giving up an IP.
	if err := a.setL2Owned(ctx, p); err != nil {
		a.log.Warn("layer-2 announcer", "err", err)
	}
	if err := a.opts.BGP.SetPeers(ctx, bgpPeers(p.Peers)); err != nil {
		a.log.Warn("BGP peers", "err", err)
	}
	if err := a.opts.BGP.SetRoutes(ctx, a.handOver(p)); err != nil {
		a.log.Warn("BGP routes", "err", err)
	}
	// Then tell the others what this node can do: after it stopped answering what it no longer
	// can, before it answers anything new (publish asks for the computation that does).
	a.publish(self)
	a.metrics.syncSeconds.Observe(time.Since(start).Seconds())

	a.events(p, in, svcByKey)
	a.conflictEvents(p, svcByKey)
	a.status.set(a.withConflicts(desiredStatus(p, a.opts.NodeName, a.opts.Members.Members()), p))
}

// inputs reads everything the plan needs from the cache.
func (a *Agent) inputs(ctx context.Context) (plan.Input, map[string]*corev1.Service, error) {
	in := plan.Input{Self: a.opts.NodeName}
	cfg, err := a.config(ctx)
	if err != nil {
		return in, nil, err
	}
	in.Config = cfg

	var nodes corev1.NodeList
	if err := a.opts.Cache.List(ctx, &nodes); err != nil {
		return in, nil, fmt.Errorf("listing nodes: %w", err)
	}
	alive := map[string]bool{}
	members := a.opts.Members.Members()
	for _, m := range members {
		alive[m] = true
	}
	a.metrics.members.Set(float64(len(members)))
	metas := a.opts.Members.MemberMeta()
	for _, n := range nodes.Items {
		en := election.Node{Name: n.Name, Labels: n.Labels, Alive: alive[n.Name]}
		for _, c := range n.Status.Conditions {
			switch c.Type {
			case corev1.NodeReady:
				en.Ready = c.Status == corev1.ConditionTrue
			case corev1.NodeNetworkUnavailable:
				en.NetworkUnavailable = c.Status == corev1.ConditionTrue
			}
		}
		if n.Name == a.opts.NodeName {
			a.noteNode(&n) // its own state is filled in by readyState
		} else {
			a.gossiped(&en, metas[n.Name])
		}
		in.Nodes = append(in.Nodes, en)
	}

	var svcs corev1.ServiceList
	if err := a.opts.Cache.List(ctx, &svcs); err != nil {
		return in, nil, fmt.Errorf("listing services: %w", err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := a.opts.Cache.List(ctx, &slices); err != nil {
		return in, nil, fmt.Errorf("listing endpoint slices: %w", err)
	}
	eps := plan.EndpointsByService(slices.Items)
	byKey := map[string]*corev1.Service{}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if !a.handles(s) {
			continue
		}
		ps, ok := plan.ServiceFromKube(s, eps)
		if !ok {
			continue
		}
		in.Services = append(in.Services, ps)
		byKey[ps.Key] = s
	}
	return in, byKey, nil
}

// handles reports whether the Service is one this speaker announces.
func (a *Agent) handles(s *corev1.Service) bool {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	class := ""
	if s.Spec.LoadBalancerClass != nil {
		class = *s.Spec.LoadBalancerClass
	}
	return class == a.opts.LBClass
}

// bgpPeers converts the configured peers of this node for the BGP speaker. Every peer that
// config.Parse accepts is one the speaker can use (a fuzz test checks it), so a BGPPeer the API
// accepted never reaches the speaker as a peer it refuses.
func bgpPeers(peers []*config.Peer) []bgp.Peer {
	out := make([]bgp.Peer, 0, len(peers))
	for _, p := range peers {
		out = append(out, bgp.Peer{
			Name: p.Name, MyASN: p.MyASN, PeerASN: p.PeerASN, Address: p.Address, Port: p.Port,
			SourceAddress: p.SourceAddress, RouterID: p.RouterID,
			HoldTime: p.HoldTime, KeepaliveTime: p.KeepaliveTime, ConnectTime: p.ConnectTime,
			EBGPMultiHop: p.EBGPMultiHop, Password: p.Password, GracefulRestart: p.GracefulRestart,
			MaxPrefixes: p.MaxPrefixes, BFD: bgpBFD(p.BFDProfile),
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
		DetectMultiplier: uint8(min(p.DetectMultiplier, 255)), Passive: p.PassiveMode}
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

// events reports ownership changes and unannounced IPs on the Services. The new owner reports a
// layer-2 takeover; an unannounced IP is reported by one speaker only, elected among the live ones.
func (a *Agent) events(p plan.Plan, in plan.Input, svcs map[string]*corev1.Service) {
	owned := map[string][]string{}
	for _, as := range p.L2 {
		owned[as.Service] = append(owned[as.Service], as.IP.String())
	}
	advertised := map[string][]string{}
	for _, as := range p.BGP {
		advertised[as.Service] = append(advertised[as.Service], as.IP.String())
	}
	alive := a.opts.Members.Members()

	a.mu.Lock()
	defer a.mu.Unlock()
	for key, ips := range owned {
		if !a.prevOwned[key] {
			if s := svcs[key]; s != nil {
				a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonNodeAssigned,
					"announcing %s from node %s over layer 2", strings.Join(ips, ", "), a.opts.NodeName)
			}
		}
	}
	for key, ips := range advertised {
		if !a.prevBGP[key] {
			if s := svcs[key]; s != nil {
				a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonNodeAssigned,
					"advertising %s from node %s over BGP", strings.Join(ips, ", "), a.opts.NodeName)
			}
		}
	}
	a.prevOwned = map[string]bool{}
	for k := range owned {
		a.prevOwned[k] = true
	}
	a.prevBGP = map[string]bool{}
	for k := range advertised {
		a.prevBGP[k] = true
	}
	a.metrics.routes.Set(float64(advertisedPrefixes(p.Routes)))

	warned := map[string]string{}
	for _, u := range p.Unannounced {
		if reporter, ok := election.Owner(u.IP, alive); !ok || reporter != a.opts.NodeName {
			continue
		}
		id := u.Service + " " + u.IP.String()
		warned[id] = u.Reason
		if a.warned[id] == u.Reason {
			continue
		}
		if s := svcs[u.Service]; s != nil {
			a.opts.Recorder.Eventf(s, corev1.EventTypeWarning, ReasonNotAnnounced,
				"%s is assigned but not announced: %s", u.IP, u.Reason)
		}
	}
	a.warned = warned
	a.metrics.setUnannounced(warned)
}
