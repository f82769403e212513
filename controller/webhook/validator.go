package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

// Validator is the admission handler. It reads the current Herald objects and the Secrets that
// peers reference through reader (namespaced, uncached by default), and Services and Namespaces
// through cache (cluster-wide, from memory).
type Validator struct {
	reader    client.Reader
	cache     client.Reader
	decoder   admission.Decoder
	namespace string
	lbClass   string
}

// NewValidator returns a Validator for the Herald objects of namespace. lbClass is the
// controller's --lb-class: when a pool changes, only Services of that load-balancer class (of no
// class when lbClass is empty) count as holding its addresses. cache must serve the field index
// IndexServiceIngress on Services (see IndexServices). scheme must hold the Herald kinds: the
// objects under review are decoded with it.
func NewValidator(reader, cache client.Reader, scheme *runtime.Scheme, namespace, lbClass string) *Validator {
	return &Validator{reader: reader, cache: cache, decoder: admission.NewDecoder(scheme), namespace: namespace, lbClass: lbClass}
}

var _ admission.Handler = (*Validator)(nil)

// Handle answers one admission request.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != v1beta1.GroupVersion.Group {
		return admission.Allowed("not a Herald object")
	}
	obj, err := v.decode(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if obj == nil {
		return admission.Allowed("not a Herald configuration kind")
	}
	subject := Subject{Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name}
	if subject.Name == "" {
		subject.Name = obj.GetName()
	}
	if req.Namespace != v.namespace {
		return admission.Allowed("").WithWarnings(fmt.Sprintf(
			"%s is not in namespace %s; Herald ignores it: create Herald objects in %s", subject, v.namespace, v.namespace))
	}
	op := Operation(req.Operation)
	if op != Create && op != Update && op != Delete {
		return admission.Allowed("")
	}
	if op == Delete {
		if terminating, err := v.namespaceTerminating(ctx); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		} else if terminating {
			return admission.Allowed("namespace " + v.namespace + " is being deleted")
		}
	}
	before, err := v.snapshot(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	after, err := Apply(before, op, obj)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := v.addSecrets(ctx, &before, &after); err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	verdict := Check(before, after, subject, op)
	var warnings []string
	for _, e := range verdict.Warnings {
		if op == Delete {
			warnings = append(warnings, "after this delete: "+e.Error())
		} else {
			warnings = append(warnings, e.Error())
		}
	}
	if op != Delete {
		for _, e := range config.SecretsHiddenFromSpeakers(after) {
			if e.Kind == subject.Kind && e.Name == subject.Name {
				warnings = append(warnings, e.Error())
			}
		}
	}
	var users []ServiceRef
	if pool, ok := obj.(*v1beta1.IPAddressPool); ok && op != Create {
		old, updated := pool, (*v1beta1.IPAddressPool)(nil)
		if op == Update {
			if old, err = v.decodeOldPool(req); err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			updated = pool
		}
		if users, err = v.released(ctx, old, updated); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if len(users) > 0 && pool.Annotations[v1beta1.AnnotationAllowReleaseOfInUseIPs] == "true" {
			for _, u := range users {
				warnings = append(warnings, fmt.Sprintf("%s=true: Service %s loses its address", v1beta1.AnnotationAllowReleaseOfInUseIPs, u))
			}
			users = nil
		}
	}
	if len(verdict.Errors) > 0 || len(users) > 0 {
		return refusal(subject, verdict.Errors, users).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// released lists, from the cache, the Services whose addresses the change of pool old to
// updated (nil: deleted) releases.
func (v *Validator) released(ctx context.Context, old, updated *v1beta1.IPAddressPool) ([]ServiceRef, error) {
	var svcs corev1.ServiceList
	if err := v.cache.List(ctx, &svcs, client.MatchingFields{IndexServiceIngress: "true"}); err != nil {
		return nil, fmt.Errorf("listing the Services that hold addresses: %w", err)
	}
	nsLabels := map[string]map[string]string{}
	labelsOf := func(name string) map[string]string {
		if l, ok := nsLabels[name]; ok {
			return l
		}
		var ns corev1.Namespace
		if err := v.cache.Get(ctx, types.NamespacedName{Name: name}, &ns); err == nil {
			nsLabels[name] = ns.Labels
		} else {
			nsLabels[name] = nil
		}
		return nsLabels[name]
	}
	return Released(old, updated, svcs.Items, labelsOf, v.inCharge), nil
}

func (v *Validator) inCharge(svc *corev1.Service) bool { return v1beta1.ManagedService(svc, v.lbClass) }

// decode returns the object under review: the new object, or the old one on DELETE. It returns
// nil, nil for Herald kinds that are not configuration (the status kinds).
func (v *Validator) decode(req admission.Request) (client.Object, error) {
	obj := kube.NewConfigObject(req.Kind.Kind)
	if obj == nil {
		return nil, nil
	}
	raw := req.Object
	if req.Operation == admissionv1.Delete {
		raw = req.OldObject
	}
	if len(raw.Raw) == 0 {
		if req.Operation != admissionv1.Delete {
			return nil, fmt.Errorf("decoding %s %s/%s: the request has no object", req.Kind.Kind, req.Namespace, req.Name)
		}
		obj.SetNamespace(req.Namespace) // an old API server may omit oldObject on DELETE
		obj.SetName(req.Name)
		return obj, nil
	}
	if err := v.decoder.DecodeRaw(raw, obj); err != nil {
		return nil, fmt.Errorf("decoding %s %s/%s: %w", req.Kind.Kind, req.Namespace, req.Name, err)
	}
	return obj, nil
}

// decodeOldPool returns the pool as it was before an UPDATE.
func (v *Validator) decodeOldPool(req admission.Request) (*v1beta1.IPAddressPool, error) {
	var old v1beta1.IPAddressPool
	if err := v.decoder.DecodeRaw(req.OldObject, &old); err != nil {
		return nil, fmt.Errorf("decoding the old IPAddressPool %s/%s: %w", req.Namespace, req.Name, err)
	}
	return &old, nil
}

func (v *Validator) namespaceTerminating(ctx context.Context) (bool, error) {
	var ns corev1.Namespace
	if err := v.cache.Get(ctx, types.NamespacedName{Name: v.namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("reading namespace %s: %w", v.namespace, err)
	}
	return ns.DeletionTimestamp != nil, nil
}

// snapshot lists every Herald configuration object of the namespace (Secrets: see addSecrets).
func (v *Validator) snapshot(ctx context.Context) (config.Snapshot, error) {
	return kube.ReadSnapshot(ctx, crclient.Reader(v.reader), v.namespace, false)
}

// addSecrets reads the Secrets the peers of either snapshot reference and puts them in both.
// A missing Secret is left out (config reports the dangling reference).
func (v *Validator) addSecrets(ctx context.Context, before, after *config.Snapshot) error {
	names := append(ReferencedSecrets(*before), ReferencedSecrets(*after)...)
	seen := map[string]bool{}
	var secrets []corev1.Secret
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		var sec corev1.Secret
		err := v.reader.Get(ctx, types.NamespacedName{Namespace: v.namespace, Name: n}, &sec)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading Secret %s/%s that a BGPPeer references: %w", v.namespace, n, err)
		}
		secrets = append(secrets, sec)
	}
	before.Secrets, after.Secrets = secrets, secrets
	return nil
}

// refusal refuses a change the way the API server refuses an object (apierrors.NewInvalid over a
// field.ErrorList): one error per Service whose addresses it would release, on spec.addresses
// with the fix, and one per problem. A problem about another object than the one under review
// names that object in its detail. With problems the answer is 422 Invalid; with only Services
// in the way, 409 Conflict (the object is valid, the cluster's state is in the way).
func refusal(subject Subject, problems config.Errors, users []ServiceRef) admission.Response {
	errs := make(field.ErrorList, 0, len(users)+len(problems))
	for _, u := range users {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "addresses"), fmt.Sprintf(
			"Service %s would lose its address; delete it, change its type or move it to another pool first, "+
				"or confirm the release with the annotation %s: \"true\" on the pool", u, v1beta1.AnnotationAllowReleaseOfInUseIPs)))
	}
	for _, p := range problems {
		fe := p.FieldErr()
		if p.Kind != subject.Kind || p.Namespace != subject.Namespace || p.Name != subject.Name {
			fe.Detail = fmt.Sprintf("in %s %s/%s after this change: %s", p.Kind, p.Namespace, p.Name, fe.Detail)
		}
		errs = append(errs, fe)
	}
	gk := schema.GroupKind{Group: v1beta1.GroupVersion.Group, Kind: subject.Kind}
	status := apierrors.NewInvalid(gk, subject.Name, errs).ErrStatus
	if len(problems) == 0 {
		invalid := status
		gr := schema.GroupResource{Group: gk.Group, Resource: strings.ToLower(subject.Kind) + "s"}
		status = apierrors.NewConflict(gr, subject.Name, errs.ToAggregate()).ErrStatus
		status.Details.Kind, status.Details.Causes = subject.Kind, invalid.Details.Causes
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
}

// ErrNoNamespace is returned by Register when Options.Namespace is empty.
var ErrNoNamespace = errors.New("webhook: the Herald namespace is required")
