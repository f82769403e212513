package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceStore is the controller's cache of Services: a client-go informer that keeps of each
// Service a serviceView, about a third of a trimmed corev1.Service (no 600-byte Service struct,
// no maps for Herald's four annotations or the selector), and hands out a trimmed
// *corev1.Service (see TrimService) built from it on each read. At 10,000 Services the Service
// cache is the controller's largest memory; the Services are never read from the manager's
// cache, which therefore holds none.
type serviceStore struct {
	informer toolscache.SharedIndexInformer
}

// errNotSynced means the store has not listed the Services yet.
var errNotSynced = errors.New("the Service cache is not synced yet")

func newServiceStore(cfg *rest.Config) (*serviceStore, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the Service client: %w", err)
	}
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.Services(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.Services(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, &corev1.Service{}, toolscache.SharedIndexInformerOptions{
		Indexers:          toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc},
		ObjectDescription: "Services (herald-controller)",
	})
	if err := inf.SetTransform(toView); err != nil {
		return nil, fmt.Errorf("setting the Service cache transform: %w", err)
	}
	return &serviceStore{informer: inf}, nil
}

// Start runs the informer until ctx ends (a manager Runnable).
func (s *serviceStore) Start(ctx context.Context) error {
	s.informer.RunWithContext(ctx)
	return nil
}

// NeedLeaderElection is false: every replica's webhook reads the Services.
func (*serviceStore) NeedLeaderElection() bool { return false }

// waitSynced waits until the store has listed every Service.
func (s *serviceStore) waitSynced(ctx context.Context) error {
	if !toolscache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced) {
		return errNotSynced
	}
	return nil
}

// get returns a trimmed copy of the Service namespace/name, which the caller owns.
func (s *serviceStore) get(key string) (*corev1.Service, bool) {
	obj, ok, err := s.informer.GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil, false
	}
	v, ok := obj.(*serviceView)
	if !ok {
		return nil, false
	}
	return v.service(), true
}

// views returns every Service's view, unsorted, or those of namespace when it is not empty. The
// views are shared: read them, never change them.
func (s *serviceStore) views(namespace string) []*serviceView {
	var objs []any
	if namespace == "" {
		objs = s.informer.GetStore().List()
	} else {
		var err error
		if objs, err = s.informer.GetIndexer().ByIndex(toolscache.NamespaceIndex, namespace); err != nil {
			return nil
		}
	}
	out := make([]*serviceView, 0, len(objs))
	for _, o := range objs {
		if v, ok := o.(*serviceView); ok {
			out = append(out, v)
		}
	}
	return out
}

// serviceView is what the store keeps of a Service: exactly what TrimService keeps, in compact
// form. It is a client.Object (for the informer and controller-runtime's event handlers) whose
// ObjectMeta holds the name, namespace, UID, resourceVersion and labels only.
type serviceView struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	typ        corev1.ServiceType
	class      *string
	policy     *corev1.IPFamilyPolicy
	families   []corev1.IPFamily
	etp        corev1.ServiceExternalTrafficPolicy
	lbIP       string
	selector   string            // labels.Set(spec.selector).String(): "a=b,c=d", sorted
	selectorM  map[string]string // spec.selector when its string form does not parse back (not a valid label set)
	ports      []viewPort
	ingress    []corev1.LoadBalancerIngress
	generation int64
	deletion   *metav1.Time
	// Herald's annotations, which may be present and empty.
	annotations []annotation
}

type viewPort struct {
	port     int32
	protocol corev1.Protocol
}

type annotation struct{ key, value string }

