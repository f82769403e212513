package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
)

func meta(name string, lbls map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "herald-system", Labels: lbls}
}

var netipCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func ptr[T any](v T) *T { return &v }

// testConfig: pool l2 (announced over layer 2 on eth0), pool bgp (advertised to peer tor, aggregated
// to /24 for IPv4 with communities and localPref), pool dark (announced by nothing).
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	s := config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: meta("l2", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119", "2001:db8:1::100/120"}}},
			{ObjectMeta: meta("bgp", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}}},
			{ObjectMeta: meta("dark", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.160/28"}}},
		},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: meta("l2", nil), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}, Interfaces: []string{"eth0"}}},
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{
			{ObjectMeta: meta("bgp", nil), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}, AggregationLength: ptr(int32(28)), Communities: []string{"64512:100"}, LocalPref: ptr(uint32(200))}},
		},
		Peers: []v1beta1.BGPPeer{
			{ObjectMeta: meta("tor", nil), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64512, PeerAddress: "198.51.100.1"}},
			{ObjectMeta: meta("rack-b", nil), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.2",
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "b"}}}}},
		},
	}
	c, err := config.Parse(s)
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return c
}

func nodes(alive ...string) []election.Node {
	var ns []election.Node
	for _, n := range []string{"n1", "n2", "n3"} {
		node := election.Node{Name: n, Ready: true, Interfaces: []string{"eth0"}, DefaultInterfaces: []string{"eth0"}, Labels: map[string]string{"rack": "a"}}
		for _, a := range alive {
			if a == n {
				node.Alive, node.SpeakerReady = true, true
			}
		}
		if n == "n3" {
			node.Labels = map[string]string{"rack": "b"}
		}
		ns = append(ns, node)
	}
	return ns
}

var (
	l2IP  = netip.MustParseAddr("198.51.100.105")
	l2IP6 = netip.MustParseAddr("2001:db8:1::105")
	bgpIP = netip.MustParseAddr("198.51.100.193")
)

func TestLayer2ExactlyOneOwner(t *testing.T) {
	c := testConfig(t)
	svcs := []Service{{Key: "ns/web", IPs: []netip.Addr{l2IP, l2IP6}}, {Key: "ns/dns", IPs: []netip.Addr{l2IP}}}
	for _, alive := range [][]string{{"n1", "n2", "n3"}, {"n2", "n3"}, {"n3"}} {
		owners := map[netip.Addr][]string{}
		for _, self := range []string{"n1", "n2", "n3"} {
			p := Compute(Input{Config: c, Self: self, Nodes: nodes(alive...), Services: svcs})
			for ip, ifaces := range p.L2Owned {
				owners[ip] = append(owners[ip], self)
				if diff := cmp.Diff([]string{"eth0"}, ifaces, netipCmp); diff != "" {
					t.Errorf("interfaces (-want +got):\n%s", diff)
				}
				if p.L2Owners[ip] != self {
					t.Errorf("%s owns %s but L2Owners says %s", self, ip, p.L2Owners[ip])
				}
			}
		}
		for _, ip := range []netip.Addr{l2IP, l2IP6} {
			if len(owners[ip]) != 1 {
				t.Errorf("alive %v: %s answered by %v, want exactly one node", alive, ip, owners[ip])
			}
			for _, o := range owners[ip] {
				if !contains(alive, o) {
					t.Errorf("alive %v: %s owned by dead node %s", alive, ip, o)
				}
			}
		}
	}
}

func TestLayer2AssignmentsListEveryServiceOfASharedIP(t *testing.T) {
	c := testConfig(t)
	svcs := []Service{{Key: "ns/b", IPs: []netip.Addr{l2IP}}, {Key: "ns/a", IPs: []netip.Addr{l2IP}}}
	p := Compute(Input{Config: c, Self: "n1", Nodes: nodes("n1"), Services: svcs})
	want := []L2Assignment{{Service: "ns/a", IP: l2IP, Interfaces: []string{"eth0"}}, {Service: "ns/b", IP: l2IP, Interfaces: []string{"eth0"}}}
	if diff := cmp.Diff(want, p.L2, netipCmp); diff != "" {
		t.Errorf("L2 (-want +got):\n%s", diff)
	}
}

