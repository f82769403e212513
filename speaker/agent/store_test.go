package agent

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// The reflectors' stores keep the model as an informer would keep its cache: a relist forgets
// what was deleted while the watch was down, a tombstone deletes, and an update that changes
// nothing the speaker reads (a new resourceVersion, an annotation, an endpoint's address) is
// dropped without a recomputation.
func TestModelStores(t *testing.T) {
	svc := func(name, ip string, edit func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", UID: types.UID("uid-" + name), ResourceVersion: "1"},
			Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}}}
		if edit != nil {
			edit(s)
		}
		return s
	}
	slice := func(name, node, addr string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: map[string]string{discoveryv1.LabelServiceName: "a"}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{addr}, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}}
	}
	m := newModel()
	var changed, skipped int
	count := func(s *modelStore) *modelStore {
		s.changed, s.skipped = func() { changed++ }, func() { skipped++ }
		return s
	}
	svcs := count(&modelStore{put: func(key string, obj runtime.Object) bool {
		s, _ := obj.(*corev1.Service)
		return m.setService(key, s)
	}, retain: m.retainServices})
	eps := count(&modelStore{put: func(key string, obj runtime.Object) bool {
		es, _ := obj.(*discoveryv1.EndpointSlice)
		return m.setSlice(key, es)
	}, retain: m.retainSlices})

	type want struct{ changed, skipped int }
	steps := []struct {
		name string
		do   func() error
		want want
		svcs []string // Services the model knows after the step
	}{
		{"first list", func() error {
			return svcs.Replace([]any{svc("a", "192.0.2.1", nil), svc("b", "192.0.2.2", nil), svc("c", "192.0.2.3", nil)}, "1")
		}, want{1, 0}, []string{"app/a", "app/b", "app/c"}},
		{"an update of nothing the speaker reads", func() error {
			return svcs.Update(svc("a", "192.0.2.1", func(s *corev1.Service) {
				s.ResourceVersion, s.Annotations, s.Spec.Ports = "2", map[string]string{"x": "y"}, []corev1.ServicePort{{Port: 80}}
			}))
		}, want{0, 1}, []string{"app/a", "app/b", "app/c"}},
		{"a new IP", func() error { return svcs.Update(svc("a", "192.0.2.9", nil)) }, want{1, 0}, []string{"app/a", "app/b", "app/c"}},
		{"a relist without b", func() error {
			return svcs.Replace([]any{svc("a", "192.0.2.9", nil), svc("c", "192.0.2.3", nil)}, "5")
		}, want{1, 0}, []string{"app/a", "app/c"}},
		{"the same relist again", func() error {
			return svcs.Replace([]any{svc("a", "192.0.2.9", nil), svc("c", "192.0.2.3", nil)}, "6")
		}, want{0, 0}, []string{"app/a", "app/c"}},
		{"a tombstone", func() error {
			return svcs.Delete(toolscache.DeletedFinalStateUnknown{Key: "app/c", Obj: svc("c", "192.0.2.3", nil)})
		}, want{1, 0}, []string{"app/a"}},
		{"a slice", func() error { return eps.Add(slice("a-1", "n1", "10.0.0.1")) }, want{1, 0}, []string{"app/a"}},
		{"address churn in the slice", func() error { return eps.Update(slice("a-1", "n1", "10.0.0.2")) }, want{0, 1}, []string{"app/a"}},
		{"the endpoint moved", func() error { return eps.Update(slice("a-1", "n2", "10.0.0.2")) }, want{1, 0}, []string{"app/a"}},
		{"a relist without the slice", func() error { return eps.Replace(nil, "9") }, want{1, 0}, []string{"app/a"}},
	}
	for _, st := range steps {
		changed, skipped = 0, 0
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := (want{changed, skipped}); got != st.want {
			t.Errorf("%s: changed %d and skipped %d times, want %+v", st.name, got.changed, got.skipped, st.want)
		}
		if got := slices.Sorted(maps.Keys(m.svcs)); !slices.Equal(got, st.svcs) {
			t.Errorf("%s: the model knows %v, want %v", st.name, got, st.svcs)
		}
	}
	if !svcs.hasSynced() || !eps.hasSynced() {
		t.Error("a store that was given a list does not say it synced")
	}
	if ps := m.planServices([]string{"app/a"}, func(*service) bool { return true })["app/a"]; ps == nil || !ps.NoEndpoints || ps.IPs[0].String() != "192.0.2.9" {
		t.Errorf("the plan's view of app/a after its slice left: %+v", ps)
	}
	if err := svcs.Add("not an object"); err == nil {
		t.Error("a store accepted a value that is not an API object")
	}
}
