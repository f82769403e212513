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
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// bfdProfile300 is the BFD profile of the lab: 300 ms x 3, as on the router.
var bfdProfile300 = BFD{Enabled: true, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}

// bfdLabConfig is FRR with bfdd: node 1 (198.51.100.11) peers in a group with BFD (profile
// 300 ms x 3), node 2 (198.51.100.12) in one without. Both have hold time 3 s.
func bfdLabConfig() frr.Config {
	group := func(name, from string, bfd bool) frr.PeerGroup {
		g := frr.PeerGroup{Name: name, ListenRanges: []netip.Prefix{netip.MustParsePrefix(from)}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second, BFD: bfd, UpdateSource: routerV4}
		if bfd {
			g.BFDProfile = "fast"
		}
		return g
	}
	return frr.Config{
		BFD:         true,
		BFDProfiles: []frr.BFDProfile{{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}},
		Groups:      []frr.PeerGroup{group("bfd", "198.51.100.11/32", true), group("nobfd", "198.51.100.12/32", false)},
	}
}

// bfdLab starts the lab of bfdLabConfig with routes to vip4 from both nodes, node 1 with BFD,
// both with graceful restart (the default), and waits until BFD is Up on both sides.
func bfdLab(t *testing.T, ctx context.Context, profile BFD) *lab {
	t.Helper()
	lb := newLab(t, 2, bfdLabConfig())
	lb.bfdGroup = "bfd"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bfdd log:\n%s", lb.router.Log("bfdd"))
		}
	})
	n1, n2 := lb.nodes[0], lb.nodes[1]
	// Graceful restart is on, as for every BGPPeer that does not turn it off: a path that BFD
	// (or the hold time) declares down must still be removed at once, not kept for the restart time.
	p1, p2 := ebgpPeer("r4", routerV4), ebgpPeer("r4", routerV4)
	p1.GracefulRestart, p2.GracefulRestart = true, true
	p1.BFD = profile
	n1.setPeers(p1)
	n2.setPeers(p2)
	for _, n := range lb.nodes {
		n.setRoutes(labRoute{Prefix: vip4})
	}
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	lb.waitBFD(t, ctx, n1, "up")
	return lb
}

// bgpdLostBFD is how long waitBFD waits for an "up" session before it takes bgpd to have lost
// its BFD registration for n.
const bgpdLostBFD = 20 * time.Second

// waitBFD waits until bfdd's session with n has the status want ("up", "down", ...).
//
// FRR 8.4's bgpd registers a neighbour's BFD session with bfdd when the BGP session comes up,
// first without a source address and then with it. After a quick flap it sometimes removes the
// first and never sends the second: bfdd then has no session for n ("control-packet: no session
// found" for each of the speaker's packets) while BGP is Established, and nothing on the
// speaker's side can change that (a `clear bgp` does not either). When an "up" session has not
// appeared after bgpdLostBFD, waitBFD turns BFD off and on again for n's peer-group at the
// router, which makes bgpd register anew, and says so in the test log.
func (lb *lab) waitBFD(t testing.TB, ctx context.Context, n *node, want string) frr.BFDPeer {
	t.Helper()
	var got frr.BFDPeer
	poll := func(ctx context.Context) error {
		return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			peers, err := lb.router.BFDPeers(ctx)
			got = peers[n.v4]
			return got.Status == want, err
		})
	}
	var err error
	if want == "up" {
		first, cancel := context.WithTimeout(ctx, bgpdLostBFD)
		err = poll(first)
		cancel()
		if err != nil && ctx.Err() == nil && got.Status == "" && lb.bfdGroup != "" {
			t.Logf("bfdd has no session with %s after %v (bgpd did not register it again): BFD off and on for its peer-group at the router", n.name, bgpdLostBFD)
			if out, cerr := lb.router.Vtysh(ctx, "configure terminal", "router bgp 64500", "no neighbor "+lb.bfdGroup+" bfd",
				"neighbor "+lb.bfdGroup+" bfd", "neighbor "+lb.bfdGroup+" bfd profile fast"); cerr != nil {
				t.Fatalf("re-enabling BFD at the router: %v: %s", cerr, out)
			}
			err = poll(ctx)
		}
	} else {
		err = poll(ctx)
	}
	if err != nil {
		t.Fatalf("bfdd's session with %s is %+v, want status %q: %v", n.name, got, want, err)
	}
	return got
}

