package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// Measurement is one result line of TestMeasureBGP, as `make bench` collects them.
type Measurement struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// TestMeasureBGP measures, against FRR in a namespace, the time from SetRoutes to the route
// being in FRR's kernel table (median of several routes), from SetPeers of a new peer to the
// route set before being in FRR's kernel table (the session's setup included), and from a
// speaker's SIGTERM to its next hop leaving FRR's kernel route. It runs only with HERALD_BENCH=1 and prints one JSON
// line per measurement on stdout.
func TestMeasureBGP(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("set HERALD_BENCH=1 to measure")
	}
	for _, m := range MeasureBGP(t, 9) {
		b, _ := json.Marshal(m)
		fmt.Println("BENCHJSON " + string(b))
	}
}

// MeasureBGP builds a lab of three nodes and one FRR router and returns the measurements;
// samples is the number of routes timed for the install latency.
func MeasureBGP(t *testing.T, samples int) []Measurement {
	lb := newLab(t, 3, frr.Config{Groups: nodeGroups()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range lb.nodes {
		n.setPeers(ebgpPeer("r4", routerV4))
		n.setRoutes(labRoute{Prefix: vip4})
	}
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))

	n1 := lb.nodes[0]
	var install []float64
	routes := []labRoute{{Prefix: vip4}}
	for i := range samples {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + i)}), 32)
		routes = append(routes, labRoute{Prefix: p})
		start := time.Now()
		n1.setRoutes(routes...)
		at := lb.waitHops(t, ctx, p, []netip.Addr{n1.v4})
		install = append(install, float64(at.Sub(start).Microseconds())/1000)
	}
	slices.Sort(install)

	// A new session: n2 has no peer, then gets one; its route is set already.
	var newPeer []float64
	n2 := lb.nodes[1]
	for range samples / 3 {
		n2.setPeers()
		lb.waitHops(t, ctx, vip4, []netip.Addr{lb.nodes[0].v4, lb.nodes[2].v4})
		lb.waitNeighbor(t, ctx, n2.v4, "n2's session to close", func(nb frr.Neighbor) bool { return !nb.Established() })
		start := time.Now()
		n2.setPeers(ebgpPeer("r4", routerV4))
		at := lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
		newPeer = append(newPeer, float64(at.Sub(start).Microseconds())/1000)
	}
	slices.Sort(newPeer)

	n3 := lb.nodes[2]
	start := time.Now()
	if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gone := lb.waitHops(t, ctx, vip4, hops(lb.nodes[:2], false))
	withdraw := float64(gone.Sub(start).Microseconds()) / 1000
	return []Measurement{
		{Name: "bgp_setroutes_to_kernel_ms", Value: install[len(install)/2], Unit: "ms"},
		{Name: "bgp_setroutes_to_kernel_max_ms", Value: install[len(install)-1], Unit: "ms"},
		{Name: "bgp_speaker_sigterm_to_withdrawn_ms", Value: withdraw, Unit: "ms"},
		{Name: "bgp_setpeers_to_kernel_ms", Value: newPeer[len(newPeer)/2], Unit: "ms"},
	}
}
