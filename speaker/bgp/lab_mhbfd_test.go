package bgp

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"github.com/herald-lb/herald/internal/testing/netlab"
)

// The multi-hop lab: node n1 (198.51.100.11/24) and the router (192.0.2.2/24) are on two links
// joined by a forwarding namespace "mid" (198.51.100.1 and 192.0.2.1), so every packet between
// them crosses one router and arrives with TTL 254.
var (
	mhRouter    = netip.MustParseAddr("192.0.2.2")
	mhMidNode   = netip.MustParseAddr("198.51.100.1")
	mhMidRouter = netip.MustParseAddr("192.0.2.1")
)

// multiHopBFDLab builds the multi-hop lab: FRR (bfdd profile 300 ms x 3) accepts an eBGP
// multi-hop session with BFD from 198.51.100.0/24 (`neighbor mh ebgp-multihop`, `neighbor mh
// bfd`, which makes bfdd run a multi-hop session, RFC 5883); n1 peers with the router's
// 192.0.2.2 with ebgpMultiHop and profile, announces vip4, and the test waits until the route
// is in the router's kernel. It returns the lab and the mid namespace.
func multiHopBFDLab(t *testing.T, ctx context.Context, profile BFD) (*lab, string) {
	t.Helper()
	if err := frr.Available(); err != nil {
		t.Skip(err)
	}
	l := netlab.ForTest(t)
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	addNS := func(short string) string {
		ns, err := l.AddNS(short)
		must("", err)
		return ns
	}
	mid, rns, nns := addNS("mid"), addNS("r"), addNS("n1")
	must("", l.Veth(nns, "eth0", mid, "eth0", ""))
	must("", l.Veth(rns, "eth0", mid, "eth1", ""))
	must(l.Exec(mid, "ip", "addr", "add", mhMidNode.String()+"/24", "dev", "eth0"))
	must(l.Exec(mid, "ip", "addr", "add", mhMidRouter.String()+"/24", "dev", "eth1"))
	must(l.Exec(mid, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
	must(l.Exec(nns, "ip", "addr", "add", "198.51.100.11/24", "dev", "eth0"))
	must(l.Exec(nns, "ip", "route", "add", "default", "via", mhMidNode.String()))
	must(l.Exec(rns, "ip", "addr", "add", mhRouter.String()+"/24", "dev", "eth0"))
	must(l.Exec(rns, "ip", "route", "add", "198.51.100.0/24", "via", mhMidRouter.String()))

	lb := &lab{net: l, rns: rns, sw: mid, bfdGroup: "mh"}
	v4 := netip.MustParseAddr("198.51.100.11")
	lb.nodes = []*node{startNode(t, l, "n1", nns, v4, netip.Addr{}, labOptions{})}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	lb.router, err = frr.Start(sctx, rns, frr.Config{
		ASN: 64500, RouterID: mhRouter, BFD: true,
		BFDProfiles: []frr.BFDProfile{{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}},
		Groups: []frr.PeerGroup{{Name: "mh", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			KeepaliveTime: time.Second, HoldTime: 3 * time.Second, BFD: true, BFDProfile: "fast"}},
		Extra: []string{"neighbor mh ebgp-multihop 255"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bgpd log:\n%s", lb.router.Log("bgpd"))
			t.Logf("bfdd log:\n%s", lb.router.Log("bfdd"))
		}
		_ = lb.router.Close()
	})
	n := lb.nodes[0]
	p := ebgpPeer("mh", mhRouter)
	p.EBGPMultiHop, p.GracefulRestart, p.BFD = true, true, profile
	n.setPeers(p)
	n.setRoutes(labRoute{Prefix: vip4})
	// The router reaches n1's next hop through mid.
	lb.waitHops(t, ctx, vip4, []netip.Addr{mhMidRouter})
	return lb, mid
}

// TestLabMultiHopBFD checks multi-hop BFD (RFC 5883) against FRR's bfdd with the router one
// forwarding hop away: the session comes up as a multi-hop session on both sides (bfdd accepts
// the speaker's packets with its default minimum TTL of 254, so the speaker sends TTL 255, and
// the speaker accepts bfdd's, which arrive with TTL 254); when BFD packets (UDP port 4784) stop
// crossing the middle router while BGP still could, the router removes the node's route in
// BFD's detection time (300 ms x 3), well under the 3 s hold time, and the speaker holds its
// session down until BFD is Up again.
func TestLabMultiHopBFD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	profile := bfdProfile300
	profile.MinimumTTL = 254
	lb, mid := multiHopBFDLab(t, ctx, profile)
	n1 := lb.nodes[0]

	bp := lb.waitBFD(t, ctx, n1, "up")
	if !bp.Multihop || bp.RemoteReceiveInterval != 300 || bp.RemoteTransmitInterval != 300 || bp.RemoteDetectMultiplier != 3 {
		t.Errorf("bfdd sees the speaker's session as %+v, want multi-hop, 300 ms x 3", bp)
	}
	if st := n1.status("mh"); st.BFD != "Up" || st.BFDError != "" || st.State != StateEstablished {
		t.Errorf("n1 status = %+v, want Established with BFD Up", st)
	}

	// Drop BFD's multi-hop port in the middle router, both ways; BGP (TCP 179) still passes.
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(lb.net.Exec(mid, "nft", "add table ip herald_mhbfd"))
	t.Cleanup(func() { _, _ = lb.net.Exec(mid, "nft", "delete table ip herald_mhbfd") })
	must(lb.net.Exec(mid, "nft", "add chain ip herald_mhbfd hbfd { type filter hook forward priority 0 ; policy accept ; }"))
	waitCutPhase(t, ctx)
	start := time.Now()
	must(lb.net.Exec(mid, "nft", "add rule ip herald_mhbfd hbfd udp dport 4784 drop"))
	gone := lb.waitHops(t, ctx, vip4, nil)
	d := gone.Sub(start)
	t.Logf("multi-hop BFD failover: %v", d)
	if d >= 1500*time.Millisecond {
		t.Errorf("route via n1 left %v after BFD packets stopped, want BFD's detection (300 ms x 3), well under the 3 s hold time", d)
	}
	// The speaker closed its session when BFD went down. BGP itself still passes, so the session
	// reconnects after the connect time (1 s; it is not held down until BFD is Up, see onBFD):
	// either it is still down because of BFD, or it is a new session, opened after the cut.
	var st PeerStatus
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	err := frr.Poll(pctx, 20*time.Millisecond, func() (bool, error) {
		st = n1.status("mh")
		closed := st.State != StateEstablished && strings.Contains(st.LastError, "BFD declared the path to the peer down")
		return st.BFD == "Down" && (closed || st.EstablishedSince.After(start)), nil
	})
	if err != nil {
		t.Errorf("n1 status while BFD packets are dropped = %+v, want BFD Down and the session closed because of it: %v", st, err)
	}

	must(lb.net.Exec(mid, "nft", "delete table ip herald_mhbfd"))
	lb.waitBFD(t, ctx, n1, "up")
	lb.waitHops(t, ctx, vip4, []netip.Addr{mhMidRouter})
	if st := n1.status("mh"); st.BFD != "Up" || st.State != StateEstablished {
		t.Errorf("n1 status after BFD packets pass again = %+v, want Established, BFD Up", st)
	}
}
