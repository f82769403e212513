package election

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"testing"
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

// TestWeightMatchesFNV checks the hand-inlined FNV-1a against hash/fnv.
func TestWeightMatchesFNV(t *testing.T) {
	for _, node := range []string{"", "a", "node-1", "a-much-longer-node-name.example.org"} {
		for _, s := range []string{"0.0.0.0", "192.0.2.1", "2001:db8::ff", "fe80::1%eth0"} {
			ip := netip.MustParseAddr(s)
			h := fnv.New64a()
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(node)))
			h.Write(n[:])
			h.Write([]byte(node))
			a := ip.Unmap().As16()
			h.Write(a[:])
			if got, want := weight(node, ip), mix64(h.Sum64()); got != want {
				t.Errorf("weight(%q, %s) = %#x, want %#x", node, ip, got, want)
			}
		}
	}
}

func TestWeightIPv4Mapped(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	mapped := netip.MustParseAddr("::ffff:198.51.100.7")
	if weight("n", v4) != weight("n", mapped) {
		t.Errorf("IPv4 and IPv4-mapped forms of %s weigh differently", v4)
	}
}
