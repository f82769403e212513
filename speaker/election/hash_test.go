package election

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWeightGolden pins the rendezvous weight. If this test fails, the hash changed: speakers
// of the old and new release would elect different owners during a rolling upgrade.
func TestWeightGolden(t *testing.T) {
	tests := []struct {
		node string
		ip   string
		want uint64
	}{
		{"node-a", "192.0.2.10", 0xf710e4c8826c71b},
		{"node-b", "192.0.2.10", 0x64364433f6e42ec3},
		{"node-a", "2001:db8::1", 0xd8a453315eebe160},
		{"worker-17.example.org", "::ffff:198.51.100.7", 0xe83d0325838dd7ec},
		{"", "0.0.0.0", 0xe23cf857e72aeade},
	}
	for _, tt := range tests {
		t.Run(tt.node+"/"+tt.ip, func(t *testing.T) {
			if got := weight(tt.node, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("weight(%q, %s) = %#x, want %#x", tt.node, tt.ip, got, tt.want)
			}
		})
	}
}

// TestOwnerGolden pins the owner of fixed IPs among fixed node names, as the release that
// introduced it elected them. If this test fails, the election changed (hash, input encoding or
// tie-break): during a rolling upgrade, speakers of the old and new release would each answer for
// a different owner, and an IP would have two owners or none.
func TestOwnerGolden(t *testing.T) {
	five := []string{"node-a", "node-b", "node-c", "worker-1.example.org", "worker-2.example.org"}
	three := five[:3]
	tests := []struct {
		ip        string
		wantFive  string // owner among five
		wantThree string // owner among three
	}{
		{"192.0.2.1", "worker-2.example.org", "node-a"},
		{"192.0.2.10", "worker-2.example.org", "node-c"},
		{"192.0.2.255", "node-b", "node-b"},
		{"198.51.100.7", "node-b", "node-b"},
		{"203.0.113.42", "worker-1.example.org", "node-b"},
		{"10.0.0.1", "worker-1.example.org", "node-c"},
		{"2001:db8::1", "node-b", "node-b"},
		{"2001:db8::ffff", "node-a", "node-a"},
		{"fd00:10::42", "node-a", "node-a"},
		{"::ffff:192.0.2.10", "worker-2.example.org", "node-c"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			gotFive, _ := Owner(ip, five)
			gotThree, _ := Owner(ip, three)
			want := [2]string{tt.wantFive, tt.wantThree}
			if diff := cmp.Diff(want, [2]string{gotFive, gotThree}); diff != "" {
				t.Errorf("owners of %s among five and three nodes mismatch (-want +got):\n%s", tt.ip, diff)
			}
		})
	}
}

func TestWeightIPv4Mapped(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	mapped := netip.MustParseAddr("::ffff:198.51.100.7")
	if weight("n", v4) != weight("n", mapped) {
		t.Errorf("IPv4 and IPv4-mapped forms of %s weigh differently", v4)
	}
}
