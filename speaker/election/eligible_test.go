package election

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// node returns a healthy node, its speaker ready, with one (default) interface up and the given
// labels.
func node(name string, labels ...string) Node {
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return Node{Name: name, Labels: l, Alive: true, SpeakerReady: true, Ready: true,
		Interfaces: []string{"eth0"}, DefaultInterfaces: []string{"eth0"}}
}

func with(n Node, f func(*Node)) Node {
	f(&n)
	return n
}

// labelIs selects label sets where key=value.
func labelIs(key, value string) LabelMatcher {
	return func(l map[string]string) bool { return l[key] == value }
}

func TestEligible(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	three := []Node{node("n1", "zone", "a"), node("n2", "zone", "b"), node("n3", "zone", "a")}
	allPools := []Advertisement{{Name: "all", Pools: []string{"pool"}}}
	svc := Service{Key: "ns/web", Labels: map[string]string{"app": "web"}}
	local := func(s Service, nodes ...string) Service {
		s.LocalTraffic = true
		s.ReadyEndpointNodes = nodes
		return s
	}

	tests := []struct {
		name     string
		mode     Mode
		services []Service
		ads      []Advertisement
		nodes    []Node
		want     []string
	}{
		{
			name: "all healthy nodes", mode: Layer2,
			services: []Service{svc}, ads: allPools, nodes: three,
			want: []string{"n1", "n2", "n3"},
		},
		{
			name: "sorted and deduplicated", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n3"), node("n1"), node("n3")},
			want:  []string{"n1", "n3"},
		},
		{
			name: "not alive in memberlist", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.Alive = false })},
			want:  []string{"n1"},
		},
		{
			name: "alive but its speaker not ready", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.SpeakerReady = false })},
			want:  []string{"n1"},
		},
		{
			name: "bgp: alive but its speaker not ready", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.SpeakerReady = false })},
			want:  []string{"n1"},
		},
		{
			name: "not ready", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.Ready = false })},
			want:  []string{"n1"},
		},
		{
			name: "network unavailable", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.NetworkUnavailable = true })},
			want:  []string{"n1"},
		},
		{
			name: "exclusion label with empty value", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), node("n2", ExcludeFromLBLabel, "")},
			want:  []string{"n1"},
		},
		{
			name: "empty node name", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), node("")},
			want:  []string{"n1"},
		},
		{
			name: "advertisement of another pool", mode: Layer2,
			services: []Service{svc},
			ads:      []Advertisement{{Name: "other", Pools: []string{"other-pool"}}},
			nodes:    three,
			want:     nil,
		},
		{
			name: "no services", mode: Layer2,
			ads: allPools, nodes: three,
			want: nil,
		},
		{
			name: "node selector", mode: Layer2,
			services: []Service{svc},
			ads:      []Advertisement{{Name: "zone-a", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")}},
			nodes:    three,
			want:     []string{"n1", "n3"},
		},
		{
			name: "union of advertisements' node selectors", mode: BGP,
			services: []Service{svc},
			ads: []Advertisement{
				{Name: "zone-a", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")},
				{Name: "n2", Pools: []string{"pool"}, Nodes: labelIs("zone", "b")},
			},
			nodes: three,
			want:  []string{"n1", "n2", "n3"},
		},
		{
			name: "service selector does not select the service", mode: Layer2,
			services: []Service{svc},
			ads:      []Advertisement{{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db")}},
			nodes:    three,
			want:     nil,
		},
		{
			name: "service selector picks the advertisement whose node selector applies", mode: Layer2,
			services: []Service{svc},
			ads: []Advertisement{
				{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db"), Nodes: labelIs("zone", "b")},
				{Name: "web", Pools: []string{"pool"}, Services: labelIs("app", "web"), Nodes: labelIs("zone", "a")},
			},
			nodes: three,
			want:  []string{"n1", "n3"},
		},
		{
			name: "layer2 needs an interface up", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.Interfaces, n.DefaultInterfaces = nil, nil })},
			want:  []string{"n1"},
		},
		{
			name: "layer2 without named interfaces needs a default interface up", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{node("n1"), with(node("n2"), func(n *Node) { n.Interfaces, n.DefaultInterfaces = []string{"vlan20"}, nil })},
			want:  []string{"n1"},
		},
		{
			name: "layer2 advertisement interfaces", mode: Layer2,
			services: []Service{svc},
			ads:      []Advertisement{{Name: "vlan", Pools: []string{"pool"}, Interfaces: []string{"vlan10", "vlan20"}}},
			nodes: []Node{
				node("n1"),
				with(node("n2"), func(n *Node) { n.Interfaces = []string{"eth0", "vlan20"} }),
				with(node("n3"), func(n *Node) { n.Interfaces, n.DefaultInterfaces = []string{"vlan10"}, nil }),
			},
			want: []string{"n2", "n3"},
		},
		{
			name: "bgp ignores interfaces", mode: BGP,
			services: []Service{svc},
			ads:      []Advertisement{{Name: "vlan", Pools: []string{"pool"}, Interfaces: []string{"vlan10"}}},
			nodes:    []Node{node("n1"), with(node("n2"), func(n *Node) { n.Interfaces = nil })},
			want:     []string{"n1", "n2"},
		},
		{
			name: "local traffic needs a ready endpoint", mode: Layer2,
			services: []Service{local(svc, "n2", "n3", "not-a-node")}, ads: allPools, nodes: three,
			want: []string{"n2", "n3"},
		},
		{
			name: "local traffic without endpoints", mode: BGP,
			services: []Service{local(svc)}, ads: allPools, nodes: three,
			want: nil,
		},
		{
			name: "cluster traffic ignores endpoints", mode: BGP,
			services: []Service{{Key: "ns/web", ReadyEndpointNodes: []string{"n1"}}}, ads: allPools, nodes: three,
			want: []string{"n1", "n2", "n3"},
		},
		{
			name: "local endpoint on an unhealthy node", mode: Layer2,
			services: []Service{local(svc, "n1", "n2")}, ads: allPools,
			nodes: []Node{with(node("n1"), func(n *Node) { n.Ready = false }), node("n2"), node("n3")},
			want:  []string{"n2"},
		},
		{
			name: "shared IP: intersection of local endpoints", mode: Layer2,
			services: []Service{
				local(Service{Key: "ns/http"}, "n1", "n2"),
				local(Service{Key: "ns/https"}, "n2", "n3"),
			},
			ads: allPools, nodes: three,
			want: []string{"n2"},
		},
		{
			name: "shared IP: local and cluster", mode: BGP,
			services: []Service{
				{Key: "ns/dns-tcp"},
				local(Service{Key: "ns/dns-udp"}, "n1", "n3"),
			},
			ads: allPools, nodes: three,
			want: []string{"n1", "n3"},
		},
		{
			name: "shared IP: disjoint local endpoints", mode: Layer2,
			services: []Service{
				local(Service{Key: "ns/a"}, "n1"),
				local(Service{Key: "ns/b"}, "n2"),
			},
			ads: allPools, nodes: three,
			want: nil,
		},
		{
			name: "shared IP: each service's own advertisement", mode: Layer2,
			services: []Service{
				{Key: "ns/web", Labels: map[string]string{"app": "web"}},
				{Key: "ns/db", Labels: map[string]string{"app": "db"}},
			},
			ads: []Advertisement{
				{Name: "web", Pools: []string{"pool"}, Services: labelIs("app", "web"), Nodes: labelIs("zone", "a")},
				{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db"), Nodes: func(l map[string]string) bool { return l["zone"] != "" }},
			},
			nodes: three,
			want:  []string{"n1", "n3"},
		},
		{
			name: "shared IP: a service no advertisement announces adds no constraint", mode: BGP,
			services: []Service{
				svc,
				local(Service{Key: "ns/unannounced", Labels: map[string]string{"app": "other"}}),
			},
			ads:   []Advertisement{{Name: "web", Pools: []string{"pool"}, Services: labelIs("app", "web")}},
			nodes: three,
			want:  []string{"n1", "n2", "n3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{IP: ip, Pool: "pool", Services: tt.services, Advertisements: tt.ads, Nodes: tt.nodes}
			got := Eligible(tt.mode, in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Eligible(%s) (-want +got):\n%s", tt.mode, diff)
			}
		})
	}
}

func TestLayer2OwnerSharedIP(t *testing.T) {
	// Every Service sharing an IP gets the same owner, because the election never looks at a
	// single Service: whichever subset of the sharing Services a speaker sees first, the owner
	// is the one Owner picks over the same eligible nodes.
	nodes := []Node{node("n1"), node("n2"), node("n3"), node("n4")}
	ads := []Advertisement{{Name: "all", Pools: []string{"pool"}}}
	for _, ip := range ips("203.0.113.0", 64) {
		in := Input{IP: ip, Pool: "pool", Advertisements: ads, Nodes: nodes, Services: []Service{
			{Key: "ns/http"}, {Key: "ns/https"}, {Key: "other/dns"},
		}}
		owner, ok := Layer2Owner(in)
		if !ok {
			t.Fatalf("Layer2Owner(%s) found no owner", ip)
		}
		want, _ := Owner(ip, []string{"n1", "n2", "n3", "n4"})
		if owner != want {
			t.Errorf("Layer2Owner(%s) = %q, want %q", ip, owner, want)
		}
		for i := range in.Services {
			one := in
			one.Services = in.Services[i : i+1]
			if got, _ := Layer2Owner(one); got != owner {
				t.Errorf("Layer2Owner(%s) with only %s = %q, with all = %q", ip, in.Services[i].Key, got, owner)
			}
		}
	}
}

func TestLayer2OwnerLocal(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	in := Input{
		IP: ip, Pool: "pool",
		Advertisements: []Advertisement{{Name: "all", Pools: []string{"pool"}}},
		Nodes:          []Node{node("node-a"), node("node-b"), node("node-c")},
		Services:       []Service{{Key: "ns/web", LocalTraffic: true, ReadyEndpointNodes: []string{"node-a", "node-c"}}},
	}
	owner, ok := Layer2Owner(in)
	want, _ := Owner(ip, []string{"node-a", "node-c"})
	if !ok || owner != want {
		t.Errorf("Layer2Owner = %q, %v; want %q, true", owner, ok, want)
	}

	in.Services[0].ReadyEndpointNodes = nil
	if owner, ok := Layer2Owner(in); ok {
		t.Errorf("Layer2Owner without ready endpoints = %q, want none", owner)
	}
}

func TestBGPAnnouncers(t *testing.T) {
	in := Input{
		IP: netip.MustParseAddr("2001:db8::10"), Pool: "pool",
		Advertisements: []Advertisement{{Name: "all", Pools: []string{"pool"}}},
		Nodes:          []Node{node("n3"), node("n1"), node("n2"), with(node("n4"), func(n *Node) { n.Alive = false })},
		Services:       []Service{{Key: "ns/web"}},
	}
	if diff := cmp.Diff([]string{"n1", "n2", "n3"}, BGPAnnouncers(in)); diff != "" {
		t.Errorf("BGPAnnouncers cluster policy (-want +got):\n%s", diff)
	}
	in.Services[0].LocalTraffic = true
	in.Services[0].ReadyEndpointNodes = []string{"n2", "n4"}
	if diff := cmp.Diff([]string{"n2"}, BGPAnnouncers(in)); diff != "" {
		t.Errorf("BGPAnnouncers local policy (-want +got):\n%s", diff)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Layer2: "layer2", BGP: "bgp", 0: "unknown"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
