package bgp

import "testing"

func TestSameASRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		peerASN  uint32
		remoteAS uint32
		refused  bool
	}{
		{"any AS, router in another", 0, 64500, false},
		{"any AS, router in ours", 0, 64512, true},
		{"pinned iBGP", 64512, 64512, false},
		{"pinned eBGP", 64500, 64500, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sameASRefused(Peer{Name: "r", MyASN: 64512, PeerASN: tc.peerASN}, tc.remoteAS)
			if (got != "") != tc.refused {
				t.Errorf("sameASRefused = %q, want refused %v", got, tc.refused)
			}
		})
	}
}
