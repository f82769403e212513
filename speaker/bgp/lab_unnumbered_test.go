package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// unnumberedFRR is FRR's BGP unnumbered neighbour on its eth0: `neighbor eth0 interface`, both
// unicast families (FRR negotiates the extended next hop capability on interface neighbours).
func unnumberedFRR() frr.Config {
	return frr.Config{Extra: []string{
		"neighbor eth0 interface remote-as external",
		"neighbor eth0 timers 1 3",
		"neighbor eth0 timers connect 1",
		"address-family ipv4 unicast",
		" neighbor eth0 activate",
		"exit-address-family",
		"address-family ipv6 unicast",
		" neighbor eth0 activate",
		"exit-address-family",
	}}
}

// ifaceNeighbor returns FRR's view of its interface neighbour on iface.
func ifaceNeighbor(ctx context.Context, r *frr.Router, iface string) (frr.Neighbor, error) {
	var raw map[string]json.RawMessage
	if err := r.VtyshJSON(ctx, "show bgp neighbors json", &raw); err != nil {
		return frr.Neighbor{}, err
	}
	var n frr.Neighbor
	if b, ok := raw[iface]; ok {
		if err := json.Unmarshal(b, &n); err != nil {
			return frr.Neighbor{}, fmt.Errorf("decoding neighbor %s: %w", iface, err)
		}
	}
	return n, nil
}

// linkLocal returns the link-local address of dev in namespace ns.
func linkLocal(t testing.TB, lb *lab, ns, dev string) netip.Addr {
	t.Helper()
	out, err := lb.net.Exec(ns, "ip", "-6", "-json", "addr", "show", "dev", dev, "scope", "link")
	if err != nil {
		t.Fatal(err)
	}
	var ifs []struct {
		AddrInfo []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &ifs); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if ll, err := netip.ParseAddr(a.Local); err == nil && ll.IsLinkLocalUnicast() {
				return ll
			}
		}
	}
	t.Fatalf("no link-local address on %s in %s: %s", dev, ns, out)
	return netip.Addr{}
}

// TestLabUnnumbered runs BGP unnumbered against FRR's `neighbor eth0 interface`: the router
// learns the node from the speaker's Router Advertisements, the speaker learns the router from
// FRR's, the session comes up over the link-local addresses, and FRR installs the IPv4 service
// route via the node's IPv6 link-local address (RFC 8950: `via inet6 fe80::...`) and the IPv6
// one via the same address. When the router's link-local address changes, the speaker follows
// it: the session is opened again to the new address.
func TestLabUnnumbered(t *testing.T) {
	lb := newLab(t, 1, unnumberedFRR())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := lb.nodes[0]
	nodeLL := linkLocal(t, lb, n.ns, "eth0")
	routerLL := linkLocal(t, lb, lb.rns, "eth0")

	n.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: vip6})
	start := time.Now()
	n.setPeers(Peer{Name: "r", MyASN: 64512, PeerASN: 64500, Interface: "eth0",
		HoldTime: 3 * time.Second, KeepaliveTime: time.Second, ConnectTime: time.Second})

	var nb frr.Neighbor
	err := frr.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var err error
		nb, err = ifaceNeighbor(ctx, lb.router, "eth0")
		return nb.Established(), err
	})
	if err != nil {
		t.Fatalf("FRR's interface neighbour eth0 not Established (last %+v): %v", nb, err)
	}
	t.Logf("FRR: eth0 Established %v after SetPeers", time.Since(start))
	lb.waitHops(t, ctx, vip4, []netip.Addr{nodeLL})
	lb.waitHops(t, ctx, vip6, []netip.Addr{nodeLL})
	t.Logf("routes via %v at the router %v after SetPeers", nodeLL, time.Since(start))
	out, err := lb.net.Exec(lb.rns, "ip", "-4", "route", "show", "exact", vip4.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := "via inet6 " + nodeLL.String() + " dev eth0"; !strings.Contains(out, want) {
		t.Errorf("router's IPv4 route %q, want one %q", strings.TrimSpace(out), want)
	}
	st := n.status("r")
	if st.State != StateEstablished || st.Address != routerLL.WithZone("eth0") {
		t.Errorf("node status %+v, want Established to %v%%eth0", st, routerLL)
	}

	t.Run("router address changes", func(t *testing.T) {
		newLL := netip.MustParseAddr("fe80::99")
		for _, args := range [][]string{
			{"ip", "-6", "addr", "add", newLL.String() + "/64", "dev", "eth0", "nodad"},
			{"ip", "-6", "addr", "del", routerLL.String() + "/64", "dev", "eth0"},
		} {
			if _, err := lb.net.Exec(lb.rns, args...); err != nil {
				t.Fatal(err)
			}
		}
		var st PeerStatus
		err := frr.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
			// The peer has no status for a moment while its session is restarted.
			for _, s := range n.call(nodeRequest{Op: "status"}).Status {
				if s.Name == "r" {
					st = s
				}
			}
			return st.State == StateEstablished && st.Address == newLL.WithZone("eth0"), nil
		})
		if err != nil {
			t.Fatalf("node status %+v, want Established to %v%%eth0: %v", st, newLL, err)
		}
		lb.waitHops(t, ctx, vip4, []netip.Addr{nodeLL})
		lb.waitHops(t, ctx, vip6, []netip.Addr{nodeLL})
	})

	t.Run("peer removed: routes withdrawn", func(t *testing.T) {
		n.setPeers()
		lb.waitHops(t, ctx, vip4, nil)
		lb.waitHops(t, ctx, vip6, nil)
	})
}
