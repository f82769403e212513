package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
)

// noServiceLists is the uncached reader of a Validator: it fails the test when asked for
// Services or Namespaces, which a review must read from the cache.
type noServiceLists struct {
	client.Reader
	t *testing.T
}

func (r noServiceLists) List(ctx context.Context, l client.ObjectList, opts ...client.ListOption) error {
	switch l.(type) {
	case *corev1.ServiceList, *corev1.NamespaceList:
		r.t.Errorf("uncached LIST of %T during a review", l)
	}
	return r.Reader.List(ctx, l, opts...)
}

func (r noServiceLists) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	switch o.(type) {
	case *corev1.Service, *corev1.Namespace:
		r.t.Errorf("uncached GET of %T during a review", o)
	}
	return r.Reader.Get(ctx, key, o, opts...)
}

func request(t *testing.T, op admissionv1.Operation, obj, old client.Object) admission.Request {
	t.Helper()
	raw := func(o client.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	name := obj
	if name == nil {
		name = old
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: v1beta1.GroupVersion.Group, Version: v1beta1.GroupVersion.Version, Kind: "IPAddressPool"},
		Namespace: ns, Name: name.GetName(), Operation: op, Object: raw(obj), OldObject: raw(old),
	}}
}

func TestValidatorReadsServicesFromTheCache(t *testing.T) {
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	inUse := pool("a", "192.0.2.0/28")
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.5"}}}}}
	apiServer := fake.NewClientBuilder().WithScheme(scheme).WithObjects(inUse).Build()
	cache := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(web, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}).
		WithIndex(&corev1.Service{}, IndexServiceIngress, ServiceIngressIndex).Build()
	v := NewValidator(noServiceLists{Reader: apiServer, t: t}, cache, scheme, ns, "")

	resp := v.Handle(t.Context(), request(t, admissionv1.Delete, nil, inUse))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "apps/web (holds 192.0.2.5: the pool is deleted)") {
		t.Errorf("delete of a pool in use: allowed=%t %v", resp.Allowed, resp.Result)
	}
	shrunk := inUse.DeepCopy()
	shrunk.Spec.Addresses = []string{"192.0.2.8/29"}
	resp = v.Handle(t.Context(), request(t, admissionv1.Update, shrunk, inUse))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "apps/web (holds 192.0.2.5: no longer in spec.addresses)") {
		t.Errorf("shrink under an address in use: allowed=%t %v", resp.Allowed, resp.Result)
	}
	shrunk.Annotations = map[string]string{v1beta1.AnnotationAllowReleaseOfInUseIPs: "true"}
	resp = v.Handle(t.Context(), request(t, admissionv1.Update, shrunk, inUse))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "apps/web") {
		t.Errorf("confirmed shrink: allowed=%t warnings %q", resp.Allowed, resp.Warnings)
	}
}

func TestValidatorRejectsUndecodableObject(t *testing.T) {
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	v := NewValidator(c, c, scheme, ns, "")
	req := request(t, admissionv1.Create, pool("a", "192.0.2.0/28"), nil)
	req.Object.Raw = []byte(`{"apiVersion":"herald.dev/v1beta1","kind":"IPAddressPool","spec":{"addresses":"not a list"}}`)
	resp := v.Handle(t.Context(), req)
	if resp.Allowed || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, "decoding IPAddressPool "+ns+"/a") {
		t.Errorf("undecodable object: allowed=%t %v, want a 400 naming the object", resp.Allowed, resp.Result)
	}
}
