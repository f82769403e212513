package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestEndpointsByService(t *testing.T) {
	ep := func(node string, ready, serving *bool) discoveryv1.Endpoint {
		e := discoveryv1.Endpoint{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving}}
		if node != "" {
			e.NodeName = ptr.To(node)
		}
		return e
	}
	slice := func(ns, svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		return discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, Endpoints: eps}
	}
	yes, no := ptr.To(true), ptr.To(false)
	tests := []struct {
		name  string
		items []discoveryv1.EndpointSlice
		want  map[string]endpoints
	}{
		{name: "no slices", want: map[string]endpoints{}},
		{
			name:  "ready endpoints on two nodes, over two slices, plus an unready one",
			items: []discoveryv1.EndpointSlice{slice("a", "web", ep("n2", yes, yes), ep("n3", no, no)), slice("a", "web", ep("n1", nil, nil), ep("n2", yes, yes))},
			want:  map[string]endpoints{"a/web": {readyNodes: []string{"n1", "n2"}, usable: true}},
		},
		{
			name:  "a slice without endpoints",
			items: []discoveryv1.EndpointSlice{slice("a", "empty")},
			want:  map[string]endpoints{"a/empty": {}},
		},
		{
			name:  "only unready endpoints",
			items: []discoveryv1.EndpointSlice{slice("a", "down", ep("n1", no, no))},
			want:  map[string]endpoints{"a/down": {}},
		},
		{
			name:  "terminating but still serving: usable, on no ready node",
			items: []discoveryv1.EndpointSlice{slice("a", "draining", ep("n1", no, yes))},
			want:  map[string]endpoints{"a/draining": {usable: true}},
		},
		{
			name:  "a ready endpoint without a node (a manually managed slice)",
			items: []discoveryv1.EndpointSlice{slice("a", "ext", ep("", yes, yes))},
			want:  map[string]endpoints{"a/ext": {usable: true}},
		},
		{
			name:  "a slice of no Service is ignored",
			items: []discoveryv1.EndpointSlice{slice("a", "", ep("n1", yes, yes))},
			want:  map[string]endpoints{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]endpoints{}
			for k, v := range endpointsByService(tt.items) {
				got[k] = *v
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(endpoints{})); diff != "" {
				t.Errorf("endpointsByService (-want +got):\n%s", diff)
			}
		})
	}
}
