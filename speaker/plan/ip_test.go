package plan

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIPPlan(t *testing.T) {
	c := testConfig(t)
	ctx := NewContext(c, "n1", nodes("n1"))
	bgp2 := netip.MustParseAddr("198.51.100.194")
	tests := []struct {
		name string
		ip   netip.Addr
		svcs []Service
		want IPPlan
	}{
		{
			name: "shared layer-2 IP owned here",
			ip:   l2IP,
			svcs: []Service{{Key: "ns/b", IPs: []netip.Addr{l2IP}}, {Key: "ns/a", IPs: []netip.Addr{l2IP}}},
			want: IPPlan{IP: l2IP, L2Owner: "n1", L2Interfaces: []string{"eth0"}, L2: []L2Assignment{
				{Service: "ns/a", IP: l2IP, Interfaces: []string{"eth0"}}, {Service: "ns/b", IP: l2IP, Interfaces: []string{"eth0"}},
			}},
		},
		{
			name: "one Service of a shared IP has no endpoint",
			ip:   l2IP,
			svcs: []Service{{Key: "ns/a", IPs: []netip.Addr{l2IP}}, {Key: "ns/b", IPs: []netip.Addr{l2IP}, NoEndpoints: true}},
			want: IPPlan{IP: l2IP, L2Owner: "n1", L2Interfaces: []string{"eth0"},
				L2:          []L2Assignment{{Service: "ns/a", IP: l2IP, Interfaces: []string{"eth0"}}},
				Unannounced: []Unannounced{{Service: "ns/b", IP: l2IP, Reason: NoEndpointsReason}}},
		},
		{
			name: "BGP route share",
			ip:   bgp2,
			svcs: []Service{{Key: "ns/r", IPs: []netip.Addr{bgp2}}},
			want: IPPlan{IP: bgp2,
				BGP:    []BGPAssignment{{Service: "ns/r", IP: bgp2, Peers: []string{"tor"}}},
				Routes: []PeerRoute{{Peer: "tor", Route: MergeRoute(Route{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: c.BGPAdvertisements[0].Communities, LocalPref: ptr(uint32(200))}, Route{Prefix: netip.MustParsePrefix("198.51.100.192/28")})}}},
		},
		{
			name: "in no pool",
			ip:   netip.MustParseAddr("203.0.113.9"),
			svcs: []Service{{Key: "ns/x"}},
			want: IPPlan{IP: netip.MustParseAddr("203.0.113.9"), Unannounced: []Unannounced{
				{Service: "ns/x", IP: netip.MustParseAddr("203.0.113.9"), Reason: "203.0.113.9 is in no IPAddressPool"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ctx.IP(tt.ip, tt.svcs), netipCmp); diff != "" {
				t.Errorf("IP(%s) (-want +got):\n%s", tt.ip, diff)
			}
		})
	}
}

// Routes of several IPs that aggregate into one prefix become one route, whatever order the IP plans
// come in.
func TestAssembleMergesRoutesOfAPrefix(t *testing.T) {
	c := testConfig(t)
	ctx := NewContext(c, "n1", nodes("n1"))
	a, b := netip.MustParseAddr("198.51.100.193"), netip.MustParseAddr("198.51.100.199")
	pa := ctx.IP(a, []Service{{Key: "ns/a", IPs: []netip.Addr{a}}})
	pb := ctx.IP(b, []Service{{Key: "ns/b", IPs: []netip.Addr{b}}})
	got := Assemble(ctx, []IPPlan{pb, pa})
	want := map[string][]Route{"tor": {MergeRoute(Route{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: c.BGPAdvertisements[0].Communities, LocalPref: ptr(uint32(200))}, Route{Prefix: netip.MustParsePrefix("198.51.100.192/28")})}}
	if diff := cmp.Diff(want, got.Routes, netipCmp); diff != "" {
		t.Errorf("Routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, Assemble(ctx, []IPPlan{pa, pb}), netipCmp); diff != "" {
		t.Errorf("Assemble depends on the order of the IP plans (-b,a +a,b):\n%s", diff)
	}
}
