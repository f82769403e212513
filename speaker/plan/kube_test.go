package plan

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kptr "k8s.io/utils/ptr"

	"github.com/herald-lb/herald/speaker/election"
)

func TestEndpointsByService(t *testing.T) {
	ep := func(node string, ready, serving *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving}}
		if node != "" {
			e.NodeName = kptr.To(node)
		}
		return e
	}
	slice := func(ns, svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, Endpoints: eps}
	}
	yes, no := kptr.To(true), kptr.To(false)
	tests := []struct {
		name  string
		items []discoveryv1.EndpointSlice
		want  map[string]Endpoints
	}{
		{name: "no slices", want: map[string]Endpoints{}},
		{
			name:  "ready endpoints on two nodes, over two slices, plus an unready one",
			items: []discoveryv1.EndpointSlice{slice("a", "web", ep("n2", yes, yes), ep("n3", no, no)), slice("a", "web", ep("n1", nil, nil), ep("n2", yes, yes))},
			want:  map[string]Endpoints{"a/web": {ReadyNodes: []string{"n1", "n2"}, Usable: true}},
		},
		{
			name:  "a slice without endpoints",
			items: []discoveryv1.EndpointSlice{slice("a", "empty")},
			want:  map[string]Endpoints{"a/empty": {}},
		},
		{
			name:  "only unready endpoints",
			items: []discoveryv1.EndpointSlice{slice("a", "down", ep("n1", no, no))},
			want:  map[string]Endpoints{"a/down": {}},
		},
		{
			name:  "terminating but still serving: usable, on no ready node",
			items: []discoveryv1.EndpointSlice{slice("a", "draining", ep("n1", no, yes))},
			want:  map[string]Endpoints{"a/draining": {Usable: true}},
		},
		{
			name:  "a ready endpoint without a node (a manually managed slice)",
			items: []discoveryv1.EndpointSlice{slice("a", "ext", ep("", yes, yes))},
			want:  map[string]Endpoints{"a/ext": {Usable: true}},
		},
		{
			name:  "a slice of no Service is ignored",
			items: []discoveryv1.EndpointSlice{slice("a", "", ep("n1", yes, yes))},
			want:  map[string]Endpoints{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]Endpoints{}
			for k, v := range EndpointsByService(tt.items) {
				got[k] = *v
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EndpointsByService (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceFromKube(t *testing.T) {
	svc := func(policy corev1.ServiceExternalTrafficPolicy, ips ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web", Labels: map[string]string{"app": "web"}}}
		s.Spec.ExternalTrafficPolicy = policy
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	eps := map[string]*Endpoints{"a/web": {ReadyNodes: []string{"n1"}, Usable: true}}
	tests := []struct {
		name   string
		svc    *corev1.Service
		eps    map[string]*Endpoints
		want   Service
		wantOK bool
	}{
		{name: "no IP", svc: svc(corev1.ServiceExternalTrafficPolicyCluster), eps: eps, want: Service{Key: "a/web", Labels: map[string]string{"app": "web"}}},
		{
			name: "local, dual-stack, a hostname skipped", svc: svc(corev1.ServiceExternalTrafficPolicyLocal, "192.0.2.1", "lb.example", "2001:db8::1"), eps: eps, wantOK: true,
			want: Service{Key: "a/web", Labels: map[string]string{"app": "web"}, LocalTraffic: true,
				IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}, ReadyEndpointNodes: []string{"n1"}},
		},
		{
			name: "no EndpointSlice", svc: svc(corev1.ServiceExternalTrafficPolicyCluster, "192.0.2.1"), wantOK: true,
			want: Service{Key: "a/web", Labels: map[string]string{"app": "web"}, IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, NoEndpoints: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ServiceFromKube(tt.svc, tt.eps)
			if ok != tt.wantOK {
				t.Errorf("ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got, netipCmp); diff != "" {
				t.Errorf("ServiceFromKube (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeFromKube(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}}
	n.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue},
	}
	want := election.Node{Name: "n1", Labels: map[string]string{"zone": "a"}, Ready: true, NetworkUnavailable: true}
	if diff := cmp.Diff(want, NodeFromKube(n)); diff != "" {
		t.Errorf("NodeFromKube (-want +got):\n%s", diff)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
	if got := NodeFromKube(n); got.Ready || got.NetworkUnavailable {
		t.Errorf("NodeFromKube with Ready Unknown = %+v, want not Ready", got)
	}
}