// toView is the informer's transform: *corev1.Service -> *serviceView. Strings that repeat across
// Services (namespaces, types, classes, families, protocols, annotation keys) are interned.
func toView(obj any) (any, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil // a tombstone: its object is already a view
	}
	v := &serviceView{
		ObjectMeta: metav1.ObjectMeta{
			Name:            svc.Name,
			Namespace:       intern(svc.Namespace),
			UID:             svc.UID,
			ResourceVersion: svc.ResourceVersion,
			Labels:          svc.Labels,
		},
		typ:        corev1.ServiceType(intern(string(svc.Spec.Type))),
		etp:        corev1.ServiceExternalTrafficPolicy(intern(string(svc.Spec.ExternalTrafficPolicy))),
		lbIP:       svc.Spec.LoadBalancerIP,
		generation: svc.Generation,
		deletion:   svc.DeletionTimestamp,
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		v.class = internPtr(*c)
	}
	if p := svc.Spec.IPFamilyPolicy; p != nil {
		v.policy = (*corev1.IPFamilyPolicy)(internPtr(string(*p)))
	}
	v.families = internFamilies(svc.Spec.IPFamilies)
	if sel := svc.Spec.Selector; len(sel) > 0 {
		v.selector = labels.Set(sel).String()
		if back, err := labels.ConvertSelectorToLabelsMap(v.selector); err != nil || !maps.Equal(back, labels.Set(sel)) {
			v.selector, v.selectorM = "", sel
		}
	}
	if len(svc.Spec.Ports) > 0 {
		v.ports = make([]viewPort, len(svc.Spec.Ports))
		for i, p := range svc.Spec.Ports {
			v.ports[i] = viewPort{port: p.Port, protocol: corev1.Protocol(intern(string(p.Protocol)))}
		}
	}
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		v.ingress = svc.Status.LoadBalancer.Ingress
	}
	for k, val := range svc.Annotations {
		if strings.HasPrefix(k, heraldAnnotationPrefix) {
			v.annotations = append(v.annotations, annotation{intern(k), internIfShort(val)})
		}
	}
	slices.SortFunc(v.annotations, func(a, b annotation) int { return strings.Compare(a.key, b.key) })
	return v, nil
}

// service returns a new trimmed Service (what TrimService returns for the original).
func (v *serviceView) service() *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:              v.Name,
			Namespace:         v.Namespace,
			UID:               v.UID,
			ResourceVersion:   v.ResourceVersion,
			Generation:        v.generation,
			DeletionTimestamp: v.deletion.DeepCopy(),
			Labels:            maps.Clone(v.Labels),
		},
		Spec: corev1.ServiceSpec{
			Type:                  v.typ,
			ExternalTrafficPolicy: v.etp,
			LoadBalancerIP:        v.lbIP,
			IPFamilies:            slices.Clone(v.families),
		},
	}
	if v.class != nil {
		s.Spec.LoadBalancerClass = ptr.To(*v.class)
	}
	if v.policy != nil {
		s.Spec.IPFamilyPolicy = ptr.To(*v.policy)
	}
	switch {
	case v.selector != "":
		// toView checked that the string parses back to the selector.
		if sel, err := labels.ConvertSelectorToLabelsMap(v.selector); err == nil {
			s.Spec.Selector = sel
		}
	case v.selectorM != nil:
		s.Spec.Selector = maps.Clone(v.selectorM)
	}
	if len(v.ports) > 0 {
		s.Spec.Ports = make([]corev1.ServicePort, len(v.ports))
		for i, p := range v.ports {
			s.Spec.Ports[i] = corev1.ServicePort{Port: p.port, Protocol: p.protocol}
		}
	}
	if len(v.ingress) > 0 {
		s.Status.LoadBalancer.Ingress = make([]corev1.LoadBalancerIngress, len(v.ingress))
		for i := range v.ingress {
			v.ingress[i].DeepCopyInto(&s.Status.LoadBalancer.Ingress[i])
		}
	}
	if len(v.annotations) > 0 {
		s.Annotations = make(map[string]string, len(v.annotations))
		for _, a := range v.annotations {
			s.Annotations[a.key] = a.value
		}
	}
	return s
}

// managed is Managed for the view.
func (v *serviceView) managed(lbClass string) bool {
	if v.typ != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if v.class == nil {
		return lbClass == ""
	}
	return *v.class == lbClass
}

