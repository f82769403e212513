package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/speaker/bgp"
)

func TestHoldWithdrawals(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := 60 * time.Millisecond
	moved, gone, stays := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32"), netip.MustParsePrefix("203.0.113.3/32")
	lp := uint32(150)
	applied := bgp.Routes{"tor": {{Prefix: moved, LocalPref: &lp}, {Prefix: gone}, {Prefix: stays}}, "old": {{Prefix: moved}}}
	elsewhere := map[netip.Prefix]bool{moved: true}
	pending := map[routeKey]time.Time{}
	peers := map[string]bool{"tor": true}
	cmpOpts := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

	steps := []struct {
		name     string
		at       time.Duration
		want     bgp.Routes
		wantOut  bgp.Routes
		wantNext time.Duration // -1: none
	}{
		{"moved to another node: kept with its attributes; gone at once; removed peer's routes dropped", 0,
			bgp.Routes{"tor": {{Prefix: stays}}},
			bgp.Routes{"tor": {{Prefix: stays}, {Prefix: moved, LocalPref: &lp}}}, d},
		{"still within the delay: same deadline", 30 * time.Millisecond,
			bgp.Routes{"tor": {{Prefix: stays}}},
			bgp.Routes{"tor": {{Prefix: stays}, {Prefix: moved, LocalPref: &lp}}}, d},
		{"deadline reached: withdrawn", 60 * time.Millisecond,
			bgp.Routes{"tor": {{Prefix: stays}}},
			bgp.Routes{"tor": {{Prefix: stays}}}, -1},
	}
	for _, s := range steps {
		out, next := holdWithdrawals(applied, s.want, peers, elsewhere, pending, t0.Add(s.at), d)
		if diff := cmp.Diff(s.wantOut, out, cmpOpts); diff != "" {
			t.Errorf("%s: routes (-want +got):\n%s", s.name, diff)
		}
		if wantNext := t0.Add(s.wantNext); s.wantNext < 0 && !next.IsZero() || s.wantNext >= 0 && !next.Equal(wantNext) {
			t.Errorf("%s: next = %v, want %v", s.name, next, s.wantNext)
		}
		applied = out
	}
	if len(pending) != 0 {
		t.Errorf("pending after the deadline: %v", pending)
	}

	// The last route of a peer moves away: the plan has no table for the peer, the route is
	// kept all the same.
	out, _ := holdWithdrawals(bgp.Routes{"tor": {{Prefix: moved}}}, bgp.Routes{}, peers, elsewhere, map[routeKey]time.Time{}, t0, d)
	if diff := cmp.Diff(bgp.Routes{"tor": {{Prefix: moved}}}, out, cmpOpts); diff != "" {
		t.Errorf("last route of a peer (-want +got):\n%s", diff)
	}

	// A route that comes back before its deadline is forgotten: a later withdrawal gets the full delay.
	applied = bgp.Routes{"tor": {{Prefix: moved}}}
	_, _ = holdWithdrawals(applied, bgp.Routes{}, peers, elsewhere, pending, t0, d)
	_, _ = holdWithdrawals(applied, applied, peers, elsewhere, pending, t0.Add(10*time.Millisecond), d)
	if len(pending) != 0 {
		t.Errorf("pending after the route came back: %v", pending)
	}
	_, next := holdWithdrawals(applied, bgp.Routes{}, peers, elsewhere, pending, t0.Add(50*time.Millisecond), d)
	if !next.Equal(t0.Add(110 * time.Millisecond)) {
		t.Errorf("deadline of a new withdrawal = %v, want 110ms after t0", next.Sub(t0))
	}
}
