package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-lb/herald/speaker/layer2/layer2test"
	"github.com/mdlayher/arp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeNet dials Links over in-memory connections; interface "missing" does not exist.
type fakeNet struct {
	mu     sync.Mutex
	arp    map[string]*layer2test.Conn
	ndp    map[string]*layer2test.Conn
	dialed []string
}

func newFakeNet() *fakeNet {
	return &fakeNet{arp: map[string]*layer2test.Conn{}, ndp: map[string]*layer2test.Conn{}}
}

func (f *fakeNet) dial(name string) (*Link, error) {
	if name == "missing" {
		return nil, fmt.Errorf("looking up interface %q: no such network interface", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, n := layer2test.NewConn(), layer2test.NewConn()
	f.arp[name], f.ndp[name] = a, n
	f.dialed = append(f.dialed, name)
	return NewLink(&net.Interface{Name: name, Index: len(f.dialed), MTU: 1500, HardwareAddr: selfMAC}, a, n)
}

func (f *fakeNet) conns(name string) (arpConn, ndpConn *layer2test.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.arp[name], f.ndp[name]
}

func newTestAnnouncer(t *testing.T, f *fakeNet, reg prometheus.Registerer) *Announcer {
	t.Helper()
	return startAnnouncer(t, Config{Dial: f.dial, Registerer: reg})
}

// startAnnouncer makes an Announcer of cfg, closed at the end of the test (a failing Close fails it).
func startAnnouncer(t *testing.T, cfg Config) *Announcer {
	t.Helper()
	a, err := NewAnnouncer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("closing announcer: %v", err)
		}
	})
	return a
}

// kinds summarises written frames: "garp-req", "garp-rep", "arp-rep", "na", "na-solicited", each
// with the address it is about.
func kinds(t *testing.T, frames []layer2test.Frame) []string {
	t.Helper()
	var out []string
	for _, f := range frames {
		if _, p := arpOf(f.Data); p != nil {
			switch {
			case p.Operation == arp.OperationRequest && p.SenderIP == p.TargetIP:
				out = append(out, "garp-req "+p.TargetIP.String())
			case p.Operation == arp.OperationReply && p.SenderIP == p.TargetIP:
				out = append(out, "garp-rep "+p.TargetIP.String())
			default:
				out = append(out, "arp-rep "+p.SenderIP.String())
			}
			continue
		}
		na := decodeNA(t, f.Data)
		k := "na "
		if na.Solicited {
			k = "na-solicited "
		}
		out = append(out, k+na.Target.String())
	}
	return out
}

func TestAnnouncerTakeoverSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a, err := NewAnnouncer(Config{Dial: f.dial, Refresh: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := a.Close(); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, lbIPv6: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		arpC, ndpC := f.conns("eth0")
		// At once, before SetOwned returned.
		want := []string{"garp-req 198.51.100.10", "garp-rep 198.51.100.10", "na 2001:db8::10"}
		if diff := cmp.Diff(want, append(kinds(t, arpC.Take()), kinds(t, ndpC.Take())...)); diff != "" {
			t.Fatalf("frames sent by SetOwned (-want +got):\n%s", diff)
		}
		ms := time.Millisecond
		for _, at := range []time.Duration{100 * ms, 500 * ms, time.Second, 2 * time.Second, 32 * time.Second, 62 * time.Second} {
			time.Sleep(at - time.Since(start) - ms)
			synctest.Wait()
			if got := append(arpC.Take(), ndpC.Take()...); len(got) != 0 {
				t.Fatalf("%s after takeover: %d frames sent early", time.Since(start), len(got))
			}
			time.Sleep(ms)
			synctest.Wait()
			if diff := cmp.Diff(want, append(kinds(t, arpC.Take()), kinds(t, ndpC.Take())...)); diff != "" {
				t.Fatalf("frames sent %s after takeover (-want +got):\n%s", time.Since(start), diff)
			}
		}
	})
}

func TestAnnouncerLosingOwnershipStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		reg := prometheus.NewRegistry()
		a := newTestAnnouncer(t, f, reg)
		other := netip.MustParseAddr("198.51.100.11")
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, other: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		arpC, _ := f.conns("eth0")
		arpC.Take()
		ask := func(ip netip.Addr) []string {
			arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, ip))
			synctest.Wait()
			return kinds(t, arpC.Take())
		}
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.10"}, ask(lbIPv4)); diff != "" {
			t.Fatalf("answer while owned (-want +got):\n%s", diff)
		}
		if err := a.SetOwned(map[netip.Addr][]string{other: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		if got := ask(lbIPv4); len(got) != 0 {
			t.Fatalf("answered %v after ownership was lost", got)
		}
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.11"}, ask(other)); diff != "" {
			t.Fatalf("answer for the address still owned (-want +got):\n%s", diff)
		}
		// The lost address is not announced any more; the kept one still is.
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		for _, k := range kinds(t, arpC.Take()) {
			if strings.HasSuffix(k, " "+lbIPv4.String()) {
				t.Fatalf("announced %s after losing it", k)
			}
		}
		want := map[string]float64{
			"herald_layer2_requests_received_total": 3,
			"herald_layer2_replies_sent_total":      2,
			"herald_layer2_owned_ips":               1,
			// Two frames per ARP announcement. The kept address: at once, 4 follow-ups, refreshes at
			// 62s, 122s, 182s, 242s. The lost one was lost (no time passed) before its first follow-up.
			"herald_layer2_gratuitous_sent_total": 2*(1+4+4) + 2*1,
		}
		if diff := cmp.Diff(want, gather(t, reg, "eth0", "ipv4")); diff != "" {
			t.Errorf("metrics{interface=eth0,family=ipv4} (-want +got):\n%s", diff)
		}

		// Owning nothing closes the link.
		if err := a.SetOwned(nil); err != nil {
			t.Fatal(err)
		}
		if !arpC.Closed() {
			t.Error("ARP socket still open after owning nothing")
		}
	})
}

