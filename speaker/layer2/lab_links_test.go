package layer2

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/netlab"
)

// netlinkIn opens rtnetlink inside a lab namespace.
func netlinkIn(t *testing.T, ns string) *Netlink {
	t.Helper()
	n, err := OpenNetlink(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// watchIn runs Watch until the test ends and returns a channel that receives after every change.
func watchIn(t *testing.T, n *Netlink) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.Watch(ctx, func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return ch
}

// waitSelection polls Scan until the selection satisfies ok, and returns it.
func waitSelection(t *testing.T, n *Netlink, addrs []netip.Addr, named []string, ok func(Selection) bool) Selection {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		h, err := n.Scan()
		if err != nil {
			t.Fatal(err)
		}
		s := Select(h, addrs, named)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("selection stayed %+v", s)
		}
		<-tick.C
	}
}

// TestLabRoutedPodVethsAndLinkState: on a node with 300 routed pod veths (host ends holding the
// ptp gateway address and a route each, pod ends in another namespace), the default selection is
// the node's own interface only; churning the veths is reported by Watch but changes nothing; the
// node's interface losing its carrier makes it unselected.
func TestLabRoutedPodVethsAndLinkState(t *testing.T) {
	l := newTestLab(t)
	node := l.host(t, "node", "eth0", "br0", "198.51.100.1/24")
	if _, err := l.Exec(node.ns, "ip", "route", "add", "default", "via", "198.51.100.254"); err != nil {
		t.Fatal(err)
	}
	pods, err := l.AddNS("pods")
	if err != nil {
		t.Fatal(err)
	}
	veths, err := netlab.RoutedVeths(node.ns, pods, "cali", 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	nl := netlinkIn(t, node.ns)
	// The kernel reports a new veth's carrier a little later (linkwatch): poll until all are up.
	var h Host
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if h, err = nl.Scan(); err != nil {
			t.Fatal(err)
		}
		cali := 0
		for _, hl := range h.Links {
			if strings.HasPrefix(hl.Name, "cali") && hl.Up && hl.Ethernet && slices.Contains(hl.Addrs, netip.MustParseAddr("10.22.0.1")) {
				cali++
			}
		}
		if cali == 300 && len(h.DefaultRoutes) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan sees %d up pod veths with their address and %d default routes, want 300 and 1", cali, len(h.DefaultRoutes))
		}
		<-tick.C
	}
	nodeAddr := []netip.Addr{netip.MustParseAddr("198.51.100.1")}
	want := Selection{Default: []Iface{{"eth0", 0}}}
	sel := Select(h, nodeAddr, nil)
	if len(sel.Default) != 1 || sel.Default[0].Name != "eth0" || len(sel.Named) != 0 {
		t.Fatalf("Select on a node with 300 pod veths = %+v, want %+v (any index)", sel, want)
	}

	changes := watchIn(t, nl)
	var names []string
	for _, v := range veths[:50] {
		names = append(names, v.Host)
	}
	if err := netlab.DeleteVeths(node.ns, names); err != nil {
		t.Fatal(err)
	}
	if _, err := netlab.RoutedVeths(node.ns, pods, "cali", 1000, 50); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported while 100 veths were deleted and created")
	}
	if got := waitSelection(t, nl, nodeAddr, nil, func(s Selection) bool { return true }); !got.Equal(sel) {
		t.Errorf("selection after pod churn = %+v, want %+v unchanged", got, sel)
	}

	// The switch port goes down: eth0 has no carrier any more and is not selected.
	if _, err := l.Exec(l.sw, "ip", "link", "set", "p-"+strings.TrimPrefix(node.ns, netlab.NSName(""))+"-eth0", "down"); err != nil {
		t.Fatal(err)
	}
	waitSelection(t, nl, nodeAddr, []string{"eth0"}, func(s Selection) bool { return len(s.Default) == 0 && len(s.Named) == 0 })
}

// TestLabInterfaceRecreated: the owner's interface is deleted and created again under the same
// name (as netplan or a VLAN re-apply does). Watch reports it, and the next SetOwned, which the
// speaker makes on that report, answers ARP on the new interface with its new MAC.
func TestLabInterfaceRecreated(t *testing.T) {
	l, node1, _, client := twoNodes(t)
	nl := netlinkIn(t, node1.ns)
	a, err := NewAnnouncer(Config{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dial:   dialIn(node1.ns),
		Index:  nl.Index,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	owned := map[netip.Addr][]string{labV4: {"eth0"}}
	setOwned(t, a, owned)
	if out, err := l.Exec(client.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labV4.String()); err != nil ||
		!strings.Contains(strings.ToLower(out), node1.mac.String()) {
		t.Fatalf("arping %s: %v, want a reply from node1 %s:\n%s", labV4, err, node1.mac, out)
	}

	changes := watchIn(t, nl)
	before, err := nl.Index("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(node1.ns, "ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	again := l.attach(t, node1.ns, "eth0", "br0", "198.51.100.1/24")
	after, err := nl.Index("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if after == before || again.mac.String() == node1.mac.String() {
		t.Fatalf("eth0 was not replaced: index %d -> %d, MAC %s -> %s", before, after, node1.mac, again.mac)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch reported no change when eth0 was deleted and created again")
	}
	setOwned(t, a, owned)
	out, err := l.Exec(client.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labV4.String())
	if err != nil || !strings.Contains(strings.ToLower(out), again.mac.String()) {
		t.Fatalf("arping %s after eth0 was recreated: %v, want a reply from the new eth0 %s:\n%s", labV4, err, again.mac, out)
	}
}
