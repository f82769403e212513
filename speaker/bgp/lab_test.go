package bgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/internal/testing/frr"
)

var (
	vip4 = netip.MustParsePrefix("203.0.113.100/32")
	vip6 = netip.MustParsePrefix("2001:db8:5::100/128")
)

// TestLabECMP covers, against FRR in a namespace: sessions over IPv4 and IPv6, ECMP via three
// nodes for IPv4 and IPv6 routes (IPv6 routes over IPv4 sessions), shrinking next hops when one
// node withdraws, aggregation, communities and large communities, changing attributes and one
// peer's configuration without resetting other sessions, nothing imported, SIGTERM withdrawing
// before exit, and kill -9 withdrawn by hold time.
func TestLabECMP(t *testing.T) {
	lb := newLab(t, 3, frr.Config{Groups: nodeGroups(), Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n1, n2, n3 := lb.nodes[0], lb.nodes[1], lb.nodes[2]

	// n1 has an IPv4 and an IPv6 session; n2 and n3 an IPv4 one.
	n1.setPeers(ebgpPeer("r4", routerV4), ebgpPeer("r6", routerV6))
	for _, n := range lb.nodes {
		route := []labRoute{{Prefix: vip4, Peers: []string{"r4"}}, {Prefix: vip6, Peers: []string{"r4"}}}
		if n != n1 {
			n.setPeers(ebgpPeer("r4", routerV4))
		}
		n.setRoutes(route...)
	}
	if _, err := lb.router.WaitEstablished(ctx, 4); err != nil {
		t.Fatal(err)
	}
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	lb.waitHops(t, ctx, vip6, hops(lb.nodes, true))
	st := n1.status("r6")
	if st.State != StateEstablished || st.LastError != "" || st.EstablishedSince.IsZero() {
		t.Errorf("n1 status of r6 = %+v, want Established without error", st)
	}
	st = n2.status("r4")
	if st.State != StateEstablished || st.PrefixesAdvertised != 2 || st.UpdatesSent == 0 {
		t.Errorf("n2 status of r4 = %+v, want Established, 2 prefixes advertised, updates sent", st)
	}
	if r := n1.call(nodeRequest{Op: "imported"}); r.Error != "" || r.Imported != 0 {
		t.Errorf("n1 imported %d paths (%s), want none", r.Imported, r.Error)
	}

	t.Run("node withdraws: next hops shrink", func(t *testing.T) {
		n3.setRoutes()
		lb.waitHops(t, ctx, vip4, hops(lb.nodes[:2], false))
		lb.waitHops(t, ctx, vip6, hops(lb.nodes[:2], true))
		n3.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: vip6})
		lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	})

	t.Run("aggregation", func(t *testing.T) {
		agg4, agg6 := netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:5::/120")
		n2.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: vip6}, labRoute{Prefix: agg4}, labRoute{Prefix: agg6})
		lb.waitHops(t, ctx, agg4, []netip.Addr{n2.v4})
		lb.waitHops(t, ctx, agg6, []netip.Addr{n2.v6})
		n2.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: vip6})
		lb.waitHops(t, ctx, agg4, nil)
	})

	t.Run("communities change without session reset", func(t *testing.T) {
		before, beforeAt := lb.neighbor(t, ctx, n1.v4), time.Now()
		n1.setRoutes(labRoute{Prefix: vip4, Peers: []string{"r4"}, Communities: []uint32{64512<<16 | 100, 65535<<16 | 65281},
			LargeCommunities: [][3]uint32{{64512, 1, 2}}, LocalPref: u32(300)}, labRoute{Prefix: vip6, Peers: []string{"r4"}})
		var got frr.Path
		err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			paths, err := lb.router.Paths(ctx, vip4)
			for _, p := range paths {
				if p.Peer == n1.v4 && len(p.Communities) > 0 {
					got = p
					return true, err
				}
			}
			return false, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"64512:100", "no-export"}, got.Communities); diff != "" {
			t.Errorf("communities (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"64512:1:2"}, got.LargeCommunities); diff != "" {
			t.Errorf("large communities (-want +got):\n%s", diff)
		}
		if got.LocalPref != nil {
			t.Errorf("eBGP path carries local preference %d, want none", *got.LocalPref)
		}
		if after := lb.neighbor(t, ctx, n1.v4); !sameSession(before, beforeAt, after, time.Now()) {
			t.Errorf("session reset by an attribute change: up %d ms before, %d ms after", before.UpMsecs, after.UpMsecs)
		}
	})

	t.Run("changing one peer keeps the other session", func(t *testing.T) {
		b4, b6, beforeAt := lb.neighbor(t, ctx, n1.v4), lb.neighbor(t, ctx, n1.v6), time.Now()
		r6 := ebgpPeer("r6", routerV6)
		r6.HoldTime = 6 * time.Second
		n1.setPeers(ebgpPeer("r4", routerV4), r6)
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
			a6 := lb.neighbor(t, ctx, n1.v6)
			return a6.Established() && !sameSession(b6, beforeAt, a6, time.Now()), nil
		})
		if err != nil {
			t.Fatalf("IPv6 session was not re-established with the new hold time: %v", err)
		}
		if a4 := lb.neighbor(t, ctx, n1.v4); !sameSession(b4, beforeAt, a4, time.Now()) {
			t.Errorf("IPv4 session reset by a change of the IPv6 peer: up %d ms before, %d ms after", b4.UpMsecs, a4.UpMsecs)
		}
		lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	})

	t.Run("SIGTERM withdraws before exit", func(t *testing.T) {
		if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := n3.waitExit(ctx); err != nil {
			t.Fatal(err)
		}
		exited := time.Now()
		gone := lb.waitHops(t, ctx, vip4, hops(lb.nodes[:2], false))
		// The hold time is 3 s; a withdrawal or Cease arrives at once.
		if d := gone.Sub(exited); d > time.Second {
			t.Errorf("next hop of n3 left %v after its process exited, want well below the hold time", d)
		}
	})

	// A frozen node keeps its TCP connection open but sends no KEEPALIVE: the router drops
	// it when the hold time (3 s) expires. Once it runs again it comes back.
	t.Run("frozen node is noticed after the hold time", func(t *testing.T) {
		start := time.Now()
		if err := n2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Errorf("next hop of frozen n2 left after %v, before the hold time could expire", d)
		}
		if err := n2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		lb.waitHops(t, ctx, vip4, hops(lb.nodes[:2], false))
	})

	// kill -9 ends the process, and the kernel closes its TCP connections: the router sees the
	// session end at once, without waiting for the hold time.
	t.Run("kill -9 closes the session at once", func(t *testing.T) {
		if err := n2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("next hop of killed n2 left after %v, want well below the hold time", d)
		}
	})
}

