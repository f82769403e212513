package election

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ips returns n consecutive addresses starting at first.
func ips(first string, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	a := netip.MustParseAddr(first)
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

func owners(t *testing.T, addrs []netip.Addr, nodes []string) map[netip.Addr]string {
	t.Helper()
	out := make(map[netip.Addr]string, len(addrs))
	for _, ip := range addrs {
		o, ok := Owner(ip, nodes)
		if !ok {
			t.Fatalf("Owner(%s, %q) found no owner", ip, nodes)
		}
		out[ip] = o
	}
	return out
}

func TestOwnerSpread(t *testing.T) {
	tests := []struct {
		name  string
		first string
		n     int
		nodes []string
	}{
		{"3 nodes IPv4", "10.0.0.0", 3000, []string{"node-1", "node-2", "node-3"}},
		{"3 nodes IPv6", "2001:db8::", 3000, []string{"node-1", "node-2", "node-3"}},
		{"5 nodes IPv4", "198.51.100.0", 5000, []string{"a", "b", "c", "d", "e"}},
		{"2 nodes similar names", "192.0.2.0", 2000, []string{"worker-10", "worker-11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count := map[string]int{}
			for _, o := range owners(t, ips(tt.first, tt.n), tt.nodes) {
				count[o]++
			}
			even := float64(tt.n) / float64(len(tt.nodes))
			for _, node := range tt.nodes {
				got := float64(count[node])
				if got < 0.85*even || got > 1.15*even {
					t.Errorf("node %s owns %v of %d IPs, want within ±15%% of %v; all: %v", node, got, tt.n, even, count)
				}
			}
			t.Logf("distribution: %v", count)
		})
	}
}

func TestOwnerMinimalMovement(t *testing.T) {
	base := []string{"node-1", "node-2", "node-3"}
	tests := []struct {
		name   string
		first  string
		before []string
		after  []string
	}{
		{"join IPv4", "10.0.0.0", base, append(slices.Clone(base), "node-4")},
		{"join IPv6", "2001:db8::", base, append(slices.Clone(base), "node-4")},
		{"leave IPv4", "10.0.0.0", base, []string{"node-1", "node-3"}},
		{"leave IPv6", "2001:db8::", base, []string{"node-2", "node-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs := ips(tt.first, 3000)
			before := owners(t, addrs, tt.before)
			after := owners(t, addrs, tt.after)

			// The IPs that must move are exactly those the joining node wins, or those the
			// leaving node held; nothing else.
			var moved, wantMoved []netip.Addr
			for _, ip := range addrs {
				if before[ip] != after[ip] {
					moved = append(moved, ip)
				}
				joined := !slices.Contains(tt.before, after[ip])
				left := !slices.Contains(tt.after, before[ip])
				if joined || left {
					wantMoved = append(wantMoved, ip)
				}
			}
			if diff := cmp.Diff(wantMoved, moved, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("moved IPs (-want +got):\n%s", diff)
			}
			if len(moved) == 0 {
				t.Errorf("no IP moved; the changed node should win or hold some")
			}
			t.Logf("%d of %d IPs moved", len(moved), len(addrs))
		})
	}
}

func TestOwner(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	// weight("node-b", ip) > weight("node-a", ip), see TestWeightGolden.
	tests := []struct {
		name     string
		eligible []string
		want     string
		wantOK   bool
	}{
		{"none", nil, "", false},
		{"only empty names", []string{"", ""}, "", false},
		{"single", []string{"node-a"}, "node-a", true},
		{"highest weight wins", []string{"node-a", "node-b"}, "node-b", true},
		{"order does not matter", []string{"node-b", "node-a"}, "node-b", true},
		{"duplicates do not matter", []string{"node-a", "node-b", "node-a", "node-b"}, "node-b", true},
		{"empty names ignored", []string{"", "node-a"}, "node-a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Owner(ip, tt.eligible)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Owner(%s, %q) = %q, %v; want %q, %v", ip, tt.eligible, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzOwner checks the properties every speaker relies on: the owner is one of the eligible
// nodes, does not depend on their order, and does not change when a node other than the owner
// is removed.
func FuzzOwner(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1}, "a", "b", "c")
	f.Add(netip.MustParseAddr("2001:db8::1").AsSlice(), "node-1", "node-1", "")
	f.Add([]byte{}, "", "", "")
	f.Fuzz(func(t *testing.T, raw []byte, a, b, c string) {
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			ip = netip.IPv4Unspecified()
		}
		nodes := []string{a, b, c}
		got, ok := Owner(ip, nodes)
		wantOK := a != "" || b != "" || c != ""
		if ok != wantOK {
			t.Fatalf("Owner(%s, %q) found=%v, want %v", ip, nodes, ok, wantOK)
		}
		if !ok {
			return
		}
		if got == "" || !slices.Contains(nodes, got) {
			t.Fatalf("Owner(%s, %q) = %q, not an eligible node", ip, nodes, got)
		}
		if again, _ := Owner(ip, []string{c, a, b}); again != got {
			t.Fatalf("Owner(%s) depends on order: %q then %q", ip, got, again)
		}
		rest := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n != got && n == a })
		if again, _ := Owner(ip, rest); again != got {
			t.Fatalf("Owner(%s) changed from %q to %q when non-owner %q was removed", ip, got, again, a)
		}
	})
}

func ExampleOwner() {
	ip := netip.MustParseAddr("192.0.2.10")
	owner, ok := Owner(ip, []string{"node-a", "node-b"})
	fmt.Println(owner, ok)
	// Output: node-b true
}
