package layer2

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	dto "github.com/prometheus/client_model/go"
)

// TestAnnouncerUpdateOwned: UpdateOwned changes the addresses it names, at once and with the
// guarantees of SetOwned, and leaves the others alone (no announcement, still answered).
func TestAnnouncerUpdateOwned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		b, c := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
		twin := netip.MustParseAddr("2001:db8:1::10") // lbIPv6's solicited-node group
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, b: {"eth0"}, lbIPv6: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		arpC, ndpC := f.conns("eth0")
		arpC.Take()
		ndpC.Take()
		if err := a.UpdateOwned(map[netip.Addr][]string{lbIPv4: nil, c: {"eth0"}, twin: {"eth0"}, lbIPv6: {}}, nil); err != nil {
			t.Fatal(err)
		}
		want := []string{"garp-req 198.51.100.12", "garp-rep 198.51.100.12", "na 2001:db8:1::10"}
		if diff := cmp.Diff(want, append(kinds(t, arpC.Take()), kinds(t, ndpC.Take())...)); diff != "" {
			t.Fatalf("frames sent by UpdateOwned (-want +got):\n%s", diff)
		}
		ask := func(ip netip.Addr) []string {
			arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, ip))
			synctest.Wait()
			return kinds(t, arpC.Take())
		}
		for ip, want := range map[netip.Addr][]string{lbIPv4: nil, b: {"arp-rep 198.51.100.11"}, c: {"arp-rep 198.51.100.12"}} {
			if diff := cmp.Diff(want, ask(ip)); diff != "" {
				t.Errorf("answers for %s (-want +got):\n%s", ip, diff)
			}
		}
		if diff := cmp.Diff(map[string]int{"33:33:ff:00:00:10": 1}, ndpC.Groups()); diff != "" {
			t.Errorf("groups joined (-want +got):\n%s", diff)
		}
		// The follow-ups of the new addresses only; b's schedule is untouched (its next
		// announcement is 100ms after its own takeover, which is now).
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		arpC.Take()
		ndpC.Take()
		// An interface without an open link: UpdateOwned opens it.
		if err := a.UpdateOwned(map[netip.Addr][]string{c: {"eth1"}, twin: nil}, nil); err != nil {
			t.Fatal(err)
		}
		e1, _ := f.conns("eth1")
		if diff := cmp.Diff([]string{"garp-req 198.51.100.12", "garp-rep 198.51.100.12"}, kinds(t, e1.Take())); diff != "" {
			t.Errorf("frames on eth1 (-want +got):\n%s", diff)
		}
		if got := ask(c); len(got) != 0 {
			t.Errorf("eth0 still answers %v for an address moved to eth1", got)
		}
		if diff := cmp.Diff(map[string]int{}, ndpC.Groups()); diff != "" {
			t.Errorf("groups after the last IPv6 address went (-want +got):\n%s", diff)
		}
	})
}

// TestAnnouncerUpdateOwnedProbesFresh: with conflict detection, an address UpdateOwned marks fresh
// is probed and answered only after, like SetOwnedFresh does; a takeover is answered at once.
func TestAnnouncerUpdateOwnedProbesFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newConflictAnnouncer(t, f, nil, "n1")
		taken := netip.MustParseAddr("198.51.100.11")
		if err := a.SetOwned(map[netip.Addr][]string{taken: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		arpC, _ := f.conns("eth0")
		arpC.Take()
		if err := a.UpdateOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}}, map[netip.Addr]bool{lbIPv4: true}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		got := frameKinds(t, arpC.Take())
		if containsKind(got, "garp-req 198.51.100.10") || !containsKind(got, "probe 198.51.100.10") {
			t.Fatalf("a fresh address was announced before it was probed, or not probed: %v", got)
		}
		time.Sleep(DefaultNewProbeWait + 10*time.Millisecond)
		synctest.Wait()
		if got := frameKinds(t, arpC.Take()); !containsKind(got, "garp-req 198.51.100.10") {
			t.Fatalf("the fresh address was not announced after nobody answered its probes: %v", got)
		}
	})
}

