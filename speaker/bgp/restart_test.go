package bgp

import (
	"net/netip"
	"testing"
	"time"
)

// TestRestarting: the Restart State bit is set only on the first session of a peer with graceful
// restart, opened within the peer's restart time of the speaker's start.
func TestRestarting(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Peer{Name: "r", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("198.51.100.1"), GracefulRestart: true}
	short := p
	short.RestartTime = 5 * time.Second
	off := p
	off.GracefulRestart = false
	for _, tc := range []struct {
		name  string
		peer  Peer
		after time.Duration
		had   bool
		want  bool
	}{
		{"first session at start", p, time.Second, false, true},
		{"first session within the default restart time", p, DefaultRestartTime - time.Second, false, true},
		{"first session after the default restart time", p, DefaultRestartTime, false, false},
		{"first session after a short restart time", short, 6 * time.Second, false, false},
		{"first session within a short restart time", short, 4 * time.Second, false, true},
		{"a later session of the same peer (configuration changed)", p, time.Second, true, false},
		{"graceful restart off", off, time.Second, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Speaker{started: start, hadSession: map[string]bool{}}
			if tc.had {
				s.hadSession[tc.peer.Name] = true
			}
			if got := s.restarting(tc.peer, start.Add(tc.after)); got != tc.want {
				t.Errorf("restarting = %v, want %v", got, tc.want)
			}
		})
	}
}
