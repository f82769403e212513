package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"github.com/herald-lb/herald/speaker/bfd"
)

// freeUDPPort returns a UDP port that was free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// bfdEvent is one onChange call of a link.
type bfdEvent struct {
	state   bfd.State
	failure bool
}

// TestBFDAdapter runs two BFD endpoints against each other over loopback (each on its own ports,
// sending to the other's), single hop and multi-hop (a peer with EBGPMultiHop): the sessions come
// Up with a three-way handshake through the real sockets, a session that is closed tells the
// other AdminDown, which is no failure, and closing everything leaves no goroutine behind.
func TestBFDAdapter(t *testing.T) {
	for _, multiHop := range []bool{false, true} {
		t.Run(map[bool]string{false: "single hop", true: "multi-hop"}[multiHop], func(t *testing.T) { testBFDAdapter(t, multiHop) })
	}
}

// bfdTestEndpoints returns two endpoints that send to each other's ports on loopback.
func bfdTestEndpoints(t *testing.T) (*bfdEndpoint, *bfdEndpoint) {
	log := slog.New(slog.DiscardHandler)
	epA, epB := newBFDEndpoint(log), newBFDEndpoint(log)
	for _, mh := range []bool{false, true} {
		pa, pb := freeUDPPort(t), freeUDPPort(t)
		epA.ports[mh], epB.ports[mh] = bfdPorts{listen: pa, peer: pb}, bfdPorts{listen: pb, peer: pa}
	}
	return epA, epB
}

func testBFDAdapter(t *testing.T, multiHop bool) {
	before := runtime.NumGoroutine()
	log := slog.New(slog.DiscardHandler)
	epA, epB := bfdTestEndpoints(t)
	lo := netip.MustParseAddr("127.0.0.1")
	p := Peer{Name: "p", Address: lo, SourceAddress: lo, EBGPMultiHop: multiHop,
		BFD: BFD{Enabled: true, ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 50 * time.Millisecond, DetectMultiplier: 3}}
	evA, evB := make(chan bfdEvent, 16), make(chan bfdEvent, 16)
	on := func(ch chan bfdEvent) func(bfd.State, bool, bfd.Diag) {
		return func(st bfd.State, failure bool, _ bfd.Diag) { ch <- bfdEvent{st, failure} }
	}
	a, err := epA.open(p, log, on(evA))
	if err != nil {
		t.Fatal(err)
	}
	b, err := epB.open(p, log, on(evB))
	if err != nil {
		t.Fatal(err)
	}
	waitState := func(name string, ch chan bfdEvent, want bfd.State, failure bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev := <-ch:
				if ev.state == want {
					if ev.failure != failure {
						t.Errorf("%s: %v with failure %v, want %v", name, ev.state, ev.failure, failure)
					}
					return
				}
			case <-deadline:
				t.Fatalf("%s: no change to %v", name, want)
			}
		}
	}
	waitState("A", evA, bfd.StateUp, false)
	waitState("B", evB, bfd.StateUp, false)
	if a.State() != bfd.StateUp || b.State() != bfd.StateUp {
		t.Fatalf("states %v and %v, want Up", a.State(), b.State())
	}
	if _, err := epA.open(p, log, on(evA)); err == nil {
		t.Error("a second BFD session to the same address was opened")
	}

	b.close()
	waitState("A after B closed", evA, bfd.StateDown, false)

	a.close()
	for _, ep := range []*bfdEndpoint{epA, epB} {
		if len(ep.listeners) != 0 || ep.demux.Len() != 0 {
			t.Errorf("endpoint keeps %d listeners, %d sessions after all closed", len(ep.listeners), ep.demux.Len())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after closing, %d before", n, before)
	}
}

// TestBFDAdapterBothKinds runs a single-hop and a multi-hop session to the same address side by
// side (RFC 5883 section 2: they are distinct sessions on distinct ports): both come Up, each on
// its own listener, and closing one leaves the other Up.
func TestBFDAdapterBothKinds(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	epA, epB := bfdTestEndpoints(t)
	lo := netip.MustParseAddr("127.0.0.1")
	single := Peer{Name: "p", Address: lo, SourceAddress: lo,
		BFD: BFD{Enabled: true, ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 50 * time.Millisecond, DetectMultiplier: 3}}
	multi := single
	multi.EBGPMultiHop = true
	var links []*bfdLink
	for _, ep := range []*bfdEndpoint{epA, epB} {
		for _, p := range []Peer{single, multi} {
			l, err := ep.open(p, log, func(bfd.State, bool, bfd.Diag) {})
			if err != nil {
				t.Fatalf("opening %v: %v", p.EBGPMultiHop, err)
			}
			links = append(links, l)
		}
	}
	defer func() {
		for _, l := range links[1:] {
			l.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := frr.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		return !slices.ContainsFunc(links, func(l *bfdLink) bool { return l.State() != bfd.StateUp }), nil
	})
	if err != nil {
		t.Fatalf("sessions not all Up: %v", err)
	}
	if n := len(epA.listeners); n != 2 {
		t.Errorf("endpoint has %d listeners, want 2 (single-hop and multi-hop port)", n)
	}
	links[0].close() // A's single-hop session; B's goes Down, the multi-hop ones stay Up
	if err := frr.Poll(ctx, 10*time.Millisecond, func() (bool, error) { return links[2].State() != bfd.StateUp, nil }); err != nil {
		t.Errorf("B's single-hop session is %v after A's closed, want Down: %v", links[2].State(), err)
	}
	if a, b := links[1].State(), links[3].State(); a != bfd.StateUp || b != bfd.StateUp {
		t.Errorf("multi-hop sessions are %v and %v after the single-hop one closed, want Up", a, b)
	}
	if n := len(epA.listeners); n != 1 {
		t.Errorf("endpoint A has %d listeners after its single-hop session closed, want 1", n)
	}
}
