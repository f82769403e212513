package allocator

import (
	"reflect"
	"testing"
)

// TestNamespaceLabelsShared: the descriptions of the Services of one namespace share one copy of
// its labels, a new version of the labels replaces it, and a caller changing its map afterwards
// changes nothing in the allocator.
func TestNamespaceLabelsShared(t *testing.T) {
	onlyTeamA := pool("a", cidr("192.0.2.0/24"))
	onlyTeamA.Restricted = true
	onlyTeamA.Match = func(s *Service) bool { return s.NamespaceLabels["team"] == "a" }
	a, err := New([]Pool{onlyTeamA})
	if err != nil {
		t.Fatal(err)
	}
	assign := func(key string, labels map[string]string) {
		t.Helper()
		if _, err := a.Assign(&Service{Key: key, Namespace: "ns", NamespaceLabels: labels, Ports: tcp(80)}); err != nil {
			t.Fatalf("assigning %s: %v", key, err)
		}
	}
	same := func(x, y map[string]string) bool {
		return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	}

	first := map[string]string{"team": "a"}
	assign("ns/one", first)
	assign("ns/two", map[string]string{"team": "a"})
	one, two := a.services["ns/one"].svc.NamespaceLabels, a.services["ns/two"].svc.NamespaceLabels
	if !same(one, two) {
		t.Error("two Services of one namespace with the same labels hold two copies of them")
	}
	if same(one, first) {
		t.Error("the allocator keeps the caller's map instead of a copy")
	}
	first["team"] = "b" // the caller's map, not the allocator's
	if got := a.services["ns/one"].svc.NamespaceLabels["team"]; got != "a" {
		t.Errorf("the caller changed the allocator's copy: team=%q", got)
	}
	// New labels of the namespace: a new copy for the Services described from now on.
	assign("ns/three", map[string]string{"team": "a", "tier": "gold"})
	if three := a.services["ns/three"].svc.NamespaceLabels; same(three, one) || len(three) != 2 {
		t.Errorf("new namespace labels: got %v sharing the old copy %t", three, same(three, one))
	}
	if got := a.services["ns/one"].svc.NamespaceLabels; len(got) != 1 {
		t.Errorf("a Service described before the change lost its labels: %v", got)
	}
}
