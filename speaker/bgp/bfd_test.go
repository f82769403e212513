package bgp

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

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

// TestBFDAdapter runs two BFD endpoints against each other over loopback (each on its own port,
// sending to the other's): the sessions come Up with a three-way handshake through the real
// sockets, a session that is closed tells the other AdminDown, which is no failure, and closing
// everything leaves no goroutine behind.
func TestBFDAdapter(t *testing.T) {
	before := runtime.NumGoroutine()
	pa, pb := freeUDPPort(t), freeUDPPort(t)
	log := slog.New(slog.DiscardHandler)
	epA, epB := newBFDEndpoint(log), newBFDEndpoint(log)
	epA.port, epA.peerPort = pa, pb
	epB.port, epB.peerPort = pb, pa
	lo := netip.MustParseAddr("127.0.0.1")
	p := Peer{Name: "p", Address: lo, SourceAddress: lo,
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
		if len(ep.listeners) != 0 || len(ep.byAddr) != 0 || len(ep.byDiscr) != 0 {
			t.Errorf("endpoint keeps %d listeners, %d sessions after all closed", len(ep.listeners), len(ep.byAddr))
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
