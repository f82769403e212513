package agent

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The model's view of a Service's endpoints follows its slices as they are added, moved to
// another Service and deleted, and it forgets a Service's slices once none is left.
func TestModelSlicesOfService(t *testing.T) {
	svc := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"},
			Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}}
	}
	slice := func(name, svc, node string, ready bool) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			Endpoints: []discoveryv1.Endpoint{{NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}}}
	}
	type step struct {
		key string
		es  *discoveryv1.EndpointSlice // nil: deleted
	}
	type view struct {
		Nodes       []string
		NoEndpoints bool
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]view // by Service
		left  int             // Services with slices left in bySvc
	}{
		{name: "two slices of one Service", steps: []step{{"app/a-1", slice("a-1", "a", "n2", true)}, {"app/a-2", slice("a-2", "a", "n1", true)}},
			want: map[string]view{"app/a": {Nodes: []string{"n1", "n2"}}, "app/b": {NoEndpoints: true}}, left: 1},
		{name: "a slice updated twice is counted once", steps: []step{{"app/a-1", slice("a-1", "a", "n2", true)}, {"app/a-1", slice("a-1", "a", "n3", true)}},
			want: map[string]view{"app/a": {Nodes: []string{"n3"}}, "app/b": {NoEndpoints: true}}, left: 1},
		{name: "a slice moved to another Service", steps: []step{{"app/x", slice("x", "a", "n1", true)}, {"app/a-2", slice("a-2", "a", "n2", false)}, {"app/x", slice("x", "b", "n1", true)}},
			want: map[string]view{"app/a": {NoEndpoints: true}, "app/b": {Nodes: []string{"n1"}}}, left: 2},
		{name: "every slice deleted", steps: []step{{"app/a-1", slice("a-1", "a", "n1", true)}, {"app/a-2", slice("a-2", "a", "n2", true)}, {"app/a-1", nil}, {"app/a-2", nil}},
			want: map[string]view{"app/a": {NoEndpoints: true}, "app/b": {NoEndpoints: true}}, left: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel()
			m.setService("app/a", svc("a"))
			m.setService("app/b", svc("b"))
			for _, s := range tc.steps {
				m.setSlice(s.key, s.es)
			}
			got := map[string]view{}
			for k, ps := range m.planServices([]string{"app/a", "app/b"}, func(*service) bool { return true }) {
				if ps.Key != k || !cmp.Equal(ps.IPs, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
					t.Errorf("Service %s: key %q, IPs %v", k, ps.Key, ps.IPs)
				}
				got[k] = view{Nodes: ps.ReadyEndpointNodes, NoEndpoints: ps.NoEndpoints}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if len(m.bySvc) != tc.left {
				t.Errorf("slices known for %d Services, want %d: %v", len(m.bySvc), tc.left, m.bySvc)
			}
		})
	}
}

// TestModelServiceKey: the model hands out its own string for the key of a Service it has, also
// after the Service changed, and the record's reference names the Service; for a Service it does
// not have, a new key.
func TestModelServiceKey(t *testing.T) {
	m := newModel()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "app", UID: "u1"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	m.setService(objectKey("app", "web"), svc)
	held := m.svcs["app/web"].key
	changed := svc.DeepCopy()
	changed.Labels = map[string]string{"tier": "front"}
	if !m.setService(objectKey("app", "web"), changed) {
		t.Fatal("a change of labels was not recorded")
	}
	for _, s := range []string{m.svcs["app/web"].key, m.serviceKey("app", "web")} {
		if s != "app/web" || unsafe.StringData(s) != unsafe.StringData(held) {
			t.Errorf("key %q is not the model's own string", s)
		}
	}
	if ref := m.svcs["app/web"].ref(); ref.Namespace != "app" || ref.Name != "web" || ref.UID != "u1" {
		t.Errorf("reference %+v, want app/web u1", ref)
	}
	if k := m.serviceKey("app", "db"); k != "app/db" {
		t.Errorf("the key of a Service the model does not have = %q, want app/db", k)
	}
}
