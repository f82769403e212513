package bgp

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestRouterID(t *testing.T) {
	addr := netip.MustParseAddr
	// The ID derived from 2001:db8::11, whatever the node's name.
	derived := derivedRouterID(addr("2001:db8::11").AsSlice())
	for _, tc := range []struct {
		name   string
		v4, v6 netip.Addr
		node   string
		want   netip.Addr // zero: derived from the name, checked below
	}{
		{name: "IPv4 node", v4: addr("198.51.100.11"), node: "n1", want: addr("198.51.100.11")},
		{name: "dual-stack node uses its IPv4 address", v4: addr("198.51.100.11"), v6: addr("2001:db8::11"), node: "n1", want: addr("198.51.100.11")},
		{name: "IPv4-mapped node address is unmapped", v4: addr("::ffff:198.51.100.11"), node: "n1", want: addr("198.51.100.11")},
		{name: "IPv6-only node", v6: addr("2001:db8::11"), node: "n1", want: derived},
		{name: "IPv6-only node, other name, same address: same ID", v6: addr("2001:db8::11"), node: "other", want: derived},
		{name: "unusable IPv4 address: derived from IPv6", v4: addr("0.0.0.0"), v6: addr("2001:db8::11"), node: "n1", want: derived},
		{name: "no address: from the name", node: "n1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RouterID(tc.v4, tc.v6, tc.node)
			if !usableRouterID(got) {
				t.Fatalf("RouterID = %v, not a usable router ID", got)
			}
			if tc.want.IsValid() && got != tc.want {
				t.Errorf("RouterID = %v, want %v", got, tc.want)
			}
			if !tc.want.IsValid() && (got == derived || got != derivedRouterID([]byte(tc.node))) {
				t.Errorf("RouterID = %v, want the one derived from the name %q", got, tc.node)
			}
			if again := RouterID(tc.v4, tc.v6, tc.node); again != got {
				t.Errorf("RouterID not stable: %v then %v", got, again)
			}
		})
	}
}

// TestRouterIDDistinctOnIPv6OnlyNodes: IPv6-only nodes never share one router ID: two nodes of
// one subnet, and every node of a 4,096-node /116 (which all differ; the birthday bound makes a
// collision among them unlikely but possible for other address sets, see RouterID).
func TestRouterIDDistinctOnIPv6OnlyNodes(t *testing.T) {
	n1 := RouterID(netip.Addr{}, netip.MustParseAddr("2001:db8::11"), "n1")
	n2 := RouterID(netip.Addr{}, netip.MustParseAddr("2001:db8::12"), "n2")
	if n1 == n2 {
		t.Fatalf("two IPv6-only nodes share router ID %v", n1)
	}
	t.Logf("n1 (2001:db8::11) -> %v, n2 (2001:db8::12) -> %v", n1, n2)
	seen := map[netip.Addr]string{}
	for i := range 4096 {
		v6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", i))
		id := RouterID(netip.Addr{}, v6, fmt.Sprintf("node-%d", i))
		if !usableRouterID(id) {
			t.Fatalf("%v -> %v: not a usable router ID", v6, id)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("%v and %s share router ID %v", v6, other, id)
		}
		seen[id] = v6.String()
	}
}

func FuzzRouterID(f *testing.F) {
	f.Add([]byte{}, []byte{}, "n1")
	f.Add([]byte{198, 51, 100, 11}, []byte{}, "n1")
	f.Add([]byte{}, netip.MustParseAddr("2001:db8::11").AsSlice(), "n1")
	f.Fuzz(func(t *testing.T, v4, v6 []byte, name string) {
		a4, _ := netip.AddrFromSlice(v4)
		a6, _ := netip.AddrFromSlice(v6)
		if id := RouterID(a4, a6, name); !usableRouterID(id) {
			t.Fatalf("RouterID(%v, %v, %q) = %v, not usable", a4, a6, name, id)
		}
	})
}