// hasIngressIP reports whether the Service's status lists an IP.
func (v *serviceView) hasIngressIP() bool {
	for _, in := range v.ingress {
		if in.IP != "" {
			return true
		}
	}
	return false
}

// DeepCopyObject implements runtime.Object. Views are never changed once stored, so a copy of
// the struct with its slices shared is a deep copy for every use the informer makes of it.
func (v *serviceView) DeepCopyObject() runtime.Object {
	c := *v
	v.DeepCopyInto(&c.ObjectMeta)
	return &c
}

// GetObjectKind implements runtime.Object.
func (v *serviceView) GetObjectKind() schema.ObjectKind { return &v.TypeMeta }

// maxInterned bounds the length of an annotation value worth interning: pool names are short,
// requested addresses and sharing keys differ per Service.
const maxInterned = 63

func intern(s string) string { return unique.Make(s).Value() }

func internIfShort(s string) string {
	if len(s) > maxInterned {
		return s
	}
	return intern(s)
}

func internPtr(s string) *string {
	v := intern(s)
	return &v
}

// familySets are the ipFamilies lists a Service can have, shared by every view.
var familySets = [][]corev1.IPFamily{
	{corev1.IPv4Protocol}, {corev1.IPv6Protocol},
	{corev1.IPv4Protocol, corev1.IPv6Protocol}, {corev1.IPv6Protocol, corev1.IPv4Protocol},
}

func internFamilies(fs []corev1.IPFamily) []corev1.IPFamily {
	if len(fs) == 0 {
		return nil
	}
	for _, set := range familySets {
		if slices.Equal(set, fs) {
			return set
		}
	}
	return slices.Clone(fs)
}

// ServiceReader returns a client.Reader for the webhook (webhook.Options.Cache): Services come
// from the controller's store, everything else from fallback (the manager's cache, for
// Namespaces). A List of Services supports a namespace, a label selector, and the field
// selector ingressIndex=true (the webhook's index of Services whose status holds an IP). It must
// be called after SetupWithManager.
func (c *Controller) ServiceReader(fallback client.Reader, ingressIndex string) client.Reader {
	return &storeReader{store: c.services, fallback: fallback, ingressIndex: ingressIndex}
}

type storeReader struct {
	store        *serviceStore
	fallback     client.Reader
	ingressIndex string
}

// errUnsupportedSelector is returned for a field selector the store cannot answer.
var errUnsupportedSelector = errors.New("unsupported field selector on the controller's Service store")

func (r *storeReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	out, ok := obj.(*corev1.Service)
	if !ok {
		return r.fallback.Get(ctx, key, obj, opts...)
	}
	if err := r.store.waitSynced(ctx); err != nil {
		return err
	}
	svc, found := r.store.get(Key(key.Namespace, key.Name))
	if !found {
		return apierrors.NewNotFound(corev1.Resource("services"), key.Name)
	}
	*out = *svc
	return nil
}

func (r *storeReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	out, ok := list.(*corev1.ServiceList)
	if !ok {
		return r.fallback.List(ctx, list, opts...)
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	withIP := false
	if o.FieldSelector != nil && !o.FieldSelector.Empty() {
		v, found := o.FieldSelector.RequiresExactMatch(r.ingressIndex)
		if !found || v != "true" || len(o.FieldSelector.Requirements()) != 1 {
			return fmt.Errorf("%w: %s", errUnsupportedSelector, o.FieldSelector)
		}
		withIP = true
	}
	if err := r.store.waitSynced(ctx); err != nil {
		return err
	}
	out.Items = out.Items[:0]
	for _, v := range r.store.views(o.Namespace) {
		if withIP && !v.hasIngressIP() {
			continue
		}
		if o.LabelSelector != nil && !o.LabelSelector.Matches(labels.Set(v.Labels)) {
			continue
		}
		out.Items = append(out.Items, *v.service())
	}
	slices.SortFunc(out.Items, func(a, b corev1.Service) int {
		return strings.Compare(Key(a.Namespace, a.Name), Key(b.Namespace, b.Name))
	})
	return nil
}
