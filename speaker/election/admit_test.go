package election

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAdmit: every eligible node comes with exactly the advertisements that admitted it, so
// callers never evaluate a selector again.
func TestAdmit(t *testing.T) {
	web := Service{Key: "ns/web", Labels: map[string]string{"app": "web"}}
	db := Service{Key: "ns/db", Labels: map[string]string{"app": "db"}}
	nodes := []Node{node("n1", "zone", "a"), node("n2", "zone", "b"),
		with(node("n3", "zone", "a"), func(n *Node) { n.Interfaces = []string{"eth1"} })}
	tests := []struct {
		name     string
		mode     Mode
		services []Service
		ads      []Advertisement
		want     []Admission
	}{{
		name: "node selectors decide which advertisements admit a node", mode: BGP, services: []Service{web},
		ads: []Advertisement{
			{Name: "all", Pools: []string{"pool"}},
			{Name: "zone-a", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")},
			{Name: "other-pool", Pools: []string{"other"}},
		},
		want: []Admission{
			{Node: "n1", Advertisements: []string{"all", "zone-a"}},
			{Node: "n2", Advertisements: []string{"all"}},
			{Node: "n3", Advertisements: []string{"all", "zone-a"}},
		},
	}, {
		name: "an advertisement selecting none of the IP's Services admits nobody", mode: BGP, services: []Service{web},
		ads: []Advertisement{
			{Name: "web", Pools: []string{"pool"}, Services: labelIs("app", "web")},
			{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db")},
		},
		want: []Admission{
			{Node: "n1", Advertisements: []string{"web"}},
			{Node: "n2", Advertisements: []string{"web"}},
			{Node: "n3", Advertisements: []string{"web"}},
		},
	}, {
		name: "shared IP: each Service's advertisement counts", mode: BGP, services: []Service{web, db},
		ads: []Advertisement{
			{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db")},
			{Name: "web-zone-a", Pools: []string{"pool"}, Services: labelIs("app", "web"), Nodes: labelIs("zone", "a")},
		},
		want: []Admission{
			{Node: "n1", Advertisements: []string{"db", "web-zone-a"}},
			{Node: "n3", Advertisements: []string{"db", "web-zone-a"}},
		},
	}, {
		name: "layer 2: an advertisement admits a node only with one of its interfaces up", mode: Layer2, services: []Service{web},
		ads: []Advertisement{
			{Name: "eth0", Pools: []string{"pool"}, Interfaces: []string{"eth0"}},
			{Name: "any", Pools: []string{"pool"}},
		},
		want: []Admission{
			{Node: "n1", Advertisements: []string{"eth0", "any"}},
			{Node: "n2", Advertisements: []string{"eth0", "any"}},
			{Node: "n3", Advertisements: []string{"any"}},
		},
	}, {
		name: "advertisements of the same name are listed once", mode: BGP, services: []Service{web},
		ads: []Advertisement{
			{Name: "dup", Pools: []string{"pool"}},
			{Name: "dup", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")},
		},
		want: []Admission{
			{Node: "n1", Advertisements: []string{"dup"}},
			{Node: "n2", Advertisements: []string{"dup"}},
			{Node: "n3", Advertisements: []string{"dup"}},
		},
	}, {
		name: "local traffic: only nodes with an endpoint", mode: BGP,
		services: []Service{{Key: "ns/web", LocalTraffic: true, ReadyEndpointNodes: []string{"n2"}}},
		ads:      []Advertisement{{Name: "all", Pools: []string{"pool"}}},
		want:     []Admission{{Node: "n2", Advertisements: []string{"all"}}},
	}, {
		name: "nothing announced", mode: BGP, services: []Service{web},
		ads: []Advertisement{{Name: "db", Pools: []string{"pool"}, Services: labelIs("app", "db")}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{IP: netip.MustParseAddr("192.0.2.10"), Pool: "pool", Services: tt.services, Advertisements: tt.ads, Nodes: nodes}
			if diff := cmp.Diff(tt.want, Admit(tt.mode, in)); diff != "" {
				t.Errorf("Admit(%s) (-want +got):\n%s", tt.mode, diff)
			}
			var names []string
			for _, a := range tt.want {
				names = append(names, a.Node)
			}
			if diff := cmp.Diff(names, Eligible(tt.mode, in)); diff != "" {
				t.Errorf("Eligible disagrees with Admit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayer2Admission(t *testing.T) {
	in := Input{IP: netip.MustParseAddr("192.0.2.10"), Pool: "pool", Services: []Service{{Key: "ns/web"}},
		Advertisements: []Advertisement{{Name: "a", Pools: []string{"pool"}}, {Name: "b", Pools: []string{"pool"}, Nodes: labelIs("zone", "b")}},
		Nodes:          []Node{node("n1", "zone", "a"), node("n2", "zone", "b"), node("n3", "zone", "b")}}
	owner, ok := Layer2Owner(in)
	got, ok2 := Layer2Admission(in)
	if !ok || !ok2 || got.Node != owner {
		t.Fatalf("Layer2Admission = %+v, %v; want the owner %q of Layer2Owner", got, ok2, owner)
	}
	want := []string{"a"}
	if owner != "n1" {
		want = []string{"a", "b"}
	}
	if diff := cmp.Diff(want, got.Advertisements); diff != "" {
		t.Errorf("advertisements of owner %s (-want +got):\n%s", owner, diff)
	}
	in.Nodes = nil
	if a, ok := Layer2Admission(in); ok {
		t.Errorf("Layer2Admission without nodes = %+v, want none", a)
	}
}
