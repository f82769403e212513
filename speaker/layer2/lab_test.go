package layer2

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// These tests run real Announcers on AF_PACKET sockets opened inside "node" namespaces, and check
// what "client" namespaces on the same bridge see: their neighbour tables and the frames on the wire.
// Nothing is given an address in the root namespace.

var (
	labV4    = netip.MustParseAddr("198.51.100.10")
	labV6    = netip.MustParseAddr("2001:db8::10")
	labOther = netip.MustParseAddr("198.51.100.11")
)

type testLab struct {
	*netlab.Lab
	sw string
}

type labHost struct {
	ns  string
	mac net.HardwareAddr
}

func newTestLab(t *testing.T) *testLab {
	t.Helper()
	l := netlab.ForTest(t)
	sw, err := l.AddNS("sw")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bridge(sw, "br0"); err != nil {
		t.Fatal(err)
	}
	return &testLab{Lab: l, sw: sw}
}

// host adds a namespace whose ifname is a port of bridge, with the given addresses.
func (l *testLab) host(t *testing.T, name, ifname, bridge string, addrs ...string) labHost {
	t.Helper()
	ns, err := l.AddNS(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.attach(t, ns, ifname, bridge, addrs...)
}

func (l *testLab) attach(t *testing.T, ns, ifname, bridge string, addrs ...string) labHost {
	t.Helper()
	port := "p-" + strings.TrimPrefix(ns, netlab.NSName("")) + "-" + ifname
	if err := l.Veth(ns, ifname, l.sw, port, bridge); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if _, err := l.Exec(ns, "ip", "addr", "add", a, "dev", ifname); err != nil {
			t.Fatal(err)
		}
	}
	var mac net.HardwareAddr
	if err := netlab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return labHost{ns: ns, mac: mac}
}

// announcer runs an Announcer whose sockets are opened inside ns.
func announcerIn(t *testing.T, ns string) *Announcer {
	t.Helper()
	return startAnnouncer(t, Config{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dial:   dialIn(ns),
	})
}

// dialIn opens links inside ns.
func dialIn(ns string) func(name string) (*Link, error) {
	return func(name string) (*Link, error) {
		var l *Link
		err := netlab.Do(ns, func() error {
			var err error
			l, err = DialLink(name)
			return err
		})
		return l, err
	}
}

func setOwned(t *testing.T, a *Announcer, owned map[netip.Addr][]string) {
	t.Helper()
	if err := a.SetOwned(owned); err != nil {
		t.Fatalf("SetOwned: %v", err)
	}
}

// capture records every frame seen on an interface inside a namespace.
type capture struct {
	frames chan []byte
}

