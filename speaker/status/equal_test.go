package status

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

// The typed comparisons must decide as equality.Semantic.DeepEqual, which the writer used before.
func TestStatusEqualAgreesWithSemanticDeepEqual(t *testing.T) {
	at := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
	local := at.In(time.FixedZone("UTC+2", 2*3600))
	cases := []struct {
		name string
		a, b v1beta1.ServiceL2StatusStatus
		want bool
	}{
		{"zero", v1beta1.ServiceL2StatusStatus{}, v1beta1.ServiceL2StatusStatus{}, true},
		{"nil and empty interfaces", v1beta1.ServiceL2StatusStatus{Interfaces: []v1beta1.InterfaceInfo{}}, v1beta1.ServiceL2StatusStatus{}, true},
		{"nil and empty conflicts", v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{}}, v1beta1.ServiceL2StatusStatus{}, true},
		{"node differs", v1beta1.ServiceL2StatusStatus{Node: "a"}, v1beta1.ServiceL2StatusStatus{Node: "b"}, false},
		{"MAC differs", v1beta1.ServiceL2StatusStatus{Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0", MAC: "02:00:00:00:00:01"}}},
			v1beta1.ServiceL2StatusStatus{Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0"}}}, false},
		{"same instant in another zone",
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{IP: "192.0.2.1", Since: metav1.NewTime(at)}}},
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{IP: "192.0.2.1", Since: metav1.NewTime(local)}}}, true},
		{"another instant",
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{Since: metav1.NewTime(at)}}},
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{Since: metav1.NewTime(at.Add(time.Second))}}}, false},
		{"the same letters in other fields",
			v1beta1.ServiceL2StatusStatus{ServiceName: "ab", ServiceNamespace: "c"},
			v1beta1.ServiceL2StatusStatus{ServiceName: "a", ServiceNamespace: "bc"}, false},
		{"conflict action differs",
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{Action: "Kept"}}},
			v1beta1.ServiceL2StatusStatus{Conflicts: []v1beta1.L2Conflict{{Action: "Yielded"}}}, false},
	}
	for _, c := range cases {
		if got, sem := l2StatusEqual(c.a, c.b), equality.Semantic.DeepEqual(c.a, c.b); got != c.want || sem != c.want {
			t.Errorf("%s: l2StatusEqual %v, equality.Semantic %v, want %v", c.name, got, sem, c.want)
		}
		if got := L2Sum(c.a) == L2Sum(c.b); got != c.want {
			t.Errorf("%s: equal sums %v, want %v", c.name, got, c.want)
		}
	}

	// Random statuses from small alphabets, so that equal pairs are common.
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	ifaces := func() []v1beta1.InterfaceInfo {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []v1beta1.InterfaceInfo{}
		}
		out := make([]v1beta1.InterfaceInfo, r.IntN(3))
		for i := range out {
			out[i] = v1beta1.InterfaceInfo{Name: pick("eth0", "eth1"), MAC: pick("", "02:00:00:00:00:01")}
		}
		return out
	}
	conflicts := func() []v1beta1.L2Conflict {
		if r.IntN(2) == 0 {
			return nil
		}
		out := make([]v1beta1.L2Conflict, r.IntN(2))
		for i := range out {
			out[i] = v1beta1.L2Conflict{IP: pick("192.0.2.1", "2001:db8::1"), Interface: pick("eth0", "eth1"), MAC: pick("02:00:00:00:00:02", ""),
				Node: pick("", "n1"), Action: pick("Kept", "Yielded"), Since: metav1.NewTime(at.Add(time.Duration(r.IntN(2)) * time.Second))}
		}
		return out
	}
	l2 := func() v1beta1.ServiceL2StatusStatus {
		return v1beta1.ServiceL2StatusStatus{Node: pick("n1", "n2"), ServiceName: pick("a", "b"), ServiceNamespace: "ns",
			Interfaces: ifaces(), Conflicts: conflicts()}
	}
	peers := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{pick("p1", "p2"), pick("p1", "p2")}[:1+r.IntN(2)]
	}
	bgp := func() v1beta1.ServiceBGPStatusStatus {
		return v1beta1.ServiceBGPStatusStatus{Node: pick("n1", "n2"), ServiceName: pick("a", "b"), ServiceNamespace: "ns", Peers: peers()}
	}
	var equalL2, equalBGP int
	for range 20000 {
		a, b := l2(), l2()
		if got, want := l2StatusEqual(a, b), equality.Semantic.DeepEqual(a, b); got != want {
			t.Fatalf("l2StatusEqual(%+v, %+v) = %v, equality.Semantic says %v", a, b, got, want)
		} else if got {
			equalL2++
		}
		if got, want := L2Sum(a) == L2Sum(b), l2StatusEqual(a, b); got != want {
			t.Fatalf("L2Sum(%+v) == L2Sum(%+v) is %v, l2StatusEqual says %v", a, b, got, want)
		}
		c, d := bgp(), bgp()
		if got, want := bgpStatusEqual(c, d), equality.Semantic.DeepEqual(c, d); got != want {
			t.Fatalf("bgpStatusEqual(%+v, %+v) = %v, equality.Semantic says %v", c, d, got, want)
		} else if got {
			equalBGP++
		}
	}
	if equalL2 < 100 || equalBGP < 100 {
		t.Fatalf("only %d equal ServiceL2Status and %d equal ServiceBGPStatus pairs drawn: the comparison of equal values is hardly tested", equalL2, equalBGP)
	}
}

