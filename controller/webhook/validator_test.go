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

	"github.com/google/go-cmp/cmp"

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

// poolInUse is a pool a, 192.0.2.0/28, in the API server, and the cache of a controller that
// holds Service apps/web with 192.0.2.5 from it (indexed by ingress IP, as the manager's is).
func poolInUse(t *testing.T) (*runtime.Scheme, *v1beta1.IPAddressPool, client.Client, client.Client) {
	t.Helper()
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
	return scheme, inUse, apiServer, cache
}

func TestValidatorReadsServicesFromTheCache(t *testing.T) {
	scheme, inUse, apiServer, cache := poolInUse(t)
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

// TestRefusalShape: a refusal is the API server's own: 422 Invalid with one cause per problem on
// its field, the object named; 409 Conflict when only Services holding addresses are in the way.
func TestRefusalShape(t *testing.T) {
	scheme, inUse, apiServer, cache := poolInUse(t)
	v := NewValidator(apiServer, cache, scheme, ns, "")

	type shape struct {
		Code    int32
		Reason  metav1.StatusReason
		Kind    string
		Name    string
		Causes  []metav1.StatusCause
		Message string
	}
	shapeOf := func(resp admission.Response) shape {
		if resp.Allowed || resp.Result == nil || resp.Result.Details == nil {
			t.Fatalf("allowed=%t result %v, want a refusal with details", resp.Allowed, resp.Result)
		}
		r := resp.Result
		return shape{Code: r.Code, Reason: r.Reason, Kind: r.Details.Kind, Name: r.Details.Name, Causes: r.Details.Causes, Message: r.Message}
	}
	fix := `; delete it, change its type or move it to another pool first, or confirm the release with the annotation ` +
		v1beta1.AnnotationAllowReleaseOfInUseIPs + `: "true" on the pool`

	reversed := pool("b", "192.0.2.40-192.0.2.30")
	got := shapeOf(v.Handle(t.Context(), request(t, admissionv1.Create, reversed, nil)))
	if len(got.Causes) != 1 {
		t.Fatalf("causes %v, want one", got.Causes)
	}
	reason := got.Causes[0].Message
	want := shape{Code: 422, Reason: metav1.StatusReasonInvalid, Kind: "IPAddressPool", Name: "b",
		Causes:  []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec.addresses[0]", Message: reason}},
		Message: `IPAddressPool.herald.dev "b" is invalid: spec.addresses[0]: ` + reason}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("invalid pool refusal mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(reason, `Invalid value: "192.0.2.40-192.0.2.30": `) {
		t.Errorf("cause %q does not name the value", reason)
	}

	got = shapeOf(v.Handle(t.Context(), request(t, admissionv1.Delete, nil, inUse)))
	cause := "Forbidden: Service apps/web (holds 192.0.2.5: the pool is deleted) would lose its address" + fix
	want = shape{Code: 409, Reason: metav1.StatusReasonConflict, Kind: "IPAddressPool", Name: "a",
		Causes:  []metav1.StatusCause{{Type: metav1.CauseTypeForbidden, Field: "spec.addresses", Message: cause}},
		Message: `Operation cannot be fulfilled on ipaddresspools.herald.dev "a": spec.addresses: ` + cause}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pool in use refusal mismatch (-want +got):\n%s", diff)
	}
}