// TestAnnouncerPacesMassTakeover: taking over many addresses at once announces AnnounceBurst of
// them before SetOwned returns and the rest at AnnounceRate, each once before any follow-up, and
// never faster.
func TestAnnouncerPacesMassTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, rate, burst = 1000, 1000, 100
		f := newFakeNet()
		a, err := NewAnnouncer(Config{Dial: f.dial, AnnounceRate: rate, AnnounceBurst: burst})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Close() }()
		owned := map[netip.Addr][]string{}
		for _, ip := range ipv6Block(n) {
			owned[ip] = []string{"eth0"}
		}
		start := time.Now()
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		_, ndpC := f.conns("eth0")
		seen := map[string]int{}
		for _, k := range kinds(t, ndpC.Take()) {
			seen[strings.TrimPrefix(k, "na ")]++
		}
		if len(seen) != burst {
			t.Fatalf("%d addresses announced before SetOwned returned, want the burst (%d)", len(seen), burst)
		}
		firstDone, followUp := time.Duration(0), time.Duration(0)
		announced := burst
		window := map[int]int{0: burst}
		for step := 1; time.Since(start) < 2*time.Second; step++ {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			for _, k := range kinds(t, ndpC.Take()) {
				target := strings.TrimPrefix(k, "na ")
				window[int(time.Since(start)/(100*time.Millisecond))]++
				if seen[target]++; seen[target] == 1 {
					announced++
					if announced == n {
						firstDone = time.Since(start)
					}
				} else if followUp == 0 {
					followUp = time.Since(start)
				}
			}
		}
		if firstDone == 0 {
			t.Fatalf("only %d of %d addresses announced within 2s", announced, n)
		}
		// (n-burst)/rate after the start, give or take one wake-up.
		if want := time.Duration(float64(n-burst) / rate * float64(time.Second)); firstDone > want+20*time.Millisecond || firstDone < want-20*time.Millisecond {
			t.Errorf("every address announced %s after the takeover, want about %s at %d/s", firstDone, want, rate)
		}
		if followUp < firstDone {
			t.Errorf("a follow-up went out at %s, before every address was announced once (%s)", followUp, firstDone)
		}
		for w, got := range window {
			if limit := rate/10 + burst; got > limit {
				t.Errorf("%d announcements in the 100ms from %dms, want at most %d", got, w*100, limit)
			}
		}
	})
}

// ipv6Block returns n addresses of 2001:db8:1::/112 from ::1:0.
func ipv6Block(n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	a := netip.MustParseAddr("2001:db8:1::1:0").As16()
	for i := range n {
		b := a
		b[13], b[14], b[15] = byte(1+i>>16), byte(i>>8), byte(i)
		out = append(out, netip.AddrFrom16(b))
	}
	return out
}

// discardConn is a Conn that counts what is written and reads nothing until closed.
type discardConn struct {
	mu      sync.Mutex
	frames  int
	byTime  []time.Time // when each frame was written, if recording
	targets map[netip.Addr]time.Time
	record  bool
	closed  chan struct{}
	once    sync.Once
}

func newDiscardConn(record bool) *discardConn {
	return &discardConn{closed: make(chan struct{}), record: record, targets: map[netip.Addr]time.Time{}}
}

func (c *discardConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.closed
	return 0, nil, net.ErrClosed
}

func (c *discardConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	if !c.record {
		return len(b), nil
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames++
	c.byTime = append(c.byTime, now)
	if _, p := arpOf(b); p != nil {
		if _, ok := c.targets[p.TargetIP]; !ok {
			c.targets[p.TargetIP] = now
		}
	}
	return len(b), nil
}

func (c *discardConn) Close() error                      { c.once.Do(func() { close(c.closed) }); return nil }
func (c *discardConn) JoinGroup(net.HardwareAddr) error  { return nil }
func (c *discardConn) LeaveGroup(net.HardwareAddr) error { return nil }

// TestMeasureLayer2Scale measures what the issue asks of layer 2 at 10,000 owned addresses:
//
//   - the cost of answering one ARP request (the responder's whole handle path: parse, owned-set
//     lookup, reply built and written to a socket double) with 10 and with 10,000 addresses owned,
//     as a Go benchmark: the lookup is a map access, so the two must be about the same;
//   - a mass takeover of 10,000 IPv4 addresses with the default pacing, in real time over a socket
//     double that timestamps every frame: when the last address got its first announcement, and
//     the most frames sent in any one second (the follow-ups of the burst schedule included).
//
// With HERALD_BENCH=1 it prints BENCHJSON lines.
func TestMeasureLayer2Scale(t *testing.T) {
	answer := map[int]float64{}
	for _, n := range []int{10, 10000} {
		answer[n] = answerCost(t, n)
	}
	t.Logf("answering one ARP request: %.0f ns with 10 addresses owned, %.0f ns with 10,000", answer[10], answer[10000])
	if answer[10000] > 2*answer[10] {
		t.Errorf("answering costs %.0f ns with 10,000 addresses owned and %.0f ns with 10: want it flat (at most twice)", answer[10000], answer[10])
	}

	const n = 10000
	to := massTakeover(t, n)
	t.Logf("takeover of %d addresses: SetOwned returned after %s, every address announced %s after the start; %d frames, at most %d in any second, %d in any 100ms",
		n, to.returned.Round(time.Millisecond), to.all.Round(time.Millisecond), to.frames, to.perSecond, to.per100ms)
	// These are wall-clock figures on a shared machine: they are reported (bench/REPORT.md judges
	// them), and TestTakeoverPacing asserts the same bounds on the announcer's own clock.
	all, perSecond := to.all, to.perSecond
	if os.Getenv("HERALD_BENCH") == "1" {
		benchLine("l2_answer_ns_10", answer[10], "ns")
		benchLine("l2_answer_ns_10000", answer[10000], "ns")
		benchLine("l2_gratuitous_10000_all_announced_ms", float64(all.Microseconds())/1000, "ms")
		benchLine("l2_gratuitous_10000_peak_pkts_per_s", float64(perSecond), "pkts/s")
	}
}

// answerCost benchmarks the responder's handle path for an ARP request for an owned address,
// with n addresses owned, and returns nanoseconds per request.
func answerCost(t *testing.T, n int) float64 {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newResponder(familyIPv4, &net.Interface{Name: "eth0", Index: 1, MTU: 1500, HardwareAddr: selfMAC}, newDiscardConn(false), m, slog.New(slog.DiscardHandler))
	ips := map[netip.Addr]struct{}{}
	base := netip.MustParseAddr("198.18.0.0").As4()
	var frames [][]byte
	for i := range n {
		b := base
		b[2], b[3] = byte(i>>8), byte(i)
		ip := netip.AddrFrom4(b)
		ips[ip] = struct{}{}
		if i%max(1, n/64) == 0 {
			frames = append(frames, arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, ip))
		}
	}
	if err := r.setOwned(ips); err != nil {
		t.Fatal(err)
	}
	res := testing.Benchmark(func(b *testing.B) {
		for i := range b.N {
			r.handle(frames[i%len(frames)])
		}
	})
	if got := testutilCounter(t, r); got == 0 {
		t.Fatal("the responder sent no reply: the benchmark measured nothing")
	}
	return float64(res.T.Nanoseconds()) / float64(res.N)
}