func captureIn(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	var c *packet.Conn
	if err := netlab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cp := &capture{frames: make(chan []byte, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case cp.frames <- append([]byte(nil), buf[:n]...):
			default: // bounded: drop when the test is not reading
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return cp
}

// collect returns the frames matching match seen within d (or until want of them were seen).
func (c *capture) collect(d time.Duration, want int, match func([]byte) bool) [][]byte {
	var out [][]byte
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for want <= 0 || len(out) < want {
		select {
		case f := <-c.frames:
			if match(f) {
				out = append(out, f)
			}
		case <-deadline.C:
			return out
		}
	}
	return out
}

// drain forgets what was captured so far.
func (c *capture) drain() {
	for {
		select {
		case <-c.frames:
		default:
			return
		}
	}
}

func arpOf(b []byte) (*ethernet.Frame, *arp.Packet) {
	var f ethernet.Frame
	if f.UnmarshalBinary(b) != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil, nil
	}
	var p arp.Packet
	if p.UnmarshalBinary(f.Payload) != nil {
		return nil, nil
	}
	return &f, &p
}

func isARP(op arp.Operation, sender, target netip.Addr, from net.HardwareAddr) func([]byte) bool {
	return func(b []byte) bool {
		f, p := arpOf(b)
		return p != nil && p.Operation == op && (!sender.IsValid() || p.SenderIP == sender) &&
			p.TargetIP == target && (from == nil || bytes.Equal(f.Source, from))
	}
}

// ndpOf decodes an NDP message in an Ethernet frame.
func ndpOf(b []byte) (*ethernet.Frame, *ipv6.Header, ndp.Message) {
	var f ethernet.Frame
	if f.UnmarshalBinary(b) != nil || f.EtherType != ethernet.EtherTypeIPv6 {
		return nil, nil, nil
	}
	h, err := ipv6.ParseHeader(f.Payload)
	if err != nil || h.NextHeader != 58 || ipv6.HeaderLen+h.PayloadLen > len(f.Payload) {
		return nil, nil, nil
	}
	m, err := ndp.ParseMessage(f.Payload[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen])
	if err != nil {
		return nil, nil, nil
	}
	return &f, h, m
}

// isNA matches an Override advertisement for target from the given MAC, to dst (any if invalid).
func isNA(target netip.Addr, from net.HardwareAddr, solicited bool, dst netip.Addr) func([]byte) bool {
	return func(b []byte) bool {
		f, h, m := ndpOf(b)
		na, ok := m.(*ndp.NeighborAdvertisement)
		return ok && na.TargetAddress == target && bytes.Equal(f.Source, from) && na.Solicited == solicited &&
			na.Override && (!dst.IsValid() || h.Dst.Equal(net.IP(dst.AsSlice())))
	}
}

// neighbour polls the client's neighbour table until the entry for ip shows mac (or, with mac nil,
// until it exists in any state), and returns the last line seen.
func neighbour(t *testing.T, l *testLab, ns string, ip netip.Addr, mac net.HardwareAddr, within time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var line string
	for {
		out, err := l.Exec(ns, "ip", "neigh", "show", ip.String(), "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSpace(out)
		if mac != nil && strings.Contains(line, "lladdr "+mac.String()) && !strings.Contains(line, "FAILED") {
			return line, true
		}
		if time.Now().After(deadline) {
			return line, false
		}
		<-tick.C
	}
}

// twoNodes builds node1, node2 and client on br0.
func twoNodes(t *testing.T) (l *testLab, node1, node2, client labHost) {
	l = newTestLab(t)
	node1 = l.host(t, "node1", "eth0", "br0", "198.51.100.1/24", "2001:db8::1/64")
	node2 = l.host(t, "node2", "eth0", "br0", "198.51.100.2/24", "2001:db8::2/64")
	client = l.host(t, "client", "eth0", "br0", "198.51.100.100/24", "2001:db8::100/64")
	return l, node1, node2, client
}

var arpingReplies = regexp.MustCompile(`Received (\d+) response`)

func TestLabARPExactlyOneReplyAndLoss(t *testing.T) {
	l, node1, node2, client := twoNodes(t)
	a1, a2 := announcerIn(t, node1.ns), announcerIn(t, node2.ns)
	setOwned(t, a1, map[netip.Addr][]string{labV4: {"eth0"}})
	setOwned(t, a2, map[netip.Addr][]string{labOther: {"eth0"}})

	out, err := l.Exec(client.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labV4.String())
	if err != nil || !strings.Contains(strings.ToLower(out), node1.mac.String()) {
		t.Fatalf("arping %s: %v, want a reply from node1 %s:\n%s", labV4, err, node1.mac, out)
	}
	// ping fills the neighbour table (the echo itself gets no answer: no node has the address).
	_, _ = l.Exec(client.ns, "ping", "-c", "1", "-W", "1", labV4.String())
	if line, ok := neighbour(t, l, client.ns, labV4, node1.mac, 2*time.Second); !ok {
		t.Fatalf("client neighbour entry for %s = %q, want node1's %s", labV4, line, node1.mac)
	}

	// Exactly one reply per request, from node1 only, although both nodes run a responder.
	cp2 := captureIn(t, client.ns, "eth0")
	out, _ = l.Exec(client.ns, "arping", "-c", "2", "-w", "3", "-I", "eth0", labV4.String())
	var reqs, fromNode1, fromOthers int
	for _, f := range cp2.collect(300*time.Millisecond, 0, func([]byte) bool { return true }) {
		switch {
		case isARP(arp.OperationRequest, netip.Addr{}, labV4, client.mac)(f):
			reqs++
		case isARP(arp.OperationReply, labV4, clientV4Lab, node1.mac)(f):
			fromNode1++
		case isARP(arp.OperationReply, labV4, clientV4Lab, nil)(f):
			fromOthers++
		}
	}
	if reqs == 0 || fromNode1 != reqs || fromOthers != 0 {
		t.Fatalf("%d requests, %d replies from node1, %d from others; want one reply per request from node1\n%s", reqs, fromNode1, fromOthers, out)
	}
	if m := arpingReplies.FindStringSubmatch(out); m == nil || m[1] != "2" {
		t.Errorf("arping output: want 2 responses:\n%s", out)
	}

	// Losing ownership stops replies at once.
	setOwned(t, a1, nil)
	cp2.drain()
	out, err = l.Exec(client.ns, "arping", "-c", "1", "-w", "1", "-I", "eth0", labV4.String())
	if err == nil || !strings.Contains(out, "Received 0 response") {
		t.Errorf("arping after node1 lost %s: %v, want no response:\n%s", labV4, err, out)
	}
	if got := cp2.collect(200*time.Millisecond, 0, isARP(arp.OperationReply, labV4, clientV4Lab, nil)); len(got) != 0 {
		t.Errorf("%d replies for %s seen after ownership was lost", len(got), labV4)
	}
	// node2's address is still answered.
	if out, err := l.Exec(client.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labOther.String()); err != nil ||
		!strings.Contains(strings.ToLower(out), node2.mac.String()) {
		t.Errorf("arping %s: %v, want a reply from node2 %s:\n%s", labOther, err, node2.mac, out)
	}
}

var clientV4Lab = netip.MustParseAddr("198.51.100.100")

func TestLabUnselectedInterface(t *testing.T) {
	l := newTestLab(t)
	if err := l.Bridge(l.sw, "br1"); err != nil {
		t.Fatal(err)
	}
	node := l.host(t, "node", "eth0", "br0", "198.51.100.1/24")
	l.attach(t, node.ns, "eth1", "br1") // no address: a second segment the node is also on
	client := l.host(t, "client", "eth0", "br0", "198.51.100.100/24")
	other := l.host(t, "other", "eth0", "br1", "198.51.100.200/24") // same subnet, other segment
	a := announcerIn(t, node.ns)
	setOwned(t, a, map[netip.Addr][]string{labV4: {"eth0"}})

	if out, err := l.Exec(client.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labV4.String()); err != nil {
		t.Fatalf("arping on the selected segment: %v\n%s", err, out)
	}
	out, err := l.Exec(other.ns, "arping", "-c", "1", "-w", "1", "-I", "eth0", labV4.String())
	if err == nil || !strings.Contains(out, "Received 0 response") {
		t.Errorf("arping on the unselected segment: %v, want no response:\n%s", err, out)
	}
	// Selecting eth1 too makes it answer there.
	setOwned(t, a, map[netip.Addr][]string{labV4: {"eth0", "eth1"}})
	if out, err := l.Exec(other.ns, "arping", "-c", "1", "-w", "2", "-I", "eth0", labV4.String()); err != nil {
		t.Errorf("arping after selecting eth1: %v\n%s", err, out)
	}
}

func TestLabGratuitousOnTakeover(t *testing.T) {
	_, node1, _, client := twoNodes(t)
	cp := captureIn(t, client.ns, "eth0")
	a := announcerIn(t, node1.ns)
	setOwned(t, a, map[netip.Addr][]string{labV4: {"eth0"}, labV6: {"eth0"}})

	// At once, then the burst: wait for the first three of each kind (0, +100ms, +500ms).
	var greq, grep, na int
	deadline := time.Now().Add(3 * time.Second)
	for (greq < 3 || grep < 3 || na < 3) && time.Now().Before(deadline) {
		for _, f := range cp.collect(time.Until(deadline), 1, func([]byte) bool { return true }) {
			switch {
			case isARP(arp.OperationRequest, labV4, labV4, node1.mac)(f):
				if fr, _ := arpOf(f); fr.Destination.String() == "ff:ff:ff:ff:ff:ff" {
					greq++
				}
			case isARP(arp.OperationReply, labV4, labV4, node1.mac)(f):
				grep++
			case isNA(labV6, node1.mac, false, allNodes)(f):
				na++
			}
		}
	}
	if greq < 3 || grep < 3 || na < 3 {
		t.Errorf("seen %d gratuitous ARP requests, %d replies, %d unsolicited NAs within 3s; want 3 of each", greq, grep, na)
	}
}

func TestLabIPv6(t *testing.T) {
	l, node1, node2, client := twoNodes(t)
	a1, a2 := announcerIn(t, node1.ns), announcerIn(t, node2.ns)
	setOwned(t, a1, map[netip.Addr][]string{labV6: {"eth0"}})
	setOwned(t, a2, map[netip.Addr][]string{netip.MustParseAddr("2001:db8::11"): {"eth0"}})
	cp := captureIn(t, client.ns, "eth0")

	// Multicast solicitation, from the kernel: ping fills the neighbour table.
	_, _ = l.Exec(client.ns, "ping", "-6", "-c", "1", "-W", "1", labV6.String())
	if line, ok := neighbour(t, l, client.ns, labV6, node1.mac, 2*time.Second); !ok {
		t.Fatalf("client neighbour entry for %s = %q, want node1's %s", labV6, line, node1.mac)
	}
	clientV6Lab := netip.MustParseAddr("2001:db8::100")
	if got := cp.collect(time.Second, 1, isNA(labV6, node1.mac, true, clientV6Lab)); len(got) != 1 {
		t.Fatalf("no solicited advertisement from node1 to the client seen")
	}

	// Neighbour unreachability detection: a stale entry is probed with a unicast solicitation.
	if _, err := l.Exec(client.ns, "sysctl", "-qw", "net.ipv6.neigh.eth0.delay_first_probe_time=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Exec(client.ns, "ip", "-6", "neigh", "change", labV6.String(), "dev", "eth0",
		"lladdr", node1.mac.String(), "nud", "stale"); err != nil {
		t.Fatal(err)
	}
	cp.drain()
	_, _ = l.Exec(client.ns, "ping", "-6", "-c", "1", "-W", "1", labV6.String())
	isUnicastNS := func(b []byte) bool {
		_, h, m := ndpOf(b)
		ns, ok := m.(*ndp.NeighborSolicitation)
		return ok && ns.TargetAddress == labV6 && h.Dst.Equal(net.IP(labV6.AsSlice()))
	}
	var probes, answers int
	deadline := time.Now().Add(4 * time.Second)
	for (probes == 0 || answers == 0) && time.Now().Before(deadline) {
		for _, f := range cp.collect(time.Until(deadline), 1, func(b []byte) bool {
			// The kernel probes from its link-local address: the answer goes there.
			return isUnicastNS(b) || isNA(labV6, node1.mac, true, netip.Addr{})(b)
		}) {
			if isUnicastNS(f) {
				probes++
			} else {
				answers++
			}
		}
	}
	if probes == 0 || answers == 0 {
		t.Fatalf("unicast probes %d, solicited answers %d; want both", probes, answers)
	}
	out, _ := l.Exec(client.ns, "ip", "-6", "neigh", "show", labV6.String(), "dev", "eth0")
	if !strings.Contains(out, "REACHABLE") {
		t.Errorf("after answering the probe, neighbour entry %q, want REACHABLE", strings.TrimSpace(out))
	}

	// Losing ownership stops answers.
	setOwned(t, a1, nil)
	if _, err := l.Exec(client.ns, "ip", "-6", "neigh", "flush", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	cp.drain()
	_, _ = l.Exec(client.ns, "ping", "-6", "-c", "1", "-W", "1", labV6.String())
	if got := cp.collect(200*time.Millisecond, 0, func(b []byte) bool {
		_, _, m := ndpOf(b)
		na, ok := m.(*ndp.NeighborAdvertisement)
		return ok && na.TargetAddress == labV6
	}); len(got) != 0 {
		t.Errorf("%d advertisements for %s after ownership was lost", len(got), labV6)
	}
}

func TestLabTakeoverUpdatesClient(t *testing.T) {
	l, node1, node2, client := twoNodes(t)
	a1, a2 := announcerIn(t, node1.ns), announcerIn(t, node2.ns)
	owned := map[netip.Addr][]string{labV4: {"eth0"}, labV6: {"eth0"}}
	setOwned(t, a1, owned)
	for _, ip := range []netip.Addr{labV4, labV6} {
		_, _ = l.Exec(client.ns, "ping", "-c", "1", "-W", "1", ip.String())
		if line, ok := neighbour(t, l, client.ns, ip, node1.mac, 2*time.Second); !ok {
			t.Fatalf("client neighbour entry for %s = %q, want node1's %s", ip, line, node1.mac)
		}
	}
	// Failover: the client sends nothing; gratuitous frames alone must move its existing entries.
	setOwned(t, a1, nil)
	setOwned(t, a2, owned)
	for _, ip := range []netip.Addr{labV4, labV6} {
		if line, ok := neighbour(t, l, client.ns, ip, node2.mac, 3*time.Second); !ok {
			t.Errorf("after takeover, client neighbour entry for %s = %q, want node2's %s", ip, line, node2.mac)
		}
	}
}
