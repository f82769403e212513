package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/status"
)

func TestSessionTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("198.51.100.1")
	st := func(state bgp.State, err string) []bgp.PeerStatus {
		return []bgp.PeerStatus{{Name: "tor", Address: addr, State: state, LastError: err}}
	}
	md5 := "no TCP connection: i/o timeout (peer unreachable, not accepting BGP, or TCP MD5 password mismatch)"
	steps := []struct {
		name string
		at   time.Duration
		in   []bgp.PeerStatus
		want []sessionEvent
	}{
		{name: "connecting: within grace, quiet", at: 0, in: st(bgp.StateActive, md5)},
		{name: "still within grace", at: 5 * time.Second, in: st(bgp.StateActive, md5)},
		{name: "down past grace: reported once", at: 11 * time.Second, in: st(bgp.StateActive, md5), want: []sessionEvent{{
			"tor", corev1.EventTypeWarning, ReasonSessionDown, "node n1: session to 198.51.100.1 is not established after 11s (Active): " + md5}}},
		{name: "same reason again: quiet", at: 20 * time.Second, in: st(bgp.StateConnect, md5)},
		{name: "established", at: 21 * time.Second, in: st(bgp.StateEstablished, ""), want: []sessionEvent{{
			"tor", corev1.EventTypeNormal, ReasonSessionUp, "node n1: session to 198.51.100.1 established"}}},
		{name: "steady: quiet", at: 30 * time.Second, in: st(bgp.StateEstablished, "")},
		{name: "goes down: reported at once", at: 31 * time.Second, in: st(bgp.StateIdle, "hold timer expired"), want: []sessionEvent{{
			"tor", corev1.EventTypeWarning, ReasonSessionDown, "node n1: session to 198.51.100.1 went down (Idle): hold timer expired"}}},
		{name: "peer removed: forgotten", at: 32 * time.Second, in: nil},
	}
	tr := newSessionTracker("n1", 10*time.Second)
	for _, s := range steps {
		got := tr.update(t0.Add(s.at), s.in)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
		// Until the first report, the tracker asks to be called again when the grace ends.
		if wantDue := s.at < 10*time.Second; wantDue != tr.due.Equal(t0.Add(10*time.Second)) {
			t.Errorf("%s: due %v, want the end of the grace period: %v", s.name, tr.due, wantDue)
		}
	}
	if len(tr.last) != 0 {
		t.Errorf("tracker still remembers %v after the peer was removed", tr.last)
	}
}

