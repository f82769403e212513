package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// trySetPeers sends peers to the node and returns SetPeers' error text ("" when none).
func (n *node) trySetPeers(peers ...Peer) string {
	n.t.Helper()
	return n.call(nodeRequest{Op: "peers", Peers: peers}).Error
}

// mem returns the node process's memory use after a garbage collection.
func (n *node) mem() nodeMem {
	n.t.Helper()
	r := n.call(nodeRequest{Op: "mem"})
	if r.Error != "" || r.Mem == nil {
		n.t.Fatalf("node %s: reading memory: %s", n.name, r.Error)
	}
	return *r.Mem
}

// waitNeighbor polls FRR's view of the neighbor at addr until cond holds.
func (lb *lab) waitNeighbor(t testing.TB, ctx context.Context, addr netip.Addr, what string, cond func(frr.Neighbor) bool) frr.Neighbor {
	t.Helper()
	var last frr.Neighbor
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		ns, err := lb.router.Neighbors(ctx)
		if err != nil {
			return false, nil
		}
		last = ns[addr]
		return cond(last), nil
	})
	if err != nil {
		t.Fatalf("waiting for FRR's neighbor %v: %s: %v (last seen %+v)", addr, what, err, last)
	}
	return last
}

// TestLabRefusedPeerKeepsOthers: a node with a good peer and a peer that config.Parse accepted
// before it was fixed (holdTime 10s, whose derived keepalive was 3.333s) keeps the good session:
// it is Established and its route is at FRR, and a later password change of the good peer is
// applied (FRR accepts only the new password). The bad peer is reported, not silently dropped.
func TestLabRefusedPeerKeepsOthers(t *testing.T) {
	lb := newLab(t, 1, frr.Config{Groups: []frr.PeerGroup{
		{Name: "md5", Password: "first-secret", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
		{Name: "nodes6", ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := lb.nodes[0]
	good := ebgpPeer("good", routerV4)
	good.Password = "first-secret"
	bad := ebgpPeer("bad", routerV6)
	bad.HoldTime, bad.KeepaliveTime = 10*time.Second, 10*time.Second/3

	n.setRoutes(labRoute{Prefix: vip4, Peers: []string{"good", "bad"}})
	if e := n.trySetPeers(good, bad); !strings.Contains(e, `peer "bad"`) || strings.Contains(e, `peer "good"`) {
		t.Errorf("SetPeers error = %q, want one naming peer bad only", e)
	}
	lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
	if st := n.status("good"); st.State != StateEstablished || st.ConfigError != "" {
		t.Errorf("status of good = %+v, want Established", st)
	}
	if st := n.status("bad"); st.State != StateUnknown || !strings.Contains(st.ConfigError, "keepaliveTime 3.333333333s") {
		t.Errorf("status of bad = %+v, want no session and why", st)
	}

	// Rotate the password: FRR first (its established session stays), then the speaker.
	before, beforeAt := lb.neighbor(t, ctx, n.v4), time.Now()
	if out, err := lb.router.Vtysh(ctx, "configure terminal", "router bgp 64500", "neighbor md5 password second-secret"); err != nil {
		t.Fatalf("changing FRR's password: %v: %s", err, out)
	}
	good.Password = "second-secret"
	if e := n.trySetPeers(good, bad); !strings.Contains(e, `peer "bad"`) {
		t.Errorf("SetPeers error = %q, want the refusal of bad", e)
	}
	after := lb.waitNeighbor(t, ctx, n.v4, "a new session with the new password", func(nb frr.Neighbor) bool {
		return nb.Established() && !sameSession(before, beforeAt, nb, time.Now())
	})
	t.Logf("session re-established with the new password, up %d ms", after.UpMsecs)
	lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
}

// TestLabGracefulStop: on SIGTERM the speaker withdraws its routes, then closes the session with
// a Cease NOTIFICATION "Administrative Shutdown" carrying why (RFC 9003). FRR keeps, for a
// static neighbor, the last NOTIFICATION received and the UPDATEs counted: an UPDATE arrives
// after the route was advertised (the withdrawal, before the Cease that ends the session).
// Removing a peer closes its session the same way.
func TestLabGracefulStop(t *testing.T) {
	lb := newLab(t, 2, frr.Config{Groups: []frr.PeerGroup{{
		Name: "static", Neighbors: []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")},
		KeepaliveTime: time.Second, HoldTime: 3 * time.Second, Passive: true,
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, n2 := lb.nodes[0], lb.nodes[1]
	for _, n := range lb.nodes {
		n.setPeers(ebgpPeer("r4", routerV4))
		n.setRoutes(labRoute{Prefix: vip4})
	}
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))

	// check compares FRR's view of n's session while up with the one after it ended.
	check := func(n *node, up frr.Neighbor, why string) {
		t.Helper()
		down := lb.waitNeighbor(t, ctx, n.v4, "the session to end", func(nb frr.Neighbor) bool {
			return !nb.Established() && nb.LastNotificationReason != ""
		})
		if down.LastErrorCodeSubcode != "0602" || !strings.Contains(down.LastNotificationReason, "Administrative Shutdown") ||
			down.LastResetDueTo != "BGP Notification received" {
			t.Errorf("FRR's last notification from %s: %q (%s), reset due to %q; want Cease/Administrative Shutdown (0602) received",
				n.name, down.LastNotificationReason, down.LastErrorCodeSubcode, down.LastResetDueTo)
		}
		if down.LastShutdownDescription != why {
			t.Errorf("FRR's shutdown communication from %s = %q, want %q", n.name, down.LastShutdownDescription, why)
		}
		if down.Messages.UpdatesRecv <= up.Messages.UpdatesRecv {
			t.Errorf("FRR received %d UPDATEs from %s before and %d after: the route was not withdrawn before the Cease",
				up.Messages.UpdatesRecv, n.name, down.Messages.UpdatesRecv)
		}
	}

	// Removing the peer: withdraw, Cease, close.
	up := lb.neighbor(t, ctx, n2.v4)
	if r := n2.call(nodeRequest{Op: "peers"}); r.Error != "" {
		t.Fatalf("n2: SetPeers(none): %s", r.Error)
	}
	check(n2, up, commRemoved)
	lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})

	up = lb.neighbor(t, ctx, n1.v4)
	if err := n1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n1.waitExit(ctx); err != nil {
		t.Fatal(err)
	}
	check(n1, up, commShutdown)
	lb.waitHops(t, ctx, vip4, nil)
}

// TestLabPrefixLimit: FRR sends 10,000 routes to two nodes. n1 has the default limit (1,000 per
// family): its IPv4 session is closed with a Cease NOTIFICATION "Maximum Number of Prefixes
// Reached", its heap stays flat, its IPv6 session (which carries no IPv4 routes) stays up with
// its route, and the session opens again after PrefixLimitRestart. n2, without a useful limit,
// holds every path: the control that shows what the limit saves.
func TestLabPrefixLimit(t *testing.T) {
	const routes = 10000
	lb := newLabWith(t, 2, frr.Config{
		Groups: []frr.PeerGroup{
			{Name: "static4", Neighbors: []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")},
				KeepaliveTime: time.Second, HoldTime: 3 * time.Second, Passive: true},
			{Name: "nodes6", ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
		},
		// The IPv6 sessions carry no IPv4 routes, so only the IPv4 sessions get the full table.
		Extra: []string{"address-family ipv4 unicast", " no neighbor nodes6 activate", "exit-address-family"},
	}, labOptions{PrefixLimitRestart: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n1, n2 := lb.nodes[0], lb.nodes[1]
	n1.setPeers(ebgpPeer("r4", routerV4), ebgpPeer("r6", routerV6))
	n1.setRoutes(labRoute{Prefix: vip4, Peers: []string{"r4"}}, labRoute{Prefix: vip6, Peers: []string{"r6"}})
	unlimited := ebgpPeer("r4", routerV4)
	unlimited.MaxPrefixes = 1 << 30
	n2.setPeers(unlimited)
	if _, err := lb.router.WaitEstablished(ctx, 3); err != nil {
		t.Fatal(err)
	}
	lb.waitHops(t, ctx, vip6, []netip.Addr{n1.v6})
	before1, before2 := n1.mem(), n2.mem()
	r6Before, r6At := lb.neighbor(t, ctx, n1.v6), time.Now()
	n1Before := lb.neighbor(t, ctx, n1.v4)

	// FRR originates the routes (network statements, import check off) and sends them at once.
	var cmds strings.Builder
	cmds.WriteString("router bgp 64500\n address-family ipv4 unicast\n")
	for i := range routes {
		fmt.Fprintf(&cmds, "  network 10.%d.%d.0/24\n", i/256, i%256)
	}
	cmds.WriteString(" exit-address-family\nexit\n")
	file := filepath.Join(lb.router.Dir(), "full-table.conf")
	if err := os.WriteFile(file, []byte(cmds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := lb.router.VtyshFile(ctx, file); err != nil {
		t.Fatalf("adding %d networks to FRR: %v: %s", routes, err, out)
	}
	t.Logf("FRR configured %d networks in %v", routes, time.Since(start).Round(time.Millisecond))

	// n2 takes them all.
	var n2Accepted int
	lb.waitNeighbor(t, ctx, n2.v4, "n2 to be sent every route", func(nb frr.Neighbor) bool {
		n2Accepted = nb.AddressFamilyInfo["ipv4Unicast"].SentPrefixCounter
		return nb.Established() && n2Accepted >= routes
	})
	// n1 closes the session at the limit, at once.
	limitCtx, limitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer limitCancel()
	down := lb.waitNeighbor(t, limitCtx, n1.v4, "n1 to close the session at its prefix limit", func(nb frr.Neighbor) bool {
		return nb.LastErrorCodeSubcode == "0601"
	})
	if !strings.Contains(down.LastNotificationReason, "Maximum Number of Prefixes Reached") || down.LastResetDueTo != "BGP Notification received" {
		t.Errorf("FRR's last notification from n1: %q, reset due to %q; want Cease/Maximum Number of Prefixes Reached received", down.LastNotificationReason, down.LastResetDueTo)
	}
	var st PeerStatus
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		st = n1.status("r4")
		return strings.Contains(st.LastError, "more than 1000 prefixes"), nil
	}); err != nil {
		t.Errorf("n1's status of r4 = %+v, want a last error about the prefix limit", st)
	}
	t.Logf("n1 r4: %s", st.LastError)
	after1, after2 := n1.mem(), n2.mem()
	grow := func(a, b nodeMem) (heap, rss float64) {
		return (float64(b.HeapInuse) - float64(a.HeapInuse)) / (1 << 20), (float64(b.RSS) - float64(a.RSS)) / (1 << 20)
	}
	h1, r1 := grow(before1, after1)
	h2, r2 := grow(before2, after2)
	t.Logf("n1 (limit 1000): heap %.1f -> %.1f MiB (%+.1f), RSS %.1f -> %.1f MiB (%+.1f)",
		float64(before1.HeapInuse)/(1<<20), float64(after1.HeapInuse)/(1<<20), h1, float64(before1.RSS)/(1<<20), float64(after1.RSS)/(1<<20), r1)
	t.Logf("n2 (no limit):   heap %.1f -> %.1f MiB (%+.1f), RSS %.1f -> %.1f MiB (%+.1f)",
		float64(before2.HeapInuse)/(1<<20), float64(after2.HeapInuse)/(1<<20), h2, float64(before2.RSS)/(1<<20), float64(after2.RSS)/(1<<20), r2)
	if h1 > 2 {
		t.Errorf("n1's heap grew by %.1f MiB with the prefix limit, want at most 2 MiB", h1)
	}
	if h2 < 4*max(h1, 0.5) {
		t.Errorf("n2's heap grew by %.1f MiB holding %d paths, n1's by %.1f MiB: the control does not show what the limit saves", h2, routes, h1)
	}

	// The other session of n1 is the same session throughout, and its route is still there.
	if r6 := lb.neighbor(t, ctx, n1.v6); !sameSession(r6Before, r6At, r6, time.Now()) {
		t.Errorf("n1's IPv6 session was reset (up %d ms before, %d ms after)", r6Before.UpMsecs, r6.UpMsecs)
	}
	lb.waitHops(t, ctx, vip6, []netip.Addr{n1.v6})

	// After PrefixLimitRestart the session opens again (and is closed again: FRR still sends
	// the full table).
	again := lb.waitNeighbor(t, ctx, n1.v4, "n1 to open the session again", func(nb frr.Neighbor) bool {
		return nb.ConnectionsEstablished > down.ConnectionsEstablished
	})
	t.Logf("n1's IPv4 session was established %d times (%d before the routes)", again.ConnectionsEstablished, n1Before.ConnectionsEstablished)
}

// TestLabIPv6OnlyRouterIDs: two IPv6-only nodes (no IPv4 address, so no IPv4 router ID) open
// their sessions with router IDs derived from their IPv6 addresses, which FRR accepts and which
// differ.
func TestLabIPv6OnlyRouterIDs(t *testing.T) {
	lb := newLabWith(t, 2, frr.Config{Groups: nodeGroups()}, labOptions{V6Only: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range lb.nodes {
		n.setPeers(ebgpPeer("r6", routerV6))
		n.setRoutes(labRoute{Prefix: vip6})
	}
	lb.waitHops(t, ctx, vip6, hops(lb.nodes, true))
	ids := map[string]string{}
	for _, n := range lb.nodes {
		nb := lb.neighbor(t, ctx, n.v6)
		want := RouterID(netip.Addr{}, n.v6, n.name)
		if nb.RemoteRouterID != want.String() {
			t.Errorf("FRR sees router ID %q for %s, want %v (derived from %v)", nb.RemoteRouterID, n.name, want, n.v6)
		}
		if other, dup := ids[nb.RemoteRouterID]; dup {
			t.Errorf("%s and %s share router ID %s", n.name, other, nb.RemoteRouterID)
		}
		ids[nb.RemoteRouterID] = n.name
	}
	t.Logf("router IDs seen by FRR: %v", ids)
}