// sameSession reports whether FRR's neighbor read at t1 is still the session read at t0: it
// has been up for at least as long as it was then plus the time in between.
func sameSession(n0 frr.Neighbor, t0 time.Time, n1 frr.Neighbor, t1 time.Time) bool {
	slack := int64(1000) // FRR reports the uptime in whole seconds
	return n0.Established() && n1.Established() && n1.UpMsecs+slack >= n0.UpMsecs+t1.Sub(t0).Milliseconds()
}

// TestLabIBGPLocalPref checks that local preference and communities reach an iBGP peer.
func TestLabIBGPLocalPref(t *testing.T) {
	lb := newLab(t, 1, frr.Config{ASN: 64512, Groups: []frr.PeerGroup{{
		Name: "ibgp", RemoteASN: 64512, ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		KeepaliveTime: time.Second, HoldTime: 3 * time.Second,
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := lb.nodes[0]
	p := ebgpPeer("r", routerV4)
	p.PeerASN = 64512
	n.setPeers(p)
	n.setRoutes(labRoute{Prefix: vip4, LocalPref: u32(150), Communities: []uint32{64512<<16 | 7}},
		labRoute{Prefix: vip6, LocalPref: u32(120)})
	lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
	lb.waitHops(t, ctx, vip6, []netip.Addr{n.v6})
	for prefix, want := range map[netip.Prefix]uint32{vip4: 150, vip6: 120} {
		paths, err := lb.router.Paths(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 1 || paths[0].LocalPref == nil || *paths[0].LocalPref != want {
			t.Errorf("paths of %v = %+v, want one with local preference %d", prefix, paths, want)
		}
		if prefix == vip4 && !slices.Equal(paths[0].Communities, []string{"64512:7"}) {
			t.Errorf("communities of %v = %v, want 64512:7", prefix, paths[0].Communities)
		}
	}
}

// TestLabMD5 checks that a session with the right TCP MD5 password comes up, and that one with
// a wrong password never does and says why.
func TestLabMD5(t *testing.T) {
	lb := newLab(t, 2, frr.Config{Groups: []frr.PeerGroup{{
		Name: "md5", Password: "right-secret", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		KeepaliveTime: time.Second, HoldTime: 3 * time.Second,
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good, bad := ebgpPeer("r", routerV4), ebgpPeer("r", routerV4)
	good.Password, bad.Password = "right-secret", "wrong-secret"
	lb.nodes[0].setPeers(good)
	lb.nodes[1].setPeers(bad)
	lb.nodes[0].setRoutes(labRoute{Prefix: vip4})
	lb.nodes[1].setRoutes(labRoute{Prefix: vip4})
	lb.waitHops(t, ctx, vip4, []netip.Addr{lb.nodes[0].v4})
	if st := lb.nodes[0].status("r"); st.State != StateEstablished {
		t.Errorf("right password: status %+v, want Established", st)
	}
	// Several connect attempts (1 s apart) must fail and say why.
	var st PeerStatus
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		st = lb.nodes[1].status("r")
		if st.State == StateEstablished {
			t.Fatalf("wrong password: session established: %+v", st)
		}
		return strings.Contains(st.LastError, "MD5"), nil
	})
	if err != nil {
		t.Fatalf("wrong password: status %+v, want a last error that mentions MD5: %v", st, err)
	}
	t.Logf("wrong password: state %v, last error %q", st.State, st.LastError)
	if nb := lb.neighbor(t, ctx, lb.nodes[1].v4); nb.Established() {
		t.Errorf("FRR established a session with the wrong password: %+v", nb)
	}
}
