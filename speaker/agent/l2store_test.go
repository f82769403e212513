package agent

import (
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/status"
)

// l2obj is a ServiceL2Status as the API server gives it: every string its own copy.
func l2obj(name, node, ns, svc, rv string, ifs ...v1beta1.InterfaceInfo) *v1beta1.ServiceL2Status {
	cp := func(s string) string { return string([]byte(s)) }
	o := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: cp(name), Namespace: cp("herald"), ResourceVersion: cp(rv),
		Labels: map[string]string{cp(LabelNode): cp(node), cp(LabelServiceName): cp(svc), cp(LabelServiceNamespace): cp(ns)}}}
	if len(ifs) > 0 {
		o.Status = v1beta1.ServiceL2StatusStatus{Node: cp(node), ServiceName: cp(svc), ServiceNamespace: cp(ns), Interfaces: ifs}
	}
	return o
}

// The store keeps of this node's objects their status and resourceVersion (the status writer's
// view), of the others' only the node and Service; it counts the objects naming each Service and
// tells what came and went, also across a relist.
func TestL2StoreKeepsWhatItsReadersUse(t *testing.T) {
	s := newL2Store("n1")
	counts := map[string]int{}
	var added, changed, removed []string
	s.counted = func(svc string, d int) { counts[svc] += d }
	s.seen = func(o *v1beta1.ServiceL2Status, isNew bool) {
		if isNew {
			added = append(added, o.Name)
		} else {
			changed = append(changed, o.Name)
		}
	}
	s.removed = func(name string, o l2Object) { removed = append(removed, name+"@"+o.node) }

	eth0 := v1beta1.InterfaceInfo{Name: "eth0", MAC: "02:00:00:00:00:01"}
	mine := l2obj("n1-web", "n1", "app", "web", "5", eth0)
	fresh := l2obj("n1-db", "n1", "app", "db", "6") // just created: no status yet
	peer := l2obj("n2-api", "n2", "app", "api", "7", v1beta1.InterfaceInfo{Name: "eth0", MAC: "02:00:00:00:00:02"})
	for _, o := range []*v1beta1.ServiceL2Status{mine, fresh, peer} {
		if err := s.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(l2obj("n1-db", "n1", "app", "db", "8", eth0)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"app/web": 1, "app/db": 1, "app/api": 1}, counts); diff != "" {
		t.Errorf("objects naming each Service (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n1-web", "n1-db", "n2-api"}, added); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n1-db"}, changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}

	got := map[string]status.Held[v1beta1.ServiceL2StatusStatus]{}
	s.Mine(func(name string, h status.Held[v1beta1.ServiceL2StatusStatus]) { got[name] = h })
	wantSt := func(svc string) *v1beta1.ServiceL2StatusStatus {
		return &v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: svc, ServiceNamespace: "app", Interfaces: []v1beta1.InterfaceInfo{eth0}}
	}
	want := map[string]status.Held[v1beta1.ServiceL2StatusStatus]{
		"n1-web": {ResourceVersion: "5", Sum: status.L2Sum(*wantSt("web"))},
		"n1-db":  {ResourceVersion: "8", Sum: status.L2Sum(*wantSt("db"))},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("this node's objects (-want +got):\n%s", diff)
	}
	if h, node, ok := s.Get("n2-api"); !ok || node != "n2" || h != (status.Held[v1beta1.ServiceL2StatusStatus]{}) {
		t.Errorf("Get of another node's object: %+v, %q, %v; want its node, and no status, sum or resourceVersion", h, node, ok)
	}
	if h, _, ok := s.Get("n1-web"); !ok || h.Sum != status.L2Sum(*wantSt("web")) || h.Sum == status.L2Sum(*wantSt("db")) || h.ResourceVersion != "5" {
		t.Errorf("Get of this node's n1-web: %+v, %v; want resourceVersion 5 and its status's sum, not another's", h, ok)
	}
	if _, _, ok := s.Get("n3-x"); ok {
		t.Error("Get of an object never stored: found")
	}
	if diff := cmp.Diff(map[string]string{"n2-api": "n2"}, s.Dead(map[string]bool{"n1": true})); diff != "" {
		t.Errorf("dead speakers' objects (-want +got):\n%s", diff)
	}
	if d := s.Dead(map[string]bool{"n1": true, "n2": true}); len(d) != 0 {
		t.Errorf("dead speakers' objects with every speaker alive: %v", d)
	}

	// The node's name is shared by every object.
	a, b := s.objs["n1-web"], s.objs["n2-api"]
	if unsafe.StringData(a.node) != unsafe.StringData(s.objs["n1-db"].node) || b.node != "n2" {
		t.Error("this node's objects hold copies of their node's name, want one shared")
	}

	// A deletion the watch missed: the relist drops n2-api; a tombstone removes n1-web.
	if err := s.Replace([]any{l2obj("n1-web", "n1", "app", "web", "5", eth0), l2obj("n1-db", "n1", "app", "db", "8", eth0)}, "9"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(toolscache.DeletedFinalStateUnknown{Key: "herald/n1-web", Obj: mine}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n2-api@n2", "n1-web@n1"}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"app/web": 0, "app/db": 1, "app/api": 0}, counts); diff != "" {
		t.Errorf("objects naming each Service after the deletions (-want +got):\n%s", diff)
	}
	if !s.hasSynced() {
		t.Error("not synced after a full list")
	}
	if diff := cmp.Diff(map[string]string{"n1-db": "n1"}, s.names()); diff != "" {
		t.Errorf("objects held (-want +got):\n%s", diff)
	}
	if err := s.Add(&v1beta1.ServiceBGPStatus{}); err == nil {
		t.Error("a ServiceBGPStatus stored without an error")
	}
}

// names returns the names of the objects the store holds, for tests.
func (s *l2Store) names() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.objs))
	for name, o := range s.objs {
		out[name] = o.node
	}
	return out
}
