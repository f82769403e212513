package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// TestLabListenNewSession checks Config.ListenPort against FRR with the node as a static
// neighbour (`timers connect 1`): a new session is opened by the router's connection to the
// speaker's listener on the node's address, at the router's next attempt, instead of at the
// speaker's own first attempt, which GoBGP v4.8.0 makes 1.5-2 s after the peer is added
// (listen.go). Each of 5 runs has a router of its own, which has tried to reach the node for a
// random part of its connect interval when the peer is added (as a router configured before
// the BGPPeer was created): FRR backs off after a session ends, so a router reused across runs
// would measure its back-off. The median time from SetPeers to the route at the router must be
// under GoBGP's 1.5 s, which no session it opens itself can beat.
func TestLabListenNewSession(t *testing.T) {
	ds := measureListenNewSession(t, 5)
	if m := ds[len(ds)/2]; m >= 1500*time.Millisecond {
		t.Errorf("median time from a new session to its route at the router = %v, want under 1.5 s (GoBGP's first connection attempt)", m)
	}
}

// TestMeasureListenNewSession reports TestLabListenNewSession's figure for make bench
// (bgp_new_session_router_connects_ms, median of 7 runs): a new session to a router that has
// the node as a static neighbour and connects every second, the speaker listening on port 179.
// It runs only with HERALD_BENCH=1.
func TestMeasureListenNewSession(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("set HERALD_BENCH=1 to measure")
	}
	ds := measureListenNewSession(t, 7)
	m := Measurement{Name: "bgp_new_session_router_connects_ms", Value: float64(ds[len(ds)/2].Microseconds()) / 1000, Unit: "ms"}
	b, _ := json.Marshal(m)
	fmt.Println("BENCHJSON " + string(b))
}

// measureListenNewSession returns the sorted times of runs new sessions (see
// TestLabListenNewSession), each checked to be opened by the router.
func measureListenNewSession(t *testing.T, runs int) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for i := range runs {
		t.Run("", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			n1 := netip.MustParseAddr("198.51.100.11")
			lb := newLabWith(t, 1, frr.Config{Groups: []frr.PeerGroup{{Name: "static", Neighbors: []netip.Addr{n1},
				KeepaliveTime: time.Second, HoldTime: 3 * time.Second, ConnectTime: time.Second}}}, labOptions{ListenPort: 179})
			n := lb.nodes[0]
			n.setRoutes(labRoute{Prefix: vip4})
			// The router tries every second; add the peer at a random moment of that second.
			phase := time.NewTimer(time.Second + rand.N(time.Second))
			defer phase.Stop()
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-phase.C:
			}
			start := time.Now()
			n.setPeers(ebgpPeer("r4", routerV4))
			seen := lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
			ds = append(ds, seen.Sub(start))
			// The node's end of the session is its listener's port when the router opened it.
			out, err := lb.net.Exec(n.ns, "ss", "-Htn", "state", "established", "( sport = :179 or dport = :179 )")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("run %d: route at the router after %v; session %s", i, seen.Sub(start), strings.Join(strings.Fields(out), " "))
			if !strings.Contains(out, n.v4.String()+":179 ") {
				t.Errorf("run %d: the session is %q, want the router's connection to %v:179", i, strings.TrimSpace(out), n.v4)
			}
		})
	}
	if len(ds) < runs {
		t.Fatalf("%d of %d runs measured", len(ds), runs)
	}
	slices.Sort(ds)
	t.Logf("new session to route at the router, sessions the router opens: %v (median %v)", ds, ds[len(ds)/2])
	return ds
}
