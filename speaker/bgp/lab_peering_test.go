package bgp

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestLabLocalAndDynamicASN, against FRR (AS 64500):
//   - one node keeps sessions with two local AS numbers at once (Peer.MyASN per peer): FRR sees
//     the node as AS 64512 on its IPv4 session and as AS 64513 on its IPv6 session, and the
//     routes sent on each carry that AS in their AS path;
//   - the IPv4 session does not pin the router's AS (PeerASN 0, BGPPeer dynamicASN external) and
//     comes up with FRR's 64500;
//   - a session that does not pin the router's AS, to a router that turns out to be in the
//     speaker's own AS (FRR takes n2 as an iBGP neighbour), is closed by the speaker with a Cease
//     NOTIFICATION saying why, reported in the session's status, and its route does not stay.
func TestLabLocalAndDynamicASN(t *testing.T) {
	n2v4 := netip.MustParseAddr("198.51.100.12")
	lb := newLab(t, 2, frr.Config{Groups: []frr.PeerGroup{
		{Name: "nodes4", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
		{Name: "nodes6", RemoteASN: 64513, ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
		// n2 is an iBGP neighbour of FRR (a static one, so FRR keeps its last NOTIFICATION).
		{Name: "ibgp", RemoteASN: 64500, Neighbors: []netip.Addr{n2v4}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second, Passive: true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n1, n2 := lb.nodes[0], lb.nodes[1]

	anyAS := ebgpPeer("any4", routerV4)
	anyAS.PeerASN = 0
	other := ebgpPeer("as64513", routerV6)
	other.MyASN = 64513
	n1.setPeers(anyAS, other)
	n1.setRoutes(labRoute{Prefix: vip4, Peers: []string{"any4"}}, labRoute{Prefix: vip6, Peers: []string{"as64513"}})
	lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})
	lb.waitHops(t, ctx, vip6, []netip.Addr{n1.v6})
	for _, c := range []struct {
		addr   netip.Addr
		prefix netip.Prefix
		as     uint32
	}{{n1.v4, vip4, 64512}, {n1.v6, vip6, 64513}} {
		if nb := lb.neighbor(t, ctx, c.addr); !nb.Established() || nb.RemoteAS != c.as {
			t.Errorf("FRR's neighbor %v: state %s, remote AS %d; want Established with AS %d", c.addr, nb.State, nb.RemoteAS, c.as)
		}
		paths, err := lb.router.Paths(ctx, c.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 1 || paths[0].ASPath != strconv.FormatUint(uint64(c.as), 10) {
			t.Errorf("paths of %v = %+v, want one with AS path %d", c.prefix, paths, c.as)
		}
	}
	for _, name := range []string{"any4", "as64513"} {
		if st := n1.status(name); st.State != StateEstablished {
			t.Errorf("n1's status of %s = %+v, want Established", name, st)
		}
	}

	// n2 does not pin the router's AS either, but is in AS 64500 itself, as FRR is.
	same := ebgpPeer("any4", routerV4)
	same.MyASN, same.PeerASN = 64500, 0
	n2.setPeers(same)
	n2.setRoutes(labRoute{Prefix: vip4})
	down := lb.waitNeighbor(t, ctx, n2v4, "n2 to close the iBGP session", func(nb frr.Neighbor) bool {
		return nb.ConnectionsDropped > 0 && !nb.Established()
	})
	// FRR records the Cease when it read it before the connection closed; when the close came first
	// (the speaker closes within a millisecond of Established) it records only the drop.
	if down.LastNotificationReason == "" {
		t.Logf("FRR dropped n2's session without recording the Cease (reset due to %q)", down.LastResetDueTo)
	} else if !strings.Contains(down.LastNotificationReason, "Cease") || down.LastResetDueTo != "BGP Notification received" ||
		!strings.Contains(down.LastShutdownDescription, "external") {
		t.Errorf("FRR's last notification from n2: %q, reset due to %q, communication %q; want a Cease received, saying the session must be external",
			down.LastNotificationReason, down.LastResetDueTo, down.LastShutdownDescription)
	}
	var st PeerStatus
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		st = n2.status("any4")
		return st.State != StateEstablished && strings.Contains(st.LastError, "AS 64500"), nil
	}); err != nil {
		t.Errorf("n2's status = %+v, want the session closed and why: %v", st, err)
	}
	t.Logf("n2: %s", st.LastError)
	lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})
	// It stays closed (it is opened again only after a minute).
	if nb := lb.neighbor(t, ctx, n2v4); nb.Established() {
		t.Errorf("FRR's session with n2 is Established again: %+v", nb)
	}
}

// TestLabVRFBinding: a Peer's VRF binds its TCP connection to that device (SO_BINDTODEVICE), as
// it binds it to a Linux VRF device in production. This kernel has no VRF driver
// (CONFIG_NET_VRF), so the test binds to plain devices, which the kernel treats the same way for
// the socket: bound to the node's eth0, the interface towards FRR, the session comes up and its
// route reaches FRR; bound to a device that exists but does not lead to the router, it never
// connects; bound to a device the node does not have, it never connects either, and the status
// says so. The other sessions are not affected.
func TestLabVRFBinding(t *testing.T) {
	lb := newLab(t, 1, frr.Config{Groups: nodeGroups()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := lb.nodes[0]
	// side0 is up, with an address, but leads nowhere near the router.
	for _, args := range [][]string{
		{"ip", "link", "add", "side0", "type", "veth", "peer", "name", "side1"},
		{"ip", "addr", "add", "192.0.2.250/30", "dev", "side0"},
		{"ip", "link", "set", "side0", "up"},
		{"ip", "link", "set", "side1", "up"},
	} {
		if out, err := lb.net.Exec(n.ns, args...); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	if out, err := lb.net.Exec(n.ns, "ip", "-o", "link", "show", "side0"); err != nil || !strings.Contains(string(out), "side0") {
		t.Fatalf("side0 was not created: %v: %s", err, out)
	}

	onEth0 := ebgpPeer("eth0", routerV4)
	onEth0.VRF = "eth0"
	onSide := ebgpPeer("side0", routerV6)
	onSide.VRF = "side0"
	n.setPeers(onEth0, onSide)
	n.setRoutes(labRoute{Prefix: vip4, Peers: []string{"eth0"}}, labRoute{Prefix: vip6, Peers: []string{"side0"}})
	lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
	if st := n.status("eth0"); st.State != StateEstablished {
		t.Errorf("status of the session bound to eth0 = %+v, want Established", st)
	}
	var st PeerStatus
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		st = n.status("side0")
		return strings.HasPrefix(st.LastError, "no TCP connection"), nil
	}); err != nil {
		t.Errorf("status of the session bound to side0 = %+v, want no TCP connection and why: %v", st, err)
	}
	t.Logf("bound to side0: %s", st.LastError)
	if nb := lb.neighbor(t, ctx, n.v6); nb.Established() {
		t.Errorf("FRR established the session bound to side0: %+v", nb)
	}

	// A device the node does not have: the session never connects, and the status says why.
	missing := ebgpPeer("side0", routerV6)
	missing.VRF = "red"
	n.setPeers(onEth0, missing)
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		st = n.status("side0")
		return strings.Contains(st.LastError, "no such device"), nil
	}); err != nil {
		t.Errorf("status of the session in VRF red (no such device) = %+v, want why: %v", st, err)
	}
	t.Logf("in VRF red: %s", st.LastError)
	if st := n.status("eth0"); st.State != StateEstablished {
		t.Errorf("status of the session bound to eth0 = %+v, want Established", st)
	}
	lb.waitHops(t, ctx, vip4, []netip.Addr{n.v4})
	lb.waitHops(t, ctx, vip6, nil)
}
