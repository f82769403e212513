package bgp

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/internal/frr"
)

// TestSpeakerLocal drives a Speaker in this process against a closed port on the loopback
// address (nothing leaves the machine): status, metrics, routes kept for later, shutdown.
func TestSpeakerLocal(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Config{RouterID: netip.MustParseAddr("198.51.100.10"), Registerer: reg, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := Peer{Name: "lo", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1"), Port: 1,
		ConnectTime: time.Second}
	if err := s.SetPeers(ctx, []Peer{p}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes(ctx, []Route{{Prefix: pfx("198.51.100.100/32")}, {Prefix: pfx("2001:db8:5::/120")}}); err == nil || !errors.Is(err, ErrNoNextHop) {
		t.Errorf("IPv6 route over an IPv4 session without a node IPv6 address: %v, want ErrNoNextHop", err)
	}
	var st PeerStatus
	if err := frr.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		st = s.Status()[0]
		return strings.Contains(st.LastError, "connection refused"), nil
	}); err != nil {
		t.Fatalf("status %+v: want a last error saying the connection was refused: %v", st, err)
	}
	if st.State == StateEstablished || st.Name != "lo" {
		t.Errorf("status = %+v", st)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != "lo" {
				t.Errorf("metric %s has labels %v, want peer=lo", mf.GetName(), m.GetLabel())
			}
			got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	wantMetrics := map[string]float64{"herald_bgp_session_up": 0, "herald_bgp_prefixes_advertised": 0, "herald_bgp_updates_sent_total": 0}
	if diff := cmp.Diff(wantMetrics, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRoutes(ctx, nil); !errors.Is(err, ErrShutdown) {
		t.Errorf("SetRoutes after Shutdown = %v, want ErrShutdown", err)
	}
	if len(s.Status()) != 0 {
		t.Errorf("sessions left after Shutdown: %v", s.Status())
	}
}
