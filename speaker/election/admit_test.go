package election

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
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

// TestLayer2AdmissionIsAdmitsOwner: on random clusters (selectors, interfaces, local traffic,
// shared IPs, duplicate names), Layer2Admission is exactly the Admission of Admit(Layer2) for the
// Owner among the admitted nodes.
func TestLayer2AdmissionIsAdmitsOwner(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	for i := range 2000 {
		var nodes []Node
		for range rng.IntN(8) {
			n := node(pick("n1", "n2", "n3", "n4", "n5", "n6"), "zone", pick("a", "b"))
			n.Alive, n.SpeakerReady = rng.IntN(6) != 0, rng.IntN(6) != 0
			switch rng.IntN(4) {
			case 0:
				n.Interfaces, n.DefaultInterfaces = []string{"eth1"}, nil
			case 1:
				n.Interfaces, n.DefaultInterfaces = nil, nil
			}
			nodes = append(nodes, n)
		}
		var ads []Advertisement
		for range 1 + rng.IntN(3) {
			ad := Advertisement{Name: pick("a", "b", "c"), Pools: []string{pick("pool", "other")}}
			if rng.IntN(2) == 0 {
				ad.Nodes = labelIs("zone", pick("a", "b"))
			}
			if rng.IntN(3) == 0 {
				ad.Services = labelIs("app", pick("web", "db"))
			}
			if rng.IntN(3) == 0 {
				ad.Interfaces = []string{pick("eth0", "eth1")}
			}
			ads = append(ads, ad)
		}
		var svcs []Service
		for range 1 + rng.IntN(2) {
			s := Service{Key: "ns/" + pick("web", "db"), Labels: map[string]string{"app": pick("web", "db")}}
			if rng.IntN(3) == 0 {
				s.LocalTraffic, s.ReadyEndpointNodes = true, []string{pick("n1", "n2", "n3"), pick("n4", "n5", "n6")}
			}
			svcs = append(svcs, s)
		}
		in := Input{IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))}), Pool: "pool", Services: svcs, Advertisements: ads, Nodes: nodes}
		adm := Admit(Layer2, in)
		var names []string
		for _, a := range adm {
			names = append(names, a.Node)
		}
		var want *Admission
		if owner, ok := Owner(in.IP, names); ok {
			want = &adm[slices.IndexFunc(adm, func(a Admission) bool { return a.Node == owner })]
		}
		var got *Admission
		if a, ok := Layer2Admission(in); ok {
			got = &a
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("case %d: Layer2Admission differs from Admit's owner (-want +got):\n%s\ninput: %+v", i, diff, in)
		}
	}
}

// TestAdmissionAllocationsDoNotGrowWithNodes: the speaker elects every IP at each full
// computation, so judging a node allocates nothing, whether it is admitted or refused (dead, not
// selected): the allocations of one layer-2 election do not grow with the nodes (they grew by
// one per refused node).
func TestAdmissionAllocationsDoNotGrowWithNodes(t *testing.T) {
	allocs := func(n int) float64 {
		in := Input{IP: netip.MustParseAddr("192.0.2.10"), Pool: "pool", Services: []Service{{Key: "ns/web"}},
			Advertisements: []Advertisement{{Name: "a", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")}}}
		for i := range n {
			nd := node(fmt.Sprintf("n%d", i), "zone", []string{"a", "b"}[i%2])
			nd.Alive = i%3 != 1
			in.Nodes = append(in.Nodes, nd)
		}
		return testing.AllocsPerRun(20, func() {
			if _, ok := Layer2Admission(in); !ok {
				t.Fatal("no owner")
			}
		})
	}
	few, many := allocs(3), allocs(60)
	t.Logf("allocations of one layer-2 election: %.0f at 3 nodes, %.0f at 60", few, many)
	if many > few+2 {
		t.Errorf("an election allocates %.0f times at 60 nodes and %.0f at 3: judging nodes allocates", many, few)
	}
}

// TestRefusedIsJudgeGivingAReason: on random nodes and constraints, refused says exactly whether
// judge gives a reason, in both modes.
func TestRefusedIsJudgeGivingAReason(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	for i := range 5000 {
		n := node(pick("n1", "n2", "n3"), "zone", pick("a", "b"))
		n.Alive, n.SpeakerReady, n.Ready = rng.IntN(5) != 0, rng.IntN(5) != 0, rng.IntN(5) != 0
		n.NetworkUnavailable = rng.IntN(5) == 0
		if rng.IntN(5) == 0 {
			n.Labels[ExcludeFromLBLabel] = ""
		}
		switch rng.IntN(4) {
		case 0:
			n.Interfaces, n.DefaultInterfaces = []string{"eth1"}, nil
		case 1:
			n.Interfaces, n.DefaultInterfaces = nil, nil
		}
		var ads []Advertisement
		for range rng.IntN(3) {
			ad := Advertisement{Name: pick("a", "b"), Pools: []string{"pool"}}
			if rng.IntN(2) == 0 {
				ad.Nodes = labelIs("zone", pick("a", "b"))
			}
			if rng.IntN(3) == 0 {
				ad.Interfaces = []string{pick("eth0", "eth1")}
			}
			ads = append(ads, ad)
		}
		var svcs []Service
		for range 1 + rng.IntN(2) {
			s := Service{Key: "ns/" + pick("web", "db")}
			if rng.IntN(3) == 0 {
				s.LocalTraffic, s.ReadyEndpointNodes = true, []string{pick("n1", "n2", "n3")}
			}
			svcs = append(svcs, s)
		}
		constraints, _, _ := constraintsOf(Input{Pool: "pool", Services: svcs, Advertisements: ads}, false)
		for _, mode := range []Mode{Layer2, BGP} {
			want := len(judge(mode, &n, constraints, false)) > 0
			if got := refused(mode, &n, constraints); got != want {
				t.Fatalf("case %d, %v: refused = %v, judge gives reasons %v\nnode %+v\nads %+v\nservices %+v",
					i, mode, got, judge(mode, &n, constraints, true), n, ads, svcs)
			}
		}
	}
}
