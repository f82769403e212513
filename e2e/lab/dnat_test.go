package lab

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPlanForwards(t *testing.T) {
	nodes := []NodeInfo{
		{Name: "n1", V4: netip.MustParseAddr("198.51.100.11"), V6: netip.MustParseAddr("2001:db8:1::11")},
		{Name: "n2", V4: netip.MustParseAddr("198.51.100.12"), V6: netip.MustParseAddr("2001:db8:1::12")},
	}
	svc := func(name string, ips ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}, {Port: 53, NodePort: 30053, Protocol: corev1.ProtocolUDP}},
		}}
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	slice := func(svc string, ready bool, nodes ...string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
		for _, n := range nodes {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
		}
		return s
	}
	got := PlanForwards(nodes,
		[]*corev1.Service{svc("all", "198.51.100.100", "2001:db8:1::100"), svc("local", "198.51.100.193"), svc("pending"), svc("down", "198.51.100.101")},
		[]*discoveryv1.EndpointSlice{slice("all", true, "n1", "n2"), slice("local", true, "n2"), slice("pending", true, "n1"), slice("down", false, "n1")},
	)
	want := map[string][]Forward{
		"n1": {
			{LBIP: netip.MustParseAddr("198.51.100.100"), Port: 80, NodePort: 30080},
			{LBIP: netip.MustParseAddr("2001:db8:1::100"), Port: 80, NodePort: 30080},
		},
		"n2": {
			{LBIP: netip.MustParseAddr("198.51.100.100"), Port: 80, NodePort: 30080},
			{LBIP: netip.MustParseAddr("198.51.100.193"), Port: 80, NodePort: 30080},
			{LBIP: netip.MustParseAddr("2001:db8:1::100"), Port: 80, NodePort: 30080},
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("PlanForwards (-want +got):\n%s", diff)
	}
	script := RenderNFT(nodes[0], got["n1"])
	for _, line := range []string{
		"ip daddr 198.51.100.100 tcp dport 80 dnat ip to 198.51.100.11:30080",
		"ip6 daddr 2001:db8:1::100 tcp dport 80 dnat ip6 to [2001:db8:1::11]:30080",
		"delete table inet herald_lab",
	} {
		if !strings.Contains(script, line) {
			t.Errorf("nft script lacks %q:\n%s", line, script)
		}
	}
	if diff := cmp.Diff([]int32{30080}, NodePorts(got["n2"])); diff != "" {
		t.Errorf("NodePorts (-want +got):\n%s", diff)
	}
}