// setLink takes n's link (its port on the bridge) down or up: a dead host, as the router sees
// it. It sets the link state with one netlink request from the test process (no `ip netns exec`,
// whose start-up would blur the moment of the cut) and returns when the link changed.
func (lb *lab) setLink(t testing.TB, n *node, up bool) time.Time {
	t.Helper()
	nsh, err := netns.GetFromName(lb.sw)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName("p-" + n.name)
	if err != nil {
		t.Fatal(err)
	}
	set := h.LinkSetDown
	if up {
		set = h.LinkSetUp
	}
	at := time.Now()
	if err := set(link); err != nil {
		t.Fatalf("setting the link of %s up=%v: %v", n.name, up, err)
	}
	return at
}

// linkFailover takes n's link down and returns how long the router took to remove n's next hop
// of vip4 (leaving the other nodes'), then brings the link back and waits for the next hop to
// return.
func (lb *lab) linkFailover(t testing.TB, ctx context.Context, n *node) time.Duration {
	t.Helper()
	var others []*node
	for _, o := range lb.nodes {
		if o != n {
			others = append(others, o)
		}
	}
	start := lb.setLink(t, n, false)
	gone := lb.waitHops(t, ctx, vip4, hops(others, false))
	lb.setLink(t, n, true)
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	return gone.Sub(start)
}

// TestLabBFD checks BFD against FRR's bfdd with 300 ms x 3 on both sides: the session comes up
// with the profile's timers, its state shows in the status; when the node's link goes down (or
// its speaker freezes), the router removes the node's next hop in under a second, while a node
// without BFD is removed only when the hold time (3 s) expires; the speaker closes its BGP
// session when BFD declares the path down, and both come back with the link.
func TestLabBFD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lb := bfdLab(t, ctx, bfdProfile300)
	n1, n2 := lb.nodes[0], lb.nodes[1]

	bp := lb.waitBFD(t, ctx, n1, "up")
	if bp.RemoteReceiveInterval != 300 || bp.RemoteTransmitInterval != 300 || bp.RemoteDetectMultiplier != 3 || bp.Multihop {
		t.Errorf("bfdd sees the speaker's session as %+v, want single hop, 300 ms x 3", bp)
	}
	if st := n1.status("r4"); st.BFD != "Up" || st.BFDError != "" || st.State != StateEstablished {
		t.Errorf("n1 status = %+v, want Established with BFD Up", st)
	}
	if st := n2.status("r4"); st.BFD != "" {
		t.Errorf("n2 (no BFD) status = %+v, want no BFD state", st)
	}

	// The time itself (about 0.9 s with 300 ms x 3) is measured by TestMeasureBFD for make bench;
	// here BFD only has to beat the 3 s hold time clearly, so that a loaded machine cannot fail it.
	t.Run("link down: next hop removed by BFD before the hold time", func(t *testing.T) {
		start := lb.setLink(t, n1, false)
		gone := lb.waitHops(t, ctx, vip4, []netip.Addr{n2.v4})
		d := gone.Sub(start)
		t.Logf("BFD failover: %v", d)
		if d >= 1500*time.Millisecond {
			t.Errorf("next hop of n1 left %v after its link went down, want BFD's detection (300 ms x 3), well under the 3 s hold time", d)
		}
		// The speaker noticed too, and holds its BGP session down.
		var st PeerStatus
		err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			st = n1.status("r4")
			return st.BFD == "Down" && st.State != StateEstablished && strings.Contains(st.LastError, "BFD declared the path to the peer down"), nil
		})
		if err != nil {
			t.Errorf("n1 status while its link is down = %+v, want BFD Down and the session down because of it: %v", st, err)
		}
		lb.setLink(t, n1, true)
		lb.waitBFD(t, ctx, n1, "up")
		lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
		if st := n1.status("r4"); st.BFD != "Up" || st.State != StateEstablished || st.LastError != "" {
			t.Errorf("n1 status after its link came back = %+v, want Established, BFD Up, no error", st)
		}
	})

	t.Run("frozen speaker: next hop removed by BFD before the hold time", func(t *testing.T) {
		start := time.Now()
		if err := n1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		gone := lb.waitHops(t, ctx, vip4, []netip.Addr{n2.v4})
		if err := n1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if d := gone.Sub(start); d >= 1500*time.Millisecond {
			t.Errorf("next hop of frozen n1 left after %v, want BFD's detection (300 ms x 3), well under the 3 s hold time", d)
		}
		lb.waitBFD(t, ctx, n1, "up")
		lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	})

	t.Run("without BFD the hold time decides", func(t *testing.T) {
		d := lb.linkFailover(t, ctx, n2)
		t.Logf("failover without BFD: %v", d)
		if d < 2*time.Second {
			t.Errorf("next hop of n2 (no BFD) left %v after its link went down, want the hold time (3 s)", d)
		}
	})
}

