package service_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

func fullService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "u-1", ResourceVersion: "42", Generation: 3,
			Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{
				v1beta1.AnnotationAddressPool:                      "public",
				v1beta1.AnnotationAllocatedFromPool:                "public",
				"kubectl.kubernetes.io/last-applied-configuration": `{"a very":"long copy of the object"}`,
				"example.com/owner":                                "team-a",
			},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
			OwnerReferences: []metav1.OwnerReference{{Name: "x"}},
			Finalizers:      []string{"example.com/f"},
		},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:     ptr.To("herald.dev/x"),
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080), NodePort: 30080, AppProtocol: ptr.To("http")}},
			ClusterIP:             "10.0.0.10",
			ClusterIPs:            []string{"10.0.0.10"},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort:   31000,
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
			LoadBalancerIP:        "198.51.100.7",
			SessionAffinity:       corev1.ServiceAffinityNone,
		},
		Status: corev1.ServiceStatus{
			LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.7", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}},
			Conditions:   []metav1.Condition{{Type: "X"}},
		},
	}
}

func TestTrimService(t *testing.T) {
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "shop", UID: "u-1", ResourceVersion: "42", Generation: 3,
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{v1beta1.AnnotationAddressPool: "public", v1beta1.AnnotationAllocatedFromPool: "public"},
		},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:     ptr.To("herald.dev/x"),
			Selector:              map[string]string{"app": "web"},
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
			LoadBalancerIP:        "198.51.100.7",
		},
		Status: corev1.ServiceStatus{
			LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "198.51.100.7", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}},
		},
	}
	in := fullService()
	got, err := service.TrimService(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trimmed Service (-want +got):\n%s", diff)
	}
	// What the controller reads is the same from the trimmed Service as from the full one.
	for _, s := range []*corev1.Service{in, got.(*corev1.Service)} {
		if !v1beta1.ManagedService(s, "herald.dev/x") {
			t.Errorf("Managed(%s) = false", s.ResourceVersion)
		}
	}
	full, err := service.ToAllocatorService(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := service.ToAllocatorService(got.(*corev1.Service), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, trimmed, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("the allocator's view differs between the full and the trimmed Service (-full +trimmed):\n%s", diff)
	}

	// Without Herald annotations the map is dropped; other kinds pass through.
	plain := fullService()
	plain.Annotations = map[string]string{"example.com/owner": "team-a"}
	if got, _ := service.TrimService(plain); got.(*corev1.Service).Annotations != nil {
		t.Errorf("annotations without Herald's kept: %v", got.(*corev1.Service).Annotations)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", ManagedFields: []metav1.ManagedFieldsEntry{{}}}}
	if got, _ := service.TrimService(ns); got != ns {
		t.Error("a Namespace was changed")
	}
}

// TestTrimmedWritesKeepTheRest checks on the real API server that the controller's writes, made
// from trimmed Services, leave every field it does not read as it was.
func TestTrimmedWritesKeepTheRest(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.20/32"})
	f.start()
	f.service("web", svcAnnotation("example.com/owner", "team-a"),
		svcAnnotation("kubectl.kubernetes.io/last-applied-configuration", `{"kind":"Service"}`),
		func(s *corev1.Service) {
			s.Labels = map[string]string{"tier": "front"}
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		})
	before := f.get("web")
	f.waitIPs("web", 1)
	f.waitPoolAnnotation("web", "a")
	after := f.get("web")
	// Only the status and the pool annotation changed.
	strip := func(s *corev1.Service) *corev1.Service {
		s = s.DeepCopy()
		s.ResourceVersion, s.ManagedFields = "", nil
		s.Status = corev1.ServiceStatus{}
		delete(s.Annotations, v1beta1.AnnotationAllocatedFromPool)
		return s
	}
	if diff := cmp.Diff(strip(before), strip(after)); diff != "" {
		t.Errorf("the controller changed what it does not own (-before +after):\n%s", diff)
	}
	b, _ := json.Marshal(after.Status.LoadBalancer.Ingress)
	if string(b) != `[{"ip":"198.51.100.20","ipMode":"VIP"}]` {
		t.Errorf("status.loadBalancer.ingress = %s", b)
	}
	// And unassigning (the pool goes) removes only the pool annotation.
	if err := f.c.Delete(context.Background(), f.getPool("a")); err != nil {
		t.Fatal(err)
	}
	f.eventually("status and annotation cleared", 20*time.Second, func() (bool, string) {
		s := f.get("web")
		_, annotated := s.Annotations[v1beta1.AnnotationAllocatedFromPool]
		return len(s.Status.LoadBalancer.Ingress) == 0 && !annotated, ingressIPsString(s)
	})
	if diff := cmp.Diff(strip(before), strip(f.get("web"))); diff != "" {
		t.Errorf("clearing changed what the controller does not own (-before +after):\n%s", diff)
	}
}

func (f *fixture) getPool(name string) client.Object {
	f.t.Helper()
	var p v1beta1.IPAddressPool
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.herald, Name: name}, &p); err != nil {
		f.t.Fatalf("getting pool %s: %v", name, err)
	}
	return &p
}

func ingressIPsString(s *corev1.Service) string {
	b, _ := json.Marshal(s.Status.LoadBalancer.Ingress)
	return string(b) + " " + s.Annotations[v1beta1.AnnotationAllocatedFromPool]
}
