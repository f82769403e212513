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
	"k8s.io/apimachinery/pkg/util/wait"
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
	if err := s.SetRoutes(ctx, Routes{"lo": {{Prefix: pfx("198.51.100.100/32")}, {Prefix: pfx("2001:db8:5::/120")}}}); err == nil || !errors.Is(err, ErrNoNextHop) {
		t.Errorf("IPv6 route over an IPv4 session without a node IPv6 address: %v, want ErrNoNextHop", err)
	}
	var st PeerStatus
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
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
	wantMetrics := map[string]float64{"herald_bgp_session_up": 0, "herald_bgp_prefixes_advertised": 0, "herald_bgp_updates_sent_total": 0, "herald_bgp_peer_refused": 0}
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

// TestSpeakerSkipsRefusedPeer: a peer the speaker cannot use is skipped and reported; the others
// get their sessions, and a later change of a good peer is applied. Nothing leaves the machine:
// the sessions point at closed ports on the loopback address.
func TestSpeakerSkipsRefusedPeer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, err := New(Config{RouterID: netip.MustParseAddr("198.51.100.10"), Registerer: reg, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	lo := netip.MustParseAddr("127.0.0.1")
	good := Peer{Name: "good", MyASN: 64512, PeerASN: 64500, Address: lo, Port: 1, ConnectTime: time.Second}
	// What config.Parse accepted before it was fixed: holdTime 10s with the keepalive it derived.
	bad := Peer{Name: "bad", MyASN: 64512, PeerASN: 64500, Address: lo, Port: 2, HoldTime: 10 * time.Second, KeepaliveTime: 10 * time.Second / 3}

	err = s.SetPeers(ctx, []Peer{bad, good})
	if !errors.Is(err, ErrInvalidPeer) || !strings.Contains(err.Error(), `peer "bad"`) || strings.Contains(err.Error(), `peer "good"`) {
		t.Fatalf("SetPeers = %v, want ErrInvalidPeer naming only peer bad", err)
	}
	byName := func() map[string]PeerStatus {
		out := map[string]PeerStatus{}
		for _, st := range s.Status() {
			out[st.Name] = st
		}
		return out
	}
	st := byName()
	if g := st["good"]; g.ConfigError != "" || g.State == StateUnknown {
		t.Errorf("status of good = %+v, want a session without configuration error", g)
	}
	if b := st["bad"]; b.State != StateUnknown || !strings.Contains(b.ConfigError, "keepaliveTime 3.333333333s is not a whole number") || b.Address != lo {
		t.Errorf("status of bad = %+v, want no session and the refusal", b)
	}
	if got := gatherByPeer(t, reg, "herald_bgp_peer_refused"); !cmp.Equal(got, map[string]float64{"good": 0, "bad": 1}) {
		t.Errorf("herald_bgp_peer_refused = %v, want good 0, bad 1", got)
	}

	// A change of the good peer (a password rotation) is applied although bad is still refused.
	good.Password = "rotated"
	if err := s.SetPeers(ctx, []Peer{bad, good}); !errors.Is(err, ErrInvalidPeer) {
		t.Fatalf("SetPeers = %v, want the refusal of bad again", err)
	}
	s.mu.Lock()
	applied := s.sessions["good"] != nil && s.sessions["good"].peer.Password == "rotated"
	s.mu.Unlock()
	if !applied {
		t.Errorf("the password change of good was not applied")
	}

	// A good peer whose new configuration is refused keeps the session of its previous one.
	broken := good
	broken.HoldTime = 2 * time.Second
	if err := s.SetPeers(ctx, []Peer{broken}); !errors.Is(err, ErrInvalidPeer) || !strings.Contains(err.Error(), `peer "good"`) {
		t.Fatalf("SetPeers = %v, want ErrInvalidPeer naming good", err)
	}
	st = byName()
	if g := st["good"]; g.State == StateUnknown || !strings.Contains(g.ConfigError, "previous configuration goes on") {
		t.Errorf("status of good = %+v, want its running session and the refusal", g)
	}
	if _, ok := st["bad"]; ok {
		t.Errorf("bad is still reported after it was removed: %+v", st["bad"])
	}
	s.mu.Lock()
	kept := s.sessions["good"] != nil && s.sessions["good"].peer == good
	s.mu.Unlock()
	if !kept {
		t.Errorf("the session of good's previous configuration was not kept")
	}
	// Fixed: applied, nothing refused any more.
	if err := s.SetPeers(ctx, []Peer{good}); err != nil {
		t.Fatalf("SetPeers = %v", err)
	}
	if g := byName()["good"]; g.ConfigError != "" {
		t.Errorf("status of good = %+v, want no configuration error", g)
	}
}

// gatherByPeer returns the values of one metric by its peer label.
func gatherByPeer(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// TestSpeakerUnnumberedWaiting: an interface peer whose router has sent no Router Advertisement
// yet (here the interface does not exist) has no session; Status says what it waits for, the
// other peers are not affected, and removing it stops the interface's Router Advertisement loop.
func TestSpeakerUnnumberedWaiting(t *testing.T) {
	s, err := New(Config{RouterID: netip.MustParseAddr("198.51.100.10"), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	good := Peer{Name: "good", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1"), Port: 1, ConnectTime: time.Second}
	unnumbered := Peer{Name: "u", MyASN: 64512, PeerASN: 64500, Interface: "herald-none0"}
	if err := s.SetPeers(ctx, []Peer{good, unnumbered}); err != nil {
		t.Fatalf("SetPeers = %v, want nil", err)
	}
	st := s.Status()
	if len(st) != 2 || st[0].Name != "good" || st[0].State == StateUnknown || st[0].ConfigError != "" {
		t.Errorf("Status = %+v, want good with a session and no configuration error first", st)
	}
	want := PeerStatus{Name: "u", State: StateIdle, LastError: waitingError("herald-none0")}
	if len(st) == 2 && st[1] != want {
		t.Errorf("status of u = %+v, want %+v", st[1], want)
	}
	if !strings.Contains(waitingError("eth1"), "Router Advertisement on eth1") {
		t.Errorf("waiting error %q does not name the interface", waitingError("eth1"))
	}
	s.mu.Lock()
	watching := s.watches["herald-none0"] != nil
	s.mu.Unlock()
	if !watching {
		t.Errorf("no Router Advertisement loop on herald-none0 for the interface peer")
	}
	if err := s.SetPeers(ctx, []Peer{good}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	left := len(s.watches)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d Router Advertisement loops left after the interface peer was removed, want 0", left)
	}
}