// TestLabBFDPassive checks that a passive speaker's BFD session comes up with an active router.
func TestLabBFDPassive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	passive := bfdProfile300
	passive.Passive = true
	lb := bfdLab(t, ctx, passive)
	if st := lb.nodes[0].status("r4"); st.BFD != "Up" {
		t.Errorf("passive n1 status = %+v, want BFD Up", st)
	}
}

// TestMeasureBFD measures, against FRR's bfdd with 300 ms x 3 on both sides, the time from a
// node's link going down to the router removing the node's next hop: with BFD (median and
// worst of 11 runs, each cut at a random moment of the packet stream, waitCutPhase) and, for
// comparison, without BFD (hold time 3 s, one run). It runs only with HERALD_BENCH=1 and prints
// one JSON line per measurement on stdout.
func TestMeasureBFD(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("set HERALD_BENCH=1 to measure")
	}
	for _, m := range MeasureBFD(t, 11) {
		b, _ := json.Marshal(m)
		fmt.Println("BENCHJSON " + string(b))
	}
}

// MeasureBFD returns the failover figures of TestMeasureBFD; runs is the number of BFD runs.
func MeasureBFD(t *testing.T, runs int) []Measurement {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lb := bfdLab(t, ctx, bfdProfile300)
	n1, n2 := lb.nodes[0], lb.nodes[1]
	var withBFD []float64
	for range runs {
		lb.waitBFD(t, ctx, n1, "up")
		waitCutPhase(t, ctx)
		d := lb.linkFailover(t, ctx, n1)
		withBFD = append(withBFD, float64(d.Microseconds())/1000)
	}
	slices.Sort(withBFD)
	t.Logf("failover with BFD (ms): %v", withBFD)
	without := float64(lb.linkFailover(t, ctx, n2).Microseconds()) / 1000
	return []Measurement{
		{Name: "bgp_bfd_failover_ms", Value: withBFD[len(withBFD)/2], Unit: "ms"},
		{Name: "bgp_bfd_failover_max_ms", Value: withBFD[len(withBFD)-1], Unit: "ms"},
		{Name: "bgp_holdtime_failover_ms", Value: without, Unit: "ms"},
	}
}

// waitCutPhase waits, after bfdd reported the session Up, until a moment of the session's packet
// stream chosen at random: 1 s, for both sides' Poll Sequences to end and the 300 ms intervals to
// rule, and a random part of one transmit interval. bfdd declares the node down 300 ms x 3 after
// the last packet it received, so the failover time depends on where in the interval the link
// fails. bfdd reports Up on a packet of the speaker, and the poll that sees it returns a few tens
// of milliseconds later: a cut right then falls just after a packet in every run (the worst phase,
// about 970 ms here), where a real link fails at a moment that has nothing to do with the packets.
func waitCutPhase(t testing.TB, ctx context.Context) {
	t.Helper()
	d := time.Second + rand.N(bfdProfile300.TransmitInterval)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		t.Fatalf("waiting %v before cutting the link: %v", d, ctx.Err())
	case <-timer.C:
	}
}

// TestLabBFDIPv6 checks BFD over an IPv6 session (the IPv6 listener, hop limit 255) against
// bfdd.
func TestLabBFDIPv6(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb := newLab(t, 1, frr.Config{
		BFD:         true,
		BFDProfiles: []frr.BFDProfile{{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}},
		Groups: []frr.PeerGroup{{Name: "bfd6", ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")},
			KeepaliveTime: time.Second, HoldTime: 3 * time.Second, BFD: true, BFDProfile: "fast", UpdateSource: routerV6}},
	})
	n := lb.nodes[0]
	p := ebgpPeer("r6", routerV6)
	p.BFD = bfdProfile300
	n.setPeers(p)
	n.setRoutes(labRoute{Prefix: vip6})
	lb.waitHops(t, ctx, vip6, []netip.Addr{n.v6})
	var got frr.BFDPeer
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		peers, err := lb.router.BFDPeers(ctx)
		got = peers[n.v6]
		return got.Status == "up", err
	})
	if err != nil {
		t.Fatalf("bfdd's session with %v is %+v, want up: %v", n.v6, got, err)
	}
	if st := n.status("r6"); st.BFD != "Up" {
		t.Errorf("status = %+v, want BFD Up", st)
	}
}
