package layer2

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSelect(t *testing.T) {
	a := netip.MustParseAddr
	nodeV4, nodeV6 := a("198.51.100.11"), a("2001:db8:1::11")
	up := func(idx int, name string, addrs ...netip.Addr) HostLink {
		return HostLink{Index: idx, Name: name, Up: true, Ethernet: true, Addrs: addrs}
	}
	lo := HostLink{Index: 1, Name: "lo", Up: true, Loopback: true, Addrs: []netip.Addr{a("127.0.0.1")}}
	// A node of a routed CNI: 300 pod veths whose host ends hold the ptp plugin's gateway address
	// and a route to their pod, none in a bridge.
	routed := Host{Links: []HostLink{lo, up(2, "eth0", nodeV4, nodeV6)}, DefaultRoutes: []int{2, 2}}
	for i := range 300 {
		routed.Links = append(routed.Links, up(10+i, fmt.Sprintf("cali%011x", i), a("10.22.0.1")))
	}
	tests := []struct {
		name  string
		host  Host
		addrs []netip.Addr
		named []string
		want  Selection
	}{
		{name: "the interface holding the node address", addrs: []netip.Addr{nodeV4},
			host: Host{Links: []HostLink{lo, up(2, "eth0", nodeV4), up(3, "eth1")}},
			want: Selection{Default: []Iface{{"eth0", 2}}}},
		{name: "routed pod veths are never chosen", addrs: []netip.Addr{nodeV4, nodeV6}, host: routed,
			want: Selection{Default: []Iface{{"eth0", 2}}}},
		{name: "the default route's interface", addrs: []netip.Addr{nodeV4},
			host: Host{Links: []HostLink{up(2, "eth0"), up(3, "bond0"), up(4, "mgmt0", nodeV4)}, DefaultRoutes: []int{3}},
			want: Selection{Default: []Iface{{"bond0", 3}, {"mgmt0", 4}}}},
		{name: "multipath default route", host: Host{Links: []HostLink{up(2, "eth0"), up(3, "eth1")}, DefaultRoutes: []int{3, 2}},
			want: Selection{Default: []Iface{{"eth0", 2}, {"eth1", 3}}}},
		{name: "a bridge holding the address, not its ports", addrs: []netip.Addr{nodeV6},
			host: Host{Links: []HostLink{up(2, "eth0"), up(3, "br0", nodeV6), up(4, "veth1234")}},
			want: Selection{Default: []Iface{{"br0", 3}}}},
		{name: "the IPv6 node address only", addrs: []netip.Addr{nodeV6},
			host: Host{Links: []HostLink{up(2, "eth0", nodeV4), up(3, "eth1", nodeV6)}},
			want: Selection{Default: []Iface{{"eth1", 3}}}},
		{name: "IPv4-mapped node address", addrs: []netip.Addr{a("::ffff:198.51.100.11")},
			host: Host{Links: []HostLink{up(2, "eth0", nodeV4)}},
			want: Selection{Default: []Iface{{"eth0", 2}}}},
		{name: "no carrier: not selected", addrs: []netip.Addr{nodeV4},
			host: Host{Links: []HostLink{{Index: 2, Name: "eth0", Ethernet: true, Addrs: []netip.Addr{nodeV4}}}, DefaultRoutes: []int{2}}},
		{name: "not Ethernet or loopback: not selected", addrs: []netip.Addr{nodeV4, a("127.0.0.1")},
			host: Host{Links: []HostLink{lo, {Index: 5, Name: "wg0", Up: true, Addrs: []netip.Addr{nodeV4}}}, DefaultRoutes: []int{5}}},
		{name: "no node address, no default route", host: Host{Links: []HostLink{up(2, "eth0")}}},
		{name: "named, wherever they are", addrs: []netip.Addr{nodeV4}, named: []string{"eth1", "cali00000000000", "eth0"},
			host: Host{Links: []HostLink{up(2, "eth0", nodeV4), up(3, "eth1"), up(4, "cali00000000000")}},
			want: Selection{Default: []Iface{{"eth0", 2}}, Named: []Iface{{"cali00000000000", 4}, {"eth0", 2}, {"eth1", 3}}}},
		{name: "named but down, missing or loopback", addrs: []netip.Addr{nodeV4}, named: []string{"eth1", "eth9", "lo"},
			host: Host{Links: []HostLink{lo, up(2, "eth0", nodeV4), {Index: 3, Name: "eth1", Ethernet: true}}},
			want: Selection{Default: []Iface{{"eth0", 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Select(tt.host, tt.addrs, tt.named)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Select (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSelectionNames(t *testing.T) {
	s := Selection{Default: []Iface{{"eth0", 2}}, Named: []Iface{{"eth0", 2}, {"vlan20", 7}}}
	if diff := cmp.Diff([]string{"eth0", "vlan20"}, s.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"eth0"}, s.DefaultNames()); diff != "" {
		t.Errorf("DefaultNames (-want +got):\n%s", diff)
	}
	moved := Selection{Default: []Iface{{"eth0", 9}}, Named: s.Named}
	if !s.Equal(s) || s.Equal(moved) {
		t.Errorf("Equal: a selection must equal itself and differ when an interface got a new index")
	}
}