func testutilCounter(t *testing.T, r *responder) float64 {
	t.Helper()
	var m dto.Metric
	if err := r.replies.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// benchLine prints one figure for hack/benchreport.
func benchLine(name string, v float64, unit string) {
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, math.Round(v*10) / 10, unit})
	fmt.Printf("BENCHJSON %s\n", line)
}

// takeoverFigures is what massTakeover measured.
type takeoverFigures struct {
	returned, all       time.Duration // SetOwned's return; the last address's first announcement
	frames              int
	perSecond, per100ms int // the most frames written in any window of that length
}

// massTakeover takes over n IPv4 addresses at once with the default pacing over a socket double
// that timestamps every frame, waits until each address was announced, lets the burst schedule's
// follow-ups run for another second, and returns the figures. Inside a synctest bubble the
// timestamps are the announcer's own clock.
func massTakeover(t *testing.T, n int) takeoverFigures {
	t.Helper()
	conn := newDiscardConn(true)
	a, err := NewAnnouncer(Config{Dial: func(name string) (*Link, error) {
		return NewLink(&net.Interface{Name: name, Index: 1, MTU: 1500, HardwareAddr: selfMAC}, conn, nil)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	owned := make(map[netip.Addr][]string, n)
	base := netip.MustParseAddr("198.51.100.0").As4()
	for i := range n {
		b := base
		b[1], b[2], b[3] = byte(18+i>>16), byte(i>>8), byte(i) // 198.18.0.0/15: benchmarking range
		owned[netip.AddrFrom4(b)] = []string{"eth0"}
	}
	start := time.Now()
	if err := a.SetOwned(owned); err != nil {
		t.Fatal(err)
	}
	var to takeoverFigures
	to.returned = time.Since(start)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for to.all == 0 {
		conn.mu.Lock()
		if len(conn.targets) == n {
			var last time.Time
			for _, at := range conn.targets {
				if at.After(last) {
					last = at
				}
			}
			to.all = last.Sub(start)
		}
		conn.mu.Unlock()
		if to.all == 0 {
			select {
			case <-tick.C:
			case <-deadline:
				t.Fatalf("not every address was announced within 10s")
			}
		}
	}
	// The measurement window: the follow-ups run for another second, as the peak may come from them.
	<-time.After(time.Second)
	conn.mu.Lock()
	defer conn.mu.Unlock()
	peak := func(window time.Duration) int {
		most := 0
		for i, j := 0, 0; j < len(conn.byTime); j++ {
			for conn.byTime[j].Sub(conn.byTime[i]) >= window {
				i++
			}
			most = max(most, j-i+1)
		}
		return most
	}
	to.perSecond, to.per100ms = peak(time.Second), peak(100*time.Millisecond)
	to.frames = conn.frames
	return to
}

// TestTakeoverPacing takes over 10,000 addresses on a fake clock (a synctest bubble), where a
// frame's timestamp is the time its token was taken: every address is announced within a second,
// and no second carries more than the burst plus a second's worth of the rate (two frames per
// IPv4 announcement).
func TestTakeoverPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		to := massTakeover(t, 10000)
		t.Logf("every address announced %s after the start; %d frames, at most %d in any second", to.all, to.frames, to.perSecond)
		if to.all > time.Second {
			t.Errorf("every address announced %s after the takeover, want within 1s", to.all)
		}
		if limit := 2 * (DefaultAnnounceRate + DefaultAnnounceBurst); to.perSecond > limit {
			t.Errorf("%d frames in one second, want at most %d (the default rate and burst)", to.perSecond, limit)
		}
		if to.frames < 2*10000 {
			t.Errorf("%d frames for 10,000 addresses, want at least two each", to.frames)
		}
	})
}