// A field added to a status type must be compared: this fails until the typed comparison and the
// generator above know it.
func TestStatusEqualKnowsEveryField(t *testing.T) {
	for typ, fields := range map[reflect.Type]int{
		reflect.TypeFor[v1beta1.ServiceL2StatusStatus]():  5,
		reflect.TypeFor[v1beta1.InterfaceInfo]():          2,
		reflect.TypeFor[v1beta1.L2Conflict]():             6,
		reflect.TypeFor[v1beta1.ServiceBGPStatusStatus](): 4,
	} {
		if typ.NumField() != fields {
			t.Errorf("%s has %d fields, the typed comparison and L2Sum in equal.go know %d: compare and sum the new ones", typ, typ.NumField(), fields)
		}
	}
}

func TestStatusEqualDoesNotAllocate(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC))
	a := v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "a", ServiceNamespace: "ns",
		Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0", MAC: "02:00:00:00:00:01"}},
		Conflicts:  []v1beta1.L2Conflict{{IP: "192.0.2.1", Interface: "eth0", MAC: "02:00:00:00:00:02", Action: "Kept", Since: since}}}
	b := a
	b.Interfaces = []v1beta1.InterfaceInfo{{Name: "eth0", MAC: "02:00:00:00:00:01"}}
	if n := testing.AllocsPerRun(100, func() {
		if !l2StatusEqual(a, b) {
			t.Fatal("equal statuses compared unequal")
		}
	}); n != 0 {
		t.Errorf("l2StatusEqual allocated %.0f times per call, want 0", n)
	}
}

// Desired.equal decides whether Set has anything to apply: the same as comparing every field, with
// a missing sweep unlike a sweep with no live speaker.
func TestDesiredEqual(t *testing.T) {
	base := func() Desired {
		return Desired{
			L2:       map[string]v1beta1.ServiceL2StatusStatus{"a": {Node: "n1", ServiceName: "a", ServiceNamespace: "ns"}},
			BGP:      map[string]v1beta1.ServiceBGPStatusStatus{"b": {Node: "n1", Peers: []string{"p1"}}},
			Sessions: map[string]v1beta1.BGPSessionStatusStatus{"s": {Node: "n1", Peer: "p1", State: "Established"}},
			Sweep:    map[string]bool{"n1": true},
		}
	}
	cases := []struct {
		name   string
		change func(*Desired)
		want   bool
	}{
		{"same", func(*Desired) {}, true},
		{"another L2 status", func(d *Desired) { d.L2["a"] = v1beta1.ServiceL2StatusStatus{Node: "n2"} }, false},
		{"one more L2 object", func(d *Desired) { d.L2["c"] = v1beta1.ServiceL2StatusStatus{} }, false},
		{"another peer", func(d *Desired) { d.BGP["b"] = v1beta1.ServiceBGPStatusStatus{Node: "n1", Peers: []string{"p2"}} }, false},
		{"another session state", func(d *Desired) {
			d.Sessions["s"] = v1beta1.BGPSessionStatusStatus{Node: "n1", Peer: "p1", State: "Active"}
		}, false},
		{"another live speaker", func(d *Desired) { d.Sweep["n2"] = true }, false},
		{"no sweep", func(d *Desired) { d.Sweep = nil }, false},
		{"a sweep with no live speaker", func(d *Desired) { d.Sweep = map[string]bool{} }, false},
		{"empty interfaces instead of none", func(d *Desired) {
			d.L2["a"] = v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "a", ServiceNamespace: "ns", Interfaces: []v1beta1.InterfaceInfo{}}
		}, true},
	}
	for _, c := range cases {
		d := base()
		c.change(&d)
		if got := base().equal(d); got != c.want {
			t.Errorf("%s: equal = %v, want %v", c.name, got, c.want)
		}
		if got := d.equal(base()); got != c.want {
			t.Errorf("%s (reversed): equal = %v, want %v", c.name, got, c.want)
		}
	}
	none, empty := base(), base()
	none.Sweep, empty.Sweep = nil, map[string]bool{}
	if none.equal(empty) || empty.equal(none) {
		t.Error("no sweep compared equal to a sweep with no live speaker")
	}
}
