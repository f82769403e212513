package plan

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/speaker/election"
)

// TestNodesChanged: the nodes whose change the election can see, and the contexts that differ in
// more than other nodes (refused).
func TestNodesChanged(t *testing.T) {
	cfg := testConfig(t)
	base := nodes("n1", "n2", "n3")
	with := func(f func(ns []election.Node)) []election.Node {
		ns := slices.Clone(base)
		for i := range ns {
			ns[i].Labels = maps.Clone(ns[i].Labels)
		}
		f(ns)
		return ns
	}
	tests := []struct {
		name string
		self string
		next []election.Node
		want map[string]bool
		ok   bool
	}{
		{name: "nothing", self: "n1", next: with(func([]election.Node) {}), want: map[string]bool{}, ok: true},
		{name: "a label no advertisement reads", self: "n1", next: with(func(ns []election.Node) { ns[1].Labels["team"] = "x" }), want: map[string]bool{}, ok: true},
		{name: "the exclusion label", self: "n1", next: with(func(ns []election.Node) { ns[1].Labels[election.ExcludeFromLBLabel] = "" }), want: map[string]bool{"n2": true}, ok: true},
		{name: "dead", self: "n1", next: with(func(ns []election.Node) { ns[2].Alive = false }), want: map[string]bool{"n3": true}, ok: true},
		{name: "not ready", self: "n1", next: with(func(ns []election.Node) { ns[2].Ready = false }), want: map[string]bool{"n3": true}, ok: true},
		{name: "speaker not ready", self: "n1", next: with(func(ns []election.Node) { ns[2].SpeakerReady = false }), want: map[string]bool{"n3": true}, ok: true},
		{name: "network unavailable", self: "n1", next: with(func(ns []election.Node) { ns[2].NetworkUnavailable = true }), want: map[string]bool{"n3": true}, ok: true},
		{name: "interfaces", self: "n1", next: with(func(ns []election.Node) { ns[1].Interfaces = []string{"eth1"} }), want: map[string]bool{"n2": true}, ok: true},
		{name: "default interfaces", self: "n1", next: with(func(ns []election.Node) { ns[1].DefaultInterfaces = nil }), want: map[string]bool{"n2": true}, ok: true},
		{name: "removed", self: "n1", next: with(func(ns []election.Node) {})[:2], want: map[string]bool{"n3": true}, ok: true},
		{name: "added", self: "n1", next: append(with(func([]election.Node) {}), election.Node{Name: "n4"}), want: map[string]bool{"n4": true}, ok: true},
		{name: "this node's label no advertisement reads", self: "n1", next: with(func(ns []election.Node) { ns[0].Labels["team"] = "x" }), ok: false},
		{name: "this node's liveness", self: "n2", next: with(func(ns []election.Node) { ns[1].Alive = false }), ok: false},
		{name: "a name twice", self: "n1", next: append(with(func([]election.Node) {}), base[1]), ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := NewContext(cfg, tt.self, base)
			got, ok := NewContext(cfg, tt.self, tt.next).NodesChanged(old)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (changed %v)", ok, tt.ok, got)
			}
			if diff := cmp.Diff(tt.want, got); ok && diff != "" {
				t.Errorf("changed nodes (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := NewContext(testConfig(t), "n1", base).NodesChanged(NewContext(cfg, "n1", base)); !ok {
		t.Error("an equal configuration parsed again was refused")
	}
	other := testConfig(t)
	other.Pools["l2"].Name = "renamed"
	if _, ok := NewContext(other, "n1", base).NodesChanged(NewContext(cfg, "n1", base)); ok {
		t.Error("another configuration was accepted")
	}
	if _, ok := NewContext(cfg, "n2", base).NodesChanged(NewContext(cfg, "n1", base)); ok {
		t.Error("another self was accepted")
	}
}

// TestSameForElectionKnowsEveryField: sameForElection compares every field of election.Node it
// must. A field added to election.Node fails this test until sameForElection is taught about it.
func TestSameForElectionKnowsEveryField(t *testing.T) {
	known := []string{"Name", "Labels", "Alive", "SpeakerReady", "Ready", "NetworkUnavailable", "Interfaces", "DefaultInterfaces"}
	var fields []string
	for f := range reflect.TypeFor[election.Node]().Fields() {
		fields = append(fields, f.Name)
	}
	if diff := cmp.Diff(known, fields); diff != "" {
		t.Errorf("election.Node's fields changed: update sameForElection and this list (-known +now):\n%s", diff)
	}
}

// TestMayChange: a plan with an owner that is not changed, all of whose Services are announced and
// whose pool no BGPAdvertisement covers, changes only if a changed node outranks its owner.
func TestMayChange(t *testing.T) {
	ctx := NewContext(testConfig(t), "n1", nodes("n1", "n2", "n3"))
	owned := ctx.IP(l2IP, []Service{{Key: "ns/a", IPs: []netip.Addr{l2IP}}})
	if owned.L2Owner == "" || len(owned.Unannounced) > 0 {
		t.Fatalf("the test's plan has no owner or unannounced Services: %+v", owned)
	}
	other := "n2"
	if owned.L2Owner == "n2" {
		other = "n3"
	}
	outranking := election.Outranks(l2IP, other, owned.L2Owner)
	bgp := ctx.IP(netip.MustParseAddr("198.51.100.194"), []Service{{Key: "ns/r"}})
	tests := []struct {
		name    string
		p       IPPlan
		changed map[string]bool
		want    bool
	}{
		{"nothing changed", owned, map[string]bool{}, false},
		{"the owner changed", owned, map[string]bool{owned.L2Owner: true}, true},
		{"this node changed", owned, map[string]bool{"n1": true}, true},
		{"another node changed", owned, map[string]bool{other: true}, outranking},
		{"a pool BGP covers", bgp, map[string]bool{"n9": true}, true},
		{"no owner", IPPlan{IP: l2IP}, map[string]bool{"n9": true}, true},
		{"an unannounced Service", IPPlan{IP: l2IP, L2Owner: owned.L2Owner, Unannounced: []Unannounced{{Service: "ns/b"}}}, map[string]bool{"n9": true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ctx.MayChange(tt.p, tt.changed); got != tt.want {
				t.Errorf("MayChange(%s owned by %q, changed %v) = %v, want %v", tt.p.IP, tt.p.L2Owner, tt.changed, got, tt.want)
			}
		})
	}
}