// gather returns the value of every herald_layer2 series with the given labels (errors_total only
// if not zero).
func gather(t *testing.T, reg *prometheus.Registry, ifname, fam string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["interface"] != ifname || labels["family"] != fam {
				continue
			}
			v := metricValue(m)
			if mf.GetName() == "herald_layer2_errors_total" && v == 0 {
				continue
			}
			out[mf.GetName()] = v
		}
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestAnnouncerInterfaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		v4b := netip.MustParseAddr("198.51.100.11")
		// eth1 is opened for v4b only: lbIPv4 must not be answered there.
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, v4b: {"eth0", "eth1"}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"eth0", "eth1"} {
			c, _ := f.conns(name)
			c.Take()
			c.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
			c.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, v4b))
		}
		synctest.Wait()
		e0, _ := f.conns("eth0")
		e1, _ := f.conns("eth1")
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.10", "arp-rep 198.51.100.11"}, kinds(t, e0.Take())); diff != "" {
			t.Errorf("eth0 answers (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.11"}, kinds(t, e1.Take())); diff != "" {
			t.Errorf("eth1 answers (-want +got):\n%s", diff)
		}
		// Moving v4b off eth1 closes eth1.
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, v4b: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		if !e1.Closed() || e0.Closed() {
			t.Errorf("closed: eth0 %v, eth1 %v; want only eth1", e0.Closed(), e1.Closed())
		}
	})
}

func TestAnnouncerNDP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		// Same low 24 bits: one solicited-node group.
		twin := netip.MustParseAddr("2001:db8:1::10")
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv6: {"eth0"}, twin: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		_, c := f.conns("eth0")
		if diff := cmp.Diff(map[string]int{"33:33:ff:00:00:10": 1}, c.Groups()); diff != "" {
			t.Errorf("groups joined (-want +got):\n%s", diff)
		}
		c.Take()
		c.Deliver(nsFrame(t, lbIPv6, nsOpts{}))                                                   // multicast
		c.Deliver(nsFrame(t, lbIPv6, nsOpts{dst: lbIPv6, noSLLA: true}))                          // unreachability probe
		c.Deliver(nsFrame(t, lbIPv6, nsOpts{src: netip.IPv6Unspecified(), noSLLA: true}))         // DAD
		c.Deliver(nsFrame(t, netip.MustParseAddr("2001:db8::11"), nsOpts{}))                      // not owned
		c.Deliver(nsFrame(t, lbIPv6, nsOpts{hopLimit: 64}))                                       // forged
		c.Deliver([]byte{0x33, 0x33, 0xff, 0, 0, 0x10, 2, 0, 0, 0, 0, 0x99, 0x86, 0xdd, 0x60, 0}) // truncated
		synctest.Wait()
		got := c.Take()
		if diff := cmp.Diff([]string{"na-solicited 2001:db8::10", "na-solicited 2001:db8::10", "na 2001:db8::10"}, kinds(t, got)); diff != "" {
			t.Fatalf("answers (-want +got):\n%s", diff)
		}
		for i, wantTo := range []string{clientMAC.String(), clientMAC.String(), "33:33:00:00:00:01"} {
			if got[i].To.String() != wantTo {
				t.Errorf("answer %d sent to %s, want %s", i, got[i].To, wantTo)
			}
		}
		if err := a.SetOwned(map[netip.Addr][]string{twin: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{"33:33:ff:00:00:10": 1}, c.Groups()); diff != "" {
			t.Errorf("groups after dropping one of two (-want +got):\n%s", diff)
		}
		if err := a.SetOwned(map[netip.Addr][]string{netip.MustParseAddr("2001:db8::20"): {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{"33:33:ff:00:00:20": 1}, c.Groups()); diff != "" {
			t.Errorf("groups after moving (-want +got):\n%s", diff)
		}
	})
}

func TestAnnouncerErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"missing", "eth0"}, {}: {"eth0"}})
		if err == nil || !errors.Is(err, ErrInvalidIP) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("SetOwned error = %v, want one naming the missing interface and ErrInvalidIP", err)
		}
		c, _ := f.conns("eth0")
		if diff := cmp.Diff([]string{"garp-req 198.51.100.10", "garp-rep 198.51.100.10"}, kinds(t, c.Take())); diff != "" {
			t.Errorf("eth0 still served (-want +got):\n%s", diff)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.SetOwned(nil); !errors.Is(err, ErrClosed) {
			t.Errorf("SetOwned after Close = %v, want ErrClosed", err)
		}
	})
}

func TestNewAnnouncerRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewAnnouncer(Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if _, err := NewAnnouncer(Config{Registerer: reg}); err == nil {
		t.Error("second NewAnnouncer on the same registry succeeded, want a registration error")
	}
	if _, err := NewAnnouncer(Config{Burst: []time.Duration{time.Second, time.Millisecond}}); !errors.Is(err, ErrInvalidSchedule) {
		t.Errorf("NewAnnouncer with a decreasing burst: %v, want ErrInvalidSchedule", err)
	}
}
