package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// TestMeasureBGPScale gives one node N routes (10,000 with HERALD_BENCH=1, 1,000 otherwise) and a
// new peer at once, and measures how long FRR takes to have accepted all of them: from SetPeers,
// and from the first moment the session is seen Established (GoBGP's own first-connection wait
// is in the first figure, not in the second). Then it adds one route and counts the UPDATE
// messages FRR received for it: a change to one Service must send one UPDATE, not re-advertise
// the table.
func TestMeasureBGPScale(t *testing.T) {
	n := 1000
	bench := os.Getenv("HERALD_BENCH") == "1"
	if bench {
		n = 10000
	}
	lb := newLab(t, 1, frr.Config{Groups: nodeGroups()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	node := lb.nodes[0]
	routes := make([]labRoute, 0, n+1)
	for i := range n + 1 {
		// 198.18.0.0/15 is for benchmarks (RFC 2544); the router is in a namespace of its own.
		routes = append(routes, labRoute{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}), 32)})
	}
	accepted := func(nb frr.Neighbor) int { return nb.AddressFamilyInfo["ipv4Unicast"].AcceptedPrefixCounter }

	node.setRoutes(routes[:n]...)
	start := time.Now()
	node.setPeers(ebgpPeer("r4", routerV4))
	established := lb.waitNeighbor(t, ctx, node.v4, "the session to be established", frr.Neighbor.Established)
	estAt := time.Now()
	nb := lb.waitNeighbor(t, ctx, node.v4, fmt.Sprintf("%d routes accepted", n), func(nb frr.Neighbor) bool { return accepted(nb) >= n })
	allAt := time.Now()
	if got := accepted(nb); got != n {
		t.Errorf("FRR accepted %d routes from the node, want %d", got, n)
	}
	t.Logf("%d routes: all at FRR %v after SetPeers, %v after the session was seen established (%d UPDATEs)",
		n, allAt.Sub(start).Round(time.Millisecond), allAt.Sub(estAt).Round(time.Millisecond), nb.Messages.UpdatesRecv-established.Messages.UpdatesRecv)

	// One more route: one UPDATE.
	before := nb.Messages.UpdatesRecv
	node.setRoutes(routes...)
	nb = lb.waitNeighbor(t, ctx, node.v4, "the added route", func(nb frr.Neighbor) bool { return accepted(nb) == n+1 })
	updates := nb.Messages.UpdatesRecv - before
	t.Logf("one route added beside %d: %d UPDATE(s)", n, updates)
	if updates != 1 {
		t.Errorf("adding one route beside %d sent %d UPDATEs, want 1 (no re-advertisement of the table)", n, updates)
	}
	if bench {
		for _, m := range []Measurement{
			{Name: fmt.Sprintf("bgp_%d_routes_to_frr_ms", n), Value: float64(allAt.Sub(start).Microseconds()) / 1000, Unit: "ms"},
			{Name: fmt.Sprintf("bgp_%d_routes_after_established_ms", n), Value: float64(allAt.Sub(estAt).Microseconds()) / 1000, Unit: "ms"},
			{Name: fmt.Sprintf("bgp_one_route_change_updates_%d", n), Value: float64(updates), Unit: "updates"},
		} {
			b, _ := json.Marshal(m)
			fmt.Println("BENCHJSON " + string(b))
		}
	}
}
