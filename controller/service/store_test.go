package service

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-lb/herald/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestServiceView: a Service kept by the store reads back exactly as TrimService keeps it.
func TestServiceView(t *testing.T) {
	full := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "u-1", ResourceVersion: "42", Generation: 3,
			Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{
				v1beta1.AnnotationAddressPool: "public", v1beta1.AnnotationAllocatedFromPool: "public", v1beta1.AnnotationAllowSharedIP: "",
				"kubectl.kubernetes.io/last-applied-configuration": "{}",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.ServiceSpec{
			Type:              corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass: ptr.To("herald.dev/x"),
			Selector:          map[string]string{"app": "web", "tier": "front"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
			ClusterIP:             "10.0.0.1",
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			IPFamilies:            []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol},
			IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicyRequireDualStack),
			LoadBalancerIP:        "198.51.100.7",
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "198.51.100.7", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}, {IP: "2001:db8::7"}}}},
	}
	tests := []struct {
		name string
		mod  func(*corev1.Service)
	}{
		{name: "everything", mod: func(*corev1.Service) {}},
		{name: "bare", mod: func(s *corev1.Service) { *s = corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b"}} }},
		{name: "ClusterIP, no class", mod: func(s *corev1.Service) {
			s.Spec.Type, s.Spec.LoadBalancerClass, s.Status = corev1.ServiceTypeClusterIP, nil, corev1.ServiceStatus{}
		}},
		{name: "selector that is not a label set", mod: func(s *corev1.Service) {
			s.Spec.Selector = map[string]string{"a,b": "c=d", "": "!x"}
		}},
		{name: "odd families", mod: func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{"IPv5", corev1.IPv4Protocol} }},
		{name: "being deleted", mod: func(s *corev1.Service) { s.DeletionTimestamp = &metav1.Time{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := full.DeepCopy()
			tc.mod(in)
			want, _ := TrimService(in.DeepCopy())
			v, err := toView(in.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			got := v.(*serviceView).service()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("read back (-TrimService +view):\n%s", diff)
			}
			// The copy is the caller's: changing it leaves the view as it was.
			if got.Labels != nil {
				got.Labels["x"] = "y"
			}
			if got.Spec.Selector != nil {
				got.Spec.Selector["x"] = "y"
			}
			if len(got.Status.LoadBalancer.Ingress) > 0 {
				got.Status.LoadBalancer.Ingress[0].IP = "changed"
			}
			got.Spec.Ports = nil
			if diff := cmp.Diff(want, v.(*serviceView).service()); diff != "" {
				t.Errorf("changing a copy changed the view (-want +got):\n%s", diff)
			}
			if m, w := v.(*serviceView).managed("herald.dev/x"), v1beta1.ManagedService(in, "herald.dev/x"); m != w {
				t.Errorf("managed = %t, Managed = %t", m, w)
			}
		})
	}
}

// FuzzServiceView: whatever a Service holds, its view reads back as TrimService keeps it.
func FuzzServiceView(f *testing.F) {
	f.Add("app", "web", "tier", "front", "herald.dev/address-pool", "a", "IPv4", int32(80), "TCP", "192.0.2.1")
	f.Add("a,b", "=", "", "", "other/x", "", "IPv6,IPv4", int32(0), "", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, ak, av, families string, port int32, proto, ip string) {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns", Labels: map[string]string{k1: v1},
				Annotations: map[string]string{ak: av, v1beta1.AnnotationAllocatedFromPool: av}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{k1: v1, k2: v2},
				Ports: []corev1.ServicePort{{Port: port, Protocol: corev1.Protocol(proto)}}},
		}
		if families != "" {
			for _, fam := range strings.Split(families, ",") {
				s.Spec.IPFamilies = append(s.Spec.IPFamilies, corev1.IPFamily(fam))
			}
		}
		if ip != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		}
		want, _ := TrimService(s.DeepCopy())
		v, _ := toView(s.DeepCopy())
		if diff := cmp.Diff(want, v.(*serviceView).service()); diff != "" {
			t.Errorf("read back (-TrimService +view):\n%s", diff)
		}
	})
}
