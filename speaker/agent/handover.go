package agent

import (
	"net/netip"
	"slices"
	"time"

	"github.com/herald-lb/herald/speaker/bgp"
)

// handoverDelay is how long a route another node carries on (plan.Plan.BGPElsewhere) stays
// advertised after this node stops advertising it: the router gets the other node's route
// before it loses this one (make-before-break). Both nodes react to the same change within a
// few milliseconds of each other; routers process received routes in batches (FRR every 50 ms),
// so the withdrawal must come after the batch that installs the new next hop, or the router
// could have no route for a moment. The route's traffic moves completely in about this delay
// plus the router's processing time.
const handoverDelay = 60 * time.Millisecond

// routeKey names one route of one peer.
type routeKey struct {
	peer   string
	prefix netip.Prefix
}

// holdWithdrawals returns want with the routes of applied (what the BGP speaker was last given)
// that want drops but another node advertises (elsewhere) added back until their deadline, and
// the earliest deadline still pending (zero when none). pending holds the deadlines by route and
// is updated: a route that comes back, or whose deadline passed, is forgotten. Routes of peers
// that are not in peers (this node's sessions) are dropped at once: their session goes away.
func holdWithdrawals(applied, want bgp.Routes, peers map[string]bool, elsewhere map[netip.Prefix]bool, pending map[routeKey]time.Time, now time.Time, delay time.Duration) (bgp.Routes, time.Time) {
	out := make(bgp.Routes, len(want))
	for peer, rs := range want {
		out[peer] = slices.Clone(rs)
	}
	keep := map[routeKey]bool{}
	var next time.Time
	for peer, rs := range applied {
		if !peers[peer] {
			continue
		}
		for _, r := range rs {
			k := routeKey{peer, r.Prefix}
			if slices.ContainsFunc(want[peer], func(w bgp.Route) bool { return w.Prefix == r.Prefix }) || !elsewhere[r.Prefix] {
				continue
			}
			until, ok := pending[k]
			if !ok {
				until = now.Add(delay)
			}
			if !now.Before(until) {
				continue
			}
			keep[k] = true
			pending[k] = until
			out[peer] = append(out[peer], r)
			if next.IsZero() || until.Before(next) {
				next = until
			}
		}
	}
	for k := range pending {
		if !keep[k] {
			delete(pending, k)
		}
	}
	return out, next
}
