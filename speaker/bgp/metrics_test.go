package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/metrics/metricstest"
)

// TestMetricsPassPromlint lints the session metrics of a peer the speaker refuses (no session, so
// no traffic at all; it asks for BFD, which is reported Down).
func TestMetricsPassPromlint(t *testing.T) {
	reg := metricstest.NewRegistry()
	s, err := New(Config{RouterID: netip.MustParseAddr("198.51.100.10"), Registerer: reg, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	bad := Peer{Name: "bad", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1"), Port: 2,
		HoldTime: 10 * time.Second, KeepaliveTime: 10 * time.Second / 3,
		BFD: BFD{Enabled: true, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}}
	if err := s.SetPeers(t.Context(), []Peer{bad}); err == nil {
		t.Fatal("SetPeers accepted a peer with a fractional keepalive")
	}
	mfs, err := reg.Families()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := metricstest.Lint(mfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s", p)
	}
}
