package service_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/controller/service"
)

func TestAssignAndRelease(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.11"})
	f.start()
	f.service("web")
	ips := f.waitIPs("web", 1)
	if diff := cmp.Diff([]string{"198.51.100.10"}, ips); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	s := f.get("web")
	if got := s.Annotations[service.AnnotationAllocatedFromPool]; got != "a" {
		t.Errorf("annotation %s = %q, want a", service.AnnotationAllocatedFromPool, got)
	}
	if m := s.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode = %v, want VIP", m)
	}
	f.waitEvent(f.ns, "web", service.ReasonIPAllocated, "198.51.100.10", "pool a")
	if err := f.c.Delete(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}