// TestSessionTrackerRefusedPeer: a refused peer configuration is reported at once, once per
// distinct reason, without the "not established" warnings of a session that does not exist.
func TestSessionTrackerRefusedPeer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("198.51.100.2")
	refused := `invalid BGP peer: peer "edge": TCP MD5 password of 81 bytes is longer than 80 bytes`
	st := func(state bgp.State, cfgErr string) []bgp.PeerStatus {
		return []bgp.PeerStatus{{Name: "edge", Address: addr, State: state, ConfigError: cfgErr}}
	}
	tr := newSessionTracker("n1", 10*time.Second)
	steps := []struct {
		name string
		at   time.Duration
		in   []bgp.PeerStatus
		want []sessionEvent
	}{
		{name: "refused: reported at once", at: 0, in: st(bgp.StateUnknown, refused), want: []sessionEvent{{
			"edge", corev1.EventTypeWarning, ReasonPeerRefused, "node n1: cannot use this BGPPeer's configuration; the other sessions are not affected: " + refused}}},
		{name: "still refused past grace: quiet", at: 30 * time.Second, in: st(bgp.StateUnknown, refused)},
		{name: "accepted and up", at: 31 * time.Second, in: st(bgp.StateEstablished, ""), want: []sessionEvent{{
			"edge", corev1.EventTypeNormal, ReasonSessionUp, "node n1: session to 198.51.100.2 established"}}},
		{name: "refused again, the old session goes on", at: 32 * time.Second, in: st(bgp.StateEstablished, refused), want: []sessionEvent{{
			"edge", corev1.EventTypeWarning, ReasonPeerRefused, "node n1: cannot use this BGPPeer's configuration; the other sessions are not affected: " + refused}}},
	}
	for _, s := range steps {
		got := tr.update(t0.Add(s.at), s.in)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestSessionObjects(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.2")
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := sessionObjects("n1", []bgp.PeerStatus{
		{Name: "tor", Address: addr, State: bgp.StateEstablished, EstablishedSince: since, PrefixesAdvertised: 2},
		{Name: "edge", Address: addr, State: bgp.StateUnknown, ConfigError: "bad hold time"},
		{Name: "kept", Address: addr, State: bgp.StateActive, LastError: "no TCP connection", ConfigError: "bad hold time; the session of the previous configuration goes on"},
		{Name: "bfd", Address: addr, State: bgp.StateEstablished, EstablishedSince: since, BFD: "Up"},
		{Name: "nobfd", Address: addr, State: bgp.StateEstablished, EstablishedSince: since, BFDError: "listening for BFD on UDP port 3784: address already in use"},
	})
	sinceT := metav1.NewTime(since)
	want := map[string]v1beta1.BGPSessionStatusStatus{
		status.ObjectName("n1", "tor"):  {Node: "n1", Peer: "tor", PeerAddress: "198.51.100.2", State: "Established", EstablishedSince: &sinceT, PrefixesAdvertised: 2},
		status.ObjectName("n1", "edge"): {Node: "n1", Peer: "edge", PeerAddress: "198.51.100.2", State: StateRefused, LastError: "configuration refused: bad hold time"},
		status.ObjectName("n1", "kept"): {Node: "n1", Peer: "kept", PeerAddress: "198.51.100.2", State: "Active",
			LastError: "configuration refused: bad hold time; the session of the previous configuration goes on; session: no TCP connection"},
		status.ObjectName("n1", "bfd"): {Node: "n1", Peer: "bfd", PeerAddress: "198.51.100.2", State: "Established", EstablishedSince: &sinceT, BFD: "Up"},
		status.ObjectName("n1", "nobfd"): {Node: "n1", Peer: "nobfd", PeerAddress: "198.51.100.2", State: "Established", EstablishedSince: &sinceT, BFD: "Error",
			LastError: "BFD does not run: listening for BFD on UDP port 3784: address already in use"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sessionObjects (-want +got):\n%s", diff)
	}
}

func TestBGPPeersBFD(t *testing.T) {
	tests := []struct {
		name string
		bfd  *config.BFDProfile
		want bgp.BFD
	}{
		{name: "no profile", want: bgp.BFD{}},
		{
			name: "profile",
			bfd:  &config.BFDProfile{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 100 * time.Millisecond, DetectMultiplier: 5, PassiveMode: true},
			want: bgp.BFD{Enabled: true, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 100 * time.Millisecond, DetectMultiplier: 5, Passive: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bgpPeers([]*config.Peer{{Name: "p", MyASN: 1, PeerASN: 2, Address: netip.MustParseAddr("198.51.100.1"), BFDProfile: tt.bfd}})
			if diff := cmp.Diff(tt.want, got[0].BFD); diff != "" {
				t.Errorf("BFD (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBGPPeersGracefulShutdown(t *testing.T) {
	tests := []struct {
		name string
		peer config.Peer
		want time.Duration
	}{
		{name: "off", want: 0},
		{name: "on", peer: config.Peer{GracefulShutdown: true, GracefulShutdownTime: 7 * time.Second}, want: 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.peer
			p.Name, p.MyASN, p.PeerASN, p.Address = "p", 1, 2, netip.MustParseAddr("198.51.100.1")
			got := bgpPeers([]*config.Peer{&p})
			if diff := cmp.Diff(tt.want, got[0].GracefulShutdown); diff != "" {
				t.Errorf("GracefulShutdown (-want +got):\n%s", diff)
			}
		})
	}
}
