package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

// TestPendingServiceReportedOnce: a Service waiting for a full pool is retried every time an
// address is freed; it gets one AllocationFailed event, not one per retry, and assignments write
// no event on the Services (the pool gets a summary). An edit of the Service by its owner is
// answered again.
func TestPendingServiceReportedOnce(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.40/32"})
	f.pool("b", []string{"198.51.100.41/32"}, func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr.To(false) })
	writes := &writeCounter{}
	f.startWithConfig(writes.wrap(env.Config))
	f.service("holder")
	f.waitIPs("holder", 1)
	f.service("waiting", svcAnnotation(v1beta1.AnnotationAddressPool, "a"))
	f.waitEvent(f.ns, "waiting", service.ReasonAllocationFailed, `pool "a" is full`)
	errs := f.counter("herald_allocation_errors_total")

	// Each deletion of a Service of pool b frees an address and retries the waiting Service,
	// which pool a still cannot serve.
	const rounds = 3
	for i := range rounds {
		name := fmt.Sprintf("other-%d", i)
		f.service(name, svcAnnotation(v1beta1.AnnotationAddressPool, "b"))
		f.waitIPs(name, 1)
		if err := f.c.Delete(context.Background(), f.get(name)); err != nil {
			t.Fatal(err)
		}
	}
	f.eventually("the waiting Service retried after each freed address", 20*time.Second, func() (bool, string) {
		got := f.counter("herald_allocation_errors_total")
		return got >= errs+rounds, fmt.Sprintf("%v allocation errors, want %v", got, errs+rounds)
	})
	var list corev1.EventList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	reported := false
	for _, e := range list.Items {
		switch {
		case e.Source.Component != "herald-controller" && e.ReportingController != "herald-controller":
			// The API server's own, such as its ClusterIP repair loop's ClusterIPNotAllocated on a
			// Service created while it ran.
			continue
		case e.InvolvedObject.Name == "waiting" && e.Reason == service.ReasonAllocationFailed:
			reported = true
			if e.Count != 1 {
				t.Errorf("AllocationFailed on the waiting Service counted %d times, want once: %s", e.Count, e.Message)
			}
		default:
			t.Errorf("unexpected event on %s: %s %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	if !reported {
		t.Errorf("no AllocationFailed event from herald-controller on the waiting Service among %d events", len(list.Items))
	}
	if n := writes.count("/namespaces/" + f.ns + "/events"); n != 1 {
		t.Errorf("%d event writes in the Services' namespace, want 1 (the first AllocationFailed): %v", n, writes.paths())
	}

	// An edit of the Service by its owner gets its answer, even when the problem is the same.
	svc := f.get("waiting")
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Labels = map[string]string{"edited": "yes"}
	if err := f.c.Patch(context.Background(), svc, patch); err != nil {
		t.Fatal(err)
	}
	f.eventually("the edited Service reported again", 20*time.Second, func() (bool, string) {
		var list corev1.EventList
		if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.InvolvedObject.Name == "waiting" && e.Reason == service.ReasonAllocationFailed && e.Count == 2 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("events %v, want AllocationFailed on waiting counted twice", list.Items)
	})
}

// counter returns the sum of a counter's series of the running controller, or -1.
func (f *fixture) counter(name string) float64 {
	f.t.Helper()
	mfs, err := f.registry.Gather()
	if err != nil {
		f.t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var s float64
			for _, m := range mf.GetMetric() {
				s += m.GetCounter().GetValue()
			}
			return s
		}
	}
	return -1
}
