package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/webhook"
)

// TestServiceReader checks the reader the webhook gets in the binary: Services from the
// controller's store, listed by the webhook's index of Services with an IP, by namespace and by
// label; Namespaces from the fallback.
func TestServiceReader(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.50/32"})
	f.start()
	f.service("with-ip", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "front"} })
	f.waitIPs("with-ip", 1)
	f.service("without") // the pool is full
	r := f.ctrl.ServiceReader(env.Client, webhook.IndexServiceIngress)
	ctx := context.Background()

	names := func(opts ...client.ListOption) []string {
		t.Helper()
		var list corev1.ServiceList
		if err := r.List(ctx, &list, opts...); err != nil {
			t.Fatalf("listing Services %v: %v", opts, err)
		}
		var out []string
		for _, s := range list.Items {
			if s.Namespace == f.ns {
				out = append(out, s.Name)
			}
		}
		return out
	}
	f.eventually("the store sees both Services", 10*time.Second, func() (bool, string) {
		got := names(client.InNamespace(f.ns))
		return slices.Equal(got, []string{"with-ip", "without"}), cmp.Diff([]string{"with-ip", "without"}, got)
	})
	if diff := cmp.Diff([]string{"with-ip"}, names(client.MatchingFields{webhook.IndexServiceIngress: "true"})); diff != "" {
		t.Errorf("Services with an IP (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"with-ip"}, names(client.InNamespace(f.ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(labels.Set{"tier": "front"})})); diff != "" {
		t.Errorf("Services by label (-want +got):\n%s", diff)
	}
	var list corev1.ServiceList
	if err := r.List(ctx, &list, client.MatchingFields{"spec.clusterIP": "x"}); err == nil {
		t.Error("an unsupported field selector was answered")
	}

	var svc corev1.Service
	if err := r.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "with-ip"}, &svc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"198.51.100.50"}, ingressIPs(&svc)); diff != "" || svc.Labels["tier"] != "front" || svc.UID == "" {
		t.Errorf("Get: %v %v %q (-want +got):\n%s", svc.Labels, svc.UID, svc.Name, diff)
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "nope"}, &svc); !apierrors.IsNotFound(err) {
		t.Errorf("Get of a missing Service: %v, want NotFound", err)
	}
	var ns corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: f.ns}, &ns); err != nil || ns.Name != f.ns {
		t.Errorf("Get of a Namespace through the fallback: %v %q", err, ns.Name)
	}
}

// TestWebhookReadsTheStore: the webhook, reading Services through the controller's store as the
// binary wires it, refuses to delete a pool whose address a Service holds and names the Service.
func TestWebhookReadsTheStore(t *testing.T) {
	f := newFixture(t)
	pool := f.pool("a", []string{"198.51.100.60/32"})
	f.start()
	f.service("web")
	f.waitIPs("web", 1)
	v := webhook.NewValidator(env.Client, f.ctrl.ServiceReader(env.Client, webhook.IndexServiceIngress), env.Client.Scheme(), f.herald, f.class)
	old, err := json.Marshal(pool)
	if err != nil {
		t.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: v1beta1.GroupVersion.Group, Version: v1beta1.GroupVersion.Version, Kind: "IPAddressPool"},
		Namespace: f.herald, Name: "a", Operation: admissionv1.Delete, OldObject: runtime.RawExtension{Raw: old},
	}}
	want := f.ns + "/web (holds 198.51.100.60: the pool is deleted)"
	f.eventually("the delete is refused naming the Service", 10*time.Second, func() (bool, string) {
		resp := v.Handle(context.Background(), req)
		return !resp.Allowed && strings.Contains(resp.Result.Message, want), resp.Result.Message
	})
}
