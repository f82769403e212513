package election

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExplain(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	svc := Service{Key: "ns/web", Labels: map[string]string{"app": "web"}}
	allPools := []Advertisement{{Name: "all", Pools: []string{"pool"}}}
	tests := []struct {
		name     string
		mode     Mode
		services []Service
		ads      []Advertisement
		nodes    []Node
		want     Explanation
	}{
		{
			name: "every node eligible", mode: Layer2,
			services: []Service{svc}, ads: allPools, nodes: []Node{node("n2"), node("n1")},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{{Node: "n1"}, {Node: "n2"}}},
		},
		{
			name: "node facts, every cause listed", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{
				with(node("n1", ExcludeFromLBLabel, ""), func(n *Node) { n.Alive, n.Ready, n.NetworkUnavailable = false, false, true }),
				with(node("n2"), func(n *Node) { n.Ready = false }),
				node("n3"),
			},
			want: Explanation{Mode: BGP, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{Cause: CauseNotMember}, {Cause: CauseNodeNotReady}, {Cause: CauseNetworkUnavailable}, {Cause: CauseExcluded}}},
				{Node: "n2", Reasons: []Reason{{Cause: CauseNodeNotReady}}},
				{Node: "n3"},
			}},
		},
		{
			name: "no advertisement covers the pool", mode: Layer2,
			services: []Service{svc}, ads: []Advertisement{{Name: "other", Pools: []string{"other"}}}, nodes: []Node{node("n1")},
			want: Explanation{Mode: Layer2, NotCovered: []string{"ns/web"}},
		},
		{
			name: "service selector: one Service covered, one not", mode: BGP,
			services: []Service{svc, {Key: "ns/db", Labels: map[string]string{"app": "db"}}},
			ads:      []Advertisement{{Name: "web", Pools: []string{"pool"}, Services: labelIs("app", "web")}},
			nodes:    []Node{node("n1")},
			want:     Explanation{Mode: BGP, Announced: []string{"ns/web"}, NotCovered: []string{"ns/db"}, Nodes: []NodeVerdict{{Node: "n1"}}},
		},
		{
			name: "not selected, names the advertisements", mode: Layer2,
			services: []Service{svc},
			ads: []Advertisement{
				{Name: "zone-b", Pools: []string{"pool"}, Nodes: labelIs("zone", "b")},
				{Name: "zone-a", Pools: []string{"pool"}, Nodes: labelIs("zone", "a")},
			},
			nodes: []Node{node("n1", "zone", "a"), node("n2", "zone", "c")},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1"},
				{Node: "n2", Reasons: []Reason{{Cause: CauseNotSelected, Service: "ns/web", Advertisements: []string{"zone-a", "zone-b"}}}},
			}},
		},
		{
			name: "local traffic without an endpoint on the node", mode: BGP,
			services: []Service{{Key: "ns/web", LocalTraffic: true, ReadyEndpointNodes: []string{"n1"}}},
			ads:      allPools, nodes: []Node{node("n1"), node("n2")},
			want: Explanation{Mode: BGP, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1"},
				{Node: "n2", Reasons: []Reason{{Cause: CauseNoLocalEndpoint, Service: "ns/web"}}},
			}},
		},
		{
			name: "a member whose speaker does not say it can answer", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{with(node("n1"), func(n *Node) { n.SpeakerReady = false })},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{Cause: CauseSpeakerNotReady}}},
			}},
		},
		{
			name: "layer 2: no interface up", mode: Layer2,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{with(node("n1"), func(n *Node) { n.Interfaces, n.DefaultInterfaces = nil, nil })},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{Cause: CauseNoInterface, Service: "ns/web", Advertisements: []string{"all"}}}},
			}},
		},
		{
			name: "layer 2: interfaces the advertisements allow are down", mode: Layer2,
			services: []Service{svc},
			ads: []Advertisement{
				{Name: "vlans", Pools: []string{"pool"}, Interfaces: []string{"vlan20", "vlan10"}},
				{Name: "bond", Pools: []string{"pool"}, Interfaces: []string{"bond0"}},
				{Name: "elsewhere", Pools: []string{"pool"}, Nodes: labelIs("zone", "b"), Interfaces: []string{"eth0"}},
			},
			nodes: []Node{node("n1")},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{
					Cause: CauseNoInterface, Service: "ns/web", Advertisements: []string{"bond", "vlans"},
					Interfaces: []string{"eth0"}, Allowed: []string{"bond0", "vlan10", "vlan20"},
				}}},
			}},
		},
		{
			name: "bgp ignores interfaces", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{with(node("n1"), func(n *Node) { n.Interfaces, n.DefaultInterfaces = nil, nil })},
			want:  Explanation{Mode: BGP, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{{Node: "n1"}}},
		},
		{
			name: "shared IP: a reason per Service", mode: Layer2,
			services: []Service{
				{Key: "ns/a", LocalTraffic: true, ReadyEndpointNodes: []string{"n2"}},
				{Key: "ns/b", LocalTraffic: true},
			},
			ads: allPools, nodes: []Node{node("n1"), node("n2")},
			want: Explanation{Mode: Layer2, Announced: []string{"ns/a", "ns/b"}, Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{Cause: CauseNoLocalEndpoint, Service: "ns/a"}, {Cause: CauseNoLocalEndpoint, Service: "ns/b"}}},
				{Node: "n2", Reasons: []Reason{{Cause: CauseNoLocalEndpoint, Service: "ns/b"}}},
			}},
		},
		{
			name: "duplicate node names: eligible when a copy is", mode: BGP,
			services: []Service{svc}, ads: allPools,
			nodes: []Node{with(node("n1"), func(n *Node) { n.Alive = false }), node("n1"), node("")},
			want:  Explanation{Mode: BGP, Announced: []string{"ns/web"}, Nodes: []NodeVerdict{{Node: "n1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{IP: ip, Pool: "pool", Services: tt.services, Advertisements: tt.ads, Nodes: tt.nodes}
			got := Explain(tt.mode, in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Explain(%s) (-want +got):\n%s", tt.mode, diff)
			}
			if diff := cmp.Diff(Eligible(tt.mode, in), got.Eligible()); diff != "" {
				t.Errorf("Explain(%s).Eligible() differs from Eligible (-Eligible +Explain):\n%s", tt.mode, diff)
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	tests := []struct {
		name   string
		reason Reason
		want   string
	}{
		{"member", Reason{Cause: CauseNotMember}, "its speaker is not a live memberlist member"},
		{"ready", Reason{Cause: CauseNodeNotReady}, "the Node is not Ready"},
		{"network", Reason{Cause: CauseNetworkUnavailable}, "the Node is NetworkUnavailable"},
		{"excluded", Reason{Cause: CauseExcluded}, "the Node has the label node.kubernetes.io/exclude-from-external-load-balancers"},
		{"local", Reason{Cause: CauseNoLocalEndpoint, Service: "ns/web"}, "no ready endpoint of ns/web on it (externalTrafficPolicy: Local)"},
		{"selected", Reason{Cause: CauseNotSelected, Service: "ns/web", Advertisements: []string{"a", "b"}}, "not selected by the nodeSelectors of a, b (announcing ns/web)"},
		{"no interface", Reason{Cause: CauseNoInterface, Service: "ns/web", Advertisements: []string{"all"}}, "no interface to answer on (no interface up)"},
		{"interfaces down", Reason{Cause: CauseNoInterface, Advertisements: []string{"vlans"}, Interfaces: []string{"eth0"}, Allowed: []string{"vlan10"}},
			"none of the interfaces vlans allows is up on it (interfaces up: eth0)"},
		{"unknown", Reason{Cause: "Other"}, "Other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.reason.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSpeakerOnly(t *testing.T) {
	var got []Cause
	for _, c := range []Cause{CauseNotMember, CauseNodeNotReady, CauseNetworkUnavailable, CauseExcluded, CauseNoLocalEndpoint, CauseNotSelected, CauseNoInterface} {
		if c.SpeakerOnly() {
			got = append(got, c)
		}
	}
	if diff := cmp.Diff([]Cause{CauseNotMember, CauseNoInterface}, got); diff != "" {
		t.Errorf("speaker-only causes (-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	notReady := func(name string) NodeVerdict {
		return NodeVerdict{Node: name, Reasons: []Reason{{Cause: CauseNodeNotReady}}}
	}
	many := make([]NodeVerdict, 0, 6)
	for i := range 6 {
		many = append(many, notReady(fmt.Sprintf("n%d", i)))
	}
	tests := []struct {
		name string
		e    Explanation
		want string
	}{
		{"an eligible node", Explanation{Nodes: []NodeVerdict{notReady("n1"), {Node: "n2"}}}, ""},
		{"no node at all", Explanation{}, "no node"},
		{
			"grouped, most common first",
			Explanation{Nodes: []NodeVerdict{
				{Node: "n1", Reasons: []Reason{{Cause: CauseNotMember}, {Cause: CauseNodeNotReady}}},
				notReady("n2"), notReady("n3"),
			}},
			"n2, n3: the Node is not Ready; n1: its speaker is not a live memberlist member and the Node is not Ready",
		},
		{"long list cut", Explanation{Nodes: many}, "n0, n1, n2, n3 and 2 more: the Node is not Ready"},
		{
			"many groups cut",
			Explanation{Nodes: []NodeVerdict{
				notReady("a"),
				{Node: "b", Reasons: []Reason{{Cause: CauseNotMember}}},
				{Node: "c", Reasons: []Reason{{Cause: CauseExcluded}}},
				{Node: "d", Reasons: []Reason{{Cause: CauseNetworkUnavailable}}},
				{Node: "e", Reasons: []Reason{{Cause: CauseNoLocalEndpoint, Service: "ns/x"}}},
				{Node: "f", Reasons: []Reason{{Cause: CauseNoLocalEndpoint, Service: "ns/y"}}},
			}},
			"a: the Node is not Ready; b: its speaker is not a live memberlist member; c: the Node has the label node.kubernetes.io/exclude-from-external-load-balancers; " +
				"d: the Node is NetworkUnavailable; 2 more node(s) for other reasons",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Summary(); got != tt.want {
				t.Errorf("Summary() =\n %q\nwant\n %q", got, tt.want)
			}
		})
	}
}

// TestExplainAgreesWithEligible checks, over random inputs, that the detailed election (Explain)
// and the fast one (Eligible) agree, and that Explain gives a reason to every other node.
func TestExplainAgreesWithEligible(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	labelSets := []map[string]string{nil, {"zone": "a"}, {"zone": "b"}, {ExcludeFromLBLabel: ""}, {"app": "web"}}
	matchers := []LabelMatcher{nil, labelIs("zone", "a"), labelIs("zone", "b"), labelIs("app", "web")}
	ifaces := [][]string{nil, {"eth0"}, {"eth0", "vlan10"}, {"vlan20"}}
	for i := range 2000 {
		in := Input{IP: netip.MustParseAddr("192.0.2.1"), Pool: []string{"p1", "p2"}[r.IntN(2)]}
		for range 1 + r.IntN(5) {
			in.Nodes = append(in.Nodes, Node{
				Name: fmt.Sprintf("n%d", r.IntN(6)), Labels: labelSets[r.IntN(len(labelSets))],
				Alive: r.IntN(4) > 0, Ready: r.IntN(4) > 0, NetworkUnavailable: r.IntN(6) == 0,
				Interfaces: ifaces[r.IntN(len(ifaces))],
			})
		}
		for range r.IntN(4) {
			in.Advertisements = append(in.Advertisements, Advertisement{
				Name: fmt.Sprintf("ad%d", r.IntN(3)), Pools: [][]string{{"p1"}, {"p2"}, {"p1", "p2"}}[r.IntN(3)],
				Nodes: matchers[r.IntN(len(matchers))], Services: matchers[r.IntN(len(matchers))],
				Interfaces: ifaces[r.IntN(len(ifaces))],
			})
		}
		for k := range r.IntN(3) {
			s := Service{Key: fmt.Sprintf("ns/s%d", k), Labels: labelSets[r.IntN(len(labelSets))], LocalTraffic: r.IntN(2) == 0}
			for range r.IntN(3) {
				s.ReadyEndpointNodes = append(s.ReadyEndpointNodes, fmt.Sprintf("n%d", r.IntN(6)))
			}
			in.Services = append(in.Services, s)
		}
		for _, mode := range []Mode{Layer2, BGP} {
			e := Explain(mode, in)
			if diff := cmp.Diff(Eligible(mode, in), e.Eligible()); diff != "" {
				t.Fatalf("case %d %s: Explain and Eligible disagree (-Eligible +Explain):\n%s\ninput: %+v", i, mode, diff, in)
			}
			if len(e.Announced) == 0 && len(e.Nodes) != 0 {
				t.Fatalf("case %d %s: verdicts without an announced Service: %+v", i, mode, e)
			}
			if len(e.Announced) > 0 {
				var names []string
				for _, n := range in.Nodes {
					if n.Name != "" {
						names = append(names, n.Name)
					}
				}
				slices.Sort(names)
				var got []string
				for _, v := range e.Nodes {
					got = append(got, v.Node)
				}
				if diff := cmp.Diff(slices.Compact(names), got); diff != "" {
					t.Fatalf("case %d %s: a verdict per node (-want +got):\n%s", i, mode, diff)
				}
			}
		}
	}
}