func TestLayer2NeedsTheSelectedInterface(t *testing.T) {
	c := testConfig(t)
	ns := nodes("n1", "n2", "n3")
	for i := range ns {
		ns[i].Interfaces = []string{"eth1"} // the advertisement allows only eth0
	}
	p := Compute(Input{Config: c, Self: "n1", Nodes: ns, Services: []Service{{Key: "ns/web", IPs: []netip.Addr{l2IP}}}})
	if len(p.L2Owned) != 0 {
		t.Errorf("L2Owned = %v, want nothing: no node has eth0", p.L2Owned)
	}
	if len(p.Unannounced) != 1 || p.Unannounced[0].Service != "ns/web" {
		t.Errorf("Unannounced = %+v, want ns/web reported", p.Unannounced)
	}
}

func TestBGPRoutesAndPeers(t *testing.T) {
	c := testConfig(t)
	svcs := []Service{{Key: "ns/api", IPs: []netip.Addr{bgpIP}}}
	tests := []struct {
		name      string
		self      string
		svc       []Service
		wantPeers []string
		want      map[string][]Route
	}{
		{
			name: "rack a node: tor only, aggregated with attributes", self: "n1", svc: svcs,
			wantPeers: []string{"tor"},
			want: map[string][]Route{"tor": {{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: []config.Community{{Value: 64512<<16 | 100}},
				LocalPref: ptr(uint32(200))}}},
		},
		{
			name: "rack b node: both peers", self: "n3", svc: svcs,
			wantPeers: []string{"rack-b", "tor"},
			want: map[string][]Route{"tor": {{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: []config.Community{{Value: 64512<<16 | 100}},
				LocalPref: ptr(uint32(200))}}, "rack-b": {{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: []config.Community{{Value: 64512<<16 | 100}},
				LocalPref: ptr(uint32(200))}}},
		},
		{
			name: "local traffic without an endpoint here: no route", self: "n1",
			svc:       []Service{{Key: "ns/api", IPs: []netip.Addr{bgpIP}, LocalTraffic: true, ReadyEndpointNodes: []string{"n2"}}},
			wantPeers: []string{"tor"},
		},
		{
			name: "local traffic with an endpoint here", self: "n2",
			svc:       []Service{{Key: "ns/api", IPs: []netip.Addr{bgpIP}, LocalTraffic: true, ReadyEndpointNodes: []string{"n2"}}},
			wantPeers: []string{"tor"},
			want: map[string][]Route{"tor": {{Prefix: netip.MustParsePrefix("198.51.100.192/28"), Communities: []config.Community{{Value: 64512<<16 | 100}},
				LocalPref: ptr(uint32(200))}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(Input{Config: c, Self: tc.self, Nodes: nodes("n1", "n2", "n3"), Services: tc.svc})
			var peers []string
			for _, peer := range p.Peers {
				peers = append(peers, peer.Name)
			}
			if diff := cmp.Diff(tc.wantPeers, peers, netipCmp); diff != "" {
				t.Errorf("peers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, p.Routes, netipCmp); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if len(p.L2Owned) != 0 {
				t.Errorf("a BGP-only pool was announced over layer 2: %v", p.L2Owned)
			}
		})
	}
}

func TestUnannounced(t *testing.T) {
	c := testConfig(t)
	svcs := []Service{
		{Key: "ns/dark", IPs: []netip.Addr{netip.MustParseAddr("198.51.100.161")}},
		{Key: "ns/stray", IPs: []netip.Addr{netip.MustParseAddr("198.51.100.250")}},
	}
	p := Compute(Input{Config: c, Self: "n1", Nodes: nodes("n1", "n2", "n3"), Services: svcs})
	want := []Unannounced{
		{Service: "ns/dark", IP: netip.MustParseAddr("198.51.100.161"), Reason: `no L2Advertisement or BGPAdvertisement announces pool "dark" for this Service`},
		{Service: "ns/stray", IP: netip.MustParseAddr("198.51.100.250"), Reason: "198.51.100.250 is in no IPAddressPool"},
	}
	if diff := cmp.Diff(want, p.Unannounced, netipCmp); diff != "" {
		t.Errorf("Unannounced (-want +got):\n%s", diff)
	}
}

// An IP that an advertisement covers but no node may announce is reported with every node's
// reasons, from the same election that decides the owners.
func TestUnannouncedNoEligibleNode(t *testing.T) {
	c := testConfig(t)
	l2 := Service{Key: "ns/web", IPs: []netip.Addr{l2IP}}
	bgp := Service{Key: "ns/api", IPs: []netip.Addr{bgpIP}, LocalTraffic: true, ReadyEndpointNodes: []string{"n3"}}
	notReady := func(ns []election.Node, name string) []election.Node {
		for i := range ns {
			if ns[i].Name == name {
				ns[i].Ready = false
			}
		}
		return ns
	}
	tests := []struct {
		name  string
		nodes []election.Node
		svcs  []Service
		want  []Unannounced
	}{
		{
			name: "layer 2: members missing, interfaces down",
			nodes: func() []election.Node {
				ns := nodes("n1", "n3")
				ns[0].Ready = false
				ns[2].Interfaces = []string{"eth1"}
				return ns
			}(),
			svcs: []Service{l2},
			want: []Unannounced{{Service: "ns/web", IP: l2IP, Reason: `no node is eligible to announce 198.51.100.105 of pool "l2" (layer 2: ` +
				"n1: the Node is not Ready; n2: its speaker is not a live memberlist member; n3: none of the interfaces l2 allows is up on it (interfaces up: eth1))"}},
		},
		{
			name:  "bgp: Local traffic, the node with the endpoint not Ready",
			nodes: notReady(nodes("n1", "n2", "n3"), "n3"),
			svcs:  []Service{bgp},
			want: []Unannounced{{Service: "ns/api", IP: bgpIP, Reason: `no node is eligible to announce 198.51.100.193 of pool "bgp" (BGP: ` +
				"n1, n2: no ready endpoint of ns/api on it (externalTrafficPolicy: Local); n3: the Node is not Ready)"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Config: c, Self: "n1", Nodes: tt.nodes, Services: tt.svcs}
			p := Compute(in)
			if diff := cmp.Diff(tt.want, p.Unannounced, netipCmp); diff != "" {
				t.Errorf("Unannounced (-want +got):\n%s", diff)
			}
			for _, e := range Elections(in) {
				if len(e.Layer2.Eligible())+len(e.BGP.Eligible()) != 0 {
					t.Errorf("Elections(%s): eligible nodes %v %v, want none", e.IP, e.Layer2.Eligible(), e.BGP.Eligible())
				}
			}
		})
	}
}

func TestElections(t *testing.T) {
	c := testConfig(t)
	stray := netip.MustParseAddr("198.51.100.250")
	in := Input{Config: c, Self: "n1", Nodes: nodes("n1", "n2", "n3"), Services: []Service{
		{Key: "ns/web", IPs: []netip.Addr{l2IP, l2IP6}},
		{Key: "ns/dns", IPs: []netip.Addr{l2IP}},
		{Key: "ns/api", IPs: []netip.Addr{bgpIP}},
		{Key: "ns/stray", IPs: []netip.Addr{stray}},
		{Key: "ns/empty", IPs: []netip.Addr{netip.MustParseAddr("198.51.100.106")}, NoEndpoints: true},
	}}
	p := Compute(in)
	type summary struct {
		IP                string
		Pool              string
		Services          []string
		Owner             string
		L2Covered, L2Elig []string
		BGPElig           []string
	}
	var got []summary
	for _, e := range Elections(in) {
		got = append(got, summary{IP: e.IP.String(), Pool: e.Pool, Services: e.Services, Owner: e.Layer2Owner,
			L2Covered: e.Layer2.Announced, L2Elig: e.Layer2.Eligible(), BGPElig: e.BGP.Eligible()})
	}
	all := []string{"n1", "n2", "n3"}
	want := []summary{
		{IP: "198.51.100.105", Pool: "l2", Services: []string{"ns/dns", "ns/web"}, Owner: p.L2Owners[l2IP], L2Covered: []string{"ns/dns", "ns/web"}, L2Elig: all},
		{IP: "198.51.100.193", Pool: "bgp", Services: []string{"ns/api"}, BGPElig: all},
		{IP: "198.51.100.250", Services: []string{"ns/stray"}},
		{IP: "2001:db8:1::105", Pool: "l2", Services: []string{"ns/web"}, Owner: p.L2Owners[l2IP6], L2Covered: []string{"ns/web"}, L2Elig: all},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Elections (-want +got):\n%s", diff)
	}
	if want[0].Owner == "" || want[3].Owner == "" {
		t.Errorf("Compute elected no owner: %v", p.L2Owners)
	}
}

func TestNilConfigAnnouncesNothing(t *testing.T) {
	p := Compute(Input{Self: "n1", Nodes: nodes("n1"), Services: []Service{{Key: "ns/a", IPs: []netip.Addr{l2IP}}}})
	if len(p.L2Owned)+len(p.Routes)+len(p.Peers) != 0 {
		t.Errorf("plan without config = %+v, want empty", p)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A Service without any usable endpoint is not announced, in either mode and whatever its traffic
// policy; an IP it shares with a Service that has endpoints still is, for that Service.
func TestServiceWithoutEndpointsIsNotAnnounced(t *testing.T) {
	c := testConfig(t)
	shared := netip.MustParseAddr("198.51.100.101")
	tests := []struct {
		name          string
		svcs          []Service
		wantL2, wantR bool
		wantUnann     []Unannounced
	}{
		{
			name:      "layer 2, cluster policy, no endpoint",
			svcs:      []Service{{Key: "ns/a", IPs: []netip.Addr{l2IP}, NoEndpoints: true}},
			wantUnann: []Unannounced{{Service: "ns/a", IP: l2IP, Reason: NoEndpointsReason}},
		},
		{
			name:      "bgp, cluster policy, no endpoint",
			svcs:      []Service{{Key: "ns/b", IPs: []netip.Addr{bgpIP}, NoEndpoints: true}},
			wantUnann: []Unannounced{{Service: "ns/b", IP: bgpIP, Reason: NoEndpointsReason}},
		},
		{
			name:   "layer 2 with endpoints",
			svcs:   []Service{{Key: "ns/a", IPs: []netip.Addr{l2IP}}},
			wantL2: true,
		},
		{
			name:  "bgp with endpoints",
			svcs:  []Service{{Key: "ns/b", IPs: []netip.Addr{bgpIP}}},
			wantR: true,
		},
		{
			name: "shared IP: one Service without endpoints, one with",
			svcs: []Service{
				{Key: "ns/empty", IPs: []netip.Addr{shared}, NoEndpoints: true},
				{Key: "ns/full", IPs: []netip.Addr{shared}},
			},
			wantL2:    true,
			wantUnann: []Unannounced{{Service: "ns/empty", IP: shared, Reason: NoEndpointsReason}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l2, routes bool
			for _, self := range []string{"n1", "n2", "n3"} {
				p := Compute(Input{Config: c, Self: self, Nodes: nodes("n1", "n2", "n3"), Services: tt.svcs})
				l2 = l2 || len(p.L2Owned) > 0
				routes = routes || len(p.Routes) > 0
				if diff := cmp.Diff(tt.wantUnann, p.Unannounced, netipCmp); diff != "" {
					t.Errorf("%s: Unannounced (-want +got):\n%s", self, diff)
				}
			}
			if l2 != tt.wantL2 || routes != tt.wantR {
				t.Errorf("announced over layer 2 by some node: %v, advertised over BGP: %v; want %v, %v", l2, routes, tt.wantL2, tt.wantR)
			}
		})
	}
}

// TestMergeRoute: the one merge rule of a prefix advertised to one peer by several
// advertisements: communities united, the highest localPref wins; the order does not matter.
func TestMergeRoute(t *testing.T) {
	p := netip.MustParsePrefix("198.51.100.0/24")
	c1, c2 := config.Community{Value: 1}, config.Community{Value: 64512<<16 | 7}
	large := config.Community{Large: true, LargeValue: [3]uint32{64512, 1, 2}}
	tests := []struct {
		name string
		a, b Route
		want Route
	}{
		{"communities united, sorted, once each",
			Route{Prefix: p, Communities: []config.Community{c2, c1}}, Route{Prefix: p, Communities: []config.Community{large, c1}},
			Route{Prefix: p, Communities: []config.Community{c1, c2, large}}},
		{"highest localPref wins", Route{Prefix: p, LocalPref: ptr(uint32(50))}, Route{Prefix: p, LocalPref: ptr(uint32(200))},
			Route{Prefix: p, LocalPref: ptr(uint32(200))}},
		{"a set localPref beats none", Route{Prefix: p}, Route{Prefix: p, LocalPref: ptr(uint32(0))},
			Route{Prefix: p, LocalPref: ptr(uint32(0))}},
		{"nothing set", Route{Prefix: p}, Route{Prefix: p}, Route{Prefix: p}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, MergeRoute(tc.a, tc.b), netipCmp); diff != "" {
				t.Errorf("MergeRoute(a, b) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, MergeRoute(tc.b, tc.a), netipCmp); diff != "" {
				t.Errorf("MergeRoute(b, a) (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBGPRoutesMergePerPeer: two advertisements of one pool reach the same peer with different
// communities; each peer's table holds one route per prefix, merged by MergeRoute, and a peer
// named by one advertisement only gets that advertisement's attributes.
func TestBGPRoutesMergePerPeer(t *testing.T) {
	s := config.Snapshot{
		Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("bgp", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{
			{ObjectMeta: meta("to-both", nil), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}, Peers: []string{"tor", "edge"},
				Communities: []string{"64512:1"}, LocalPref: ptr(uint32(150))}},
			{ObjectMeta: meta("to-tor", nil), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}, Peers: []string{"tor"},
				Communities: []string{"64512:2", "64512:1"}, LocalPref: ptr(uint32(150))}},
			{ObjectMeta: meta("rack-b-only", nil), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}, Peers: []string{"edge"},
				Communities: []string{"64512:3"}, NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "b"}}}}},
		},
		Peers: []v1beta1.BGPPeer{
			{ObjectMeta: meta("tor", nil), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64512, PeerAddress: "198.51.100.1"}},
			{ObjectMeta: meta("edge", nil), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.2"}},
		},
	}
	c, err := config.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	host := netip.MustParsePrefix("198.51.100.193/32")
	comm := func(vs ...uint32) []config.Community {
		var out []config.Community
		for _, v := range vs {
			out = append(out, config.Community{Value: 64512<<16 | v})
		}
		return out
	}
	svcs := []Service{{Key: "ns/api", IPs: []netip.Addr{bgpIP}}}
	for _, tc := range []struct {
		self string
		want map[string][]Route
	}{
		{"n1", map[string][]Route{
			"tor":  {{Prefix: host, Communities: comm(1, 2), LocalPref: ptr(uint32(150))}},
			"edge": {{Prefix: host, Communities: comm(1), LocalPref: ptr(uint32(150))}},
		}},
		{"n3", map[string][]Route{
			"tor":  {{Prefix: host, Communities: comm(1, 2), LocalPref: ptr(uint32(150))}},
			"edge": {{Prefix: host, Communities: comm(1, 3), LocalPref: ptr(uint32(150))}},
		}},
	} {
		p := Compute(Input{Config: c, Self: tc.self, Nodes: nodes("n1", "n2", "n3"), Services: svcs})
		if diff := cmp.Diff(tc.want, p.Routes, netipCmp); diff != "" {
			t.Errorf("%s: routes (-want +got):\n%s", tc.self, diff)
		}
	}
}

// TestBGPElsewhere: a node knows which prefixes other nodes advertise, so that it can hand a
// prefix over (make-before-break) rather than withdraw the only route.
func TestBGPElsewhere(t *testing.T) {
	c := testConfig(t)
	agg := netip.MustParsePrefix("198.51.100.192/28")
	local := func(nodes ...string) []Service {
		return []Service{{Key: "ns/api", IPs: []netip.Addr{bgpIP}, LocalTraffic: true, ReadyEndpointNodes: nodes}}
	}
	for _, tc := range []struct {
		name string
		self string
		svcs []Service
		want map[netip.Prefix]bool
	}{
		{"endpoint here and on n2", "n1", local("n1", "n2"), map[netip.Prefix]bool{agg: true}},
		{"endpoint only here", "n1", local("n1"), map[netip.Prefix]bool{}},
		{"endpoint moved away from here", "n1", local("n2"), map[netip.Prefix]bool{agg: true}},
		{"nobody announces", "n1", local(), map[netip.Prefix]bool{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(Input{Config: c, Self: tc.self, Nodes: nodes("n1", "n2", "n3"), Services: tc.svcs})
			if diff := cmp.Diff(tc.want, p.BGPElsewhere, netipCmp); diff != "" {
				t.Errorf("BGPElsewhere (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLayer2WithoutNamedInterfacesUsesTheDefaultOnes: an advertisement that names no interface
// answers on the node's default interfaces only, not on the interfaces that other advertisements
// name; one that names interfaces answers on those.
func TestLayer2WithoutNamedInterfacesUsesTheDefaultOnes(t *testing.T) {
	s := config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: meta("any", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100/30"}}},
			{ObjectMeta: meta("vlan", nil), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.200/30"}}},
		},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: meta("any", nil), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"any"}}},
			{ObjectMeta: meta("vlan", nil), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"vlan"}, Interfaces: []string{"vlan20"}}},
		},
	}
	c, err := config.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	self := election.Node{Name: "n1", Alive: true, SpeakerReady: true, Ready: true,
		Interfaces: []string{"eth0", "vlan20"}, DefaultInterfaces: []string{"eth0"}}
	anyIP, vlanIP := netip.MustParseAddr("198.51.100.101"), netip.MustParseAddr("198.51.100.201")
	p := Compute(Input{Config: c, Self: "n1", Nodes: []election.Node{self}, Services: []Service{
		{Key: "ns/any", IPs: []netip.Addr{anyIP}}, {Key: "ns/vlan", IPs: []netip.Addr{vlanIP}},
	}})
	want := map[netip.Addr][]string{anyIP: {"eth0"}, vlanIP: {"vlan20"}}
	if diff := cmp.Diff(want, p.L2Owned, netipCmp); diff != "" {
		t.Errorf("L2Owned (-want +got):\n%s", diff)
	}
}

// TestSpeakerNotReadyIsNotElected: a live speaker that has not said it is ready gets no IP, and
// the others take them all.
func TestSpeakerNotReadyIsNotElected(t *testing.T) {
	c := testConfig(t)
	ns := nodes("n1", "n2", "n3")
	ns[0].SpeakerReady = false
	var svcs []Service
	for i := range 20 {
		svcs = append(svcs, Service{Key: fmt.Sprintf("ns/s%d", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)})}})
	}
	p := Compute(Input{Config: c, Self: "n1", Nodes: ns, Services: svcs})
	if len(p.L2Owned) != 0 {
		t.Errorf("a speaker that is not ready owns %v", p.L2Owned)
	}
	if len(p.L2Owners) != 20 {
		t.Fatalf("%d of 20 IPs have an owner, want all", len(p.L2Owners))
	}
	for ip, owner := range p.L2Owners {
		if owner == "n1" {
			t.Errorf("%s elected to n1, whose speaker is not ready", ip)
		}
	}
}
