// Package client is the speaker's Kubernetes client: reads, writes, lists and watches of typed
// objects over client-go's REST client, with a scheme of only the kinds the caller registers.
//
// The speaker runs on every node, so the code it links and runs at start is paid once per node in
// resident memory. controller-runtime's client (and client-go's typed clientsets, discovery and
// leader election) import client-go's kubernetes/scheme, which registers all 58 API groups of
// k8s.io/api at start, and controller-runtime's manager and cache bring their own machinery: 11 MiB
// of resident binary pages in the speaker (bench/NOTES.md, 2026-12-06). This package and its
// sibling cache do what the speaker needs of them with neither. The controller keeps
// controller-runtime; the packages both binaries share take this package's interfaces, and
// internal/kube/crclient adapts a controller-runtime client to them.
//
// Names follow controller-runtime's, so code reads the same on both sides: Object, ObjectList,
// ObjectKey, Reader, Writer, Client, WithWatch, InNamespace, MatchingLabels,
// MatchingLabelsSelector, UnsafeDisableDeepCopy, IgnoreNotFound.
package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Object is a Kubernetes object: metadata and a runtime type.
type Object interface {
	metav1.Object
	runtime.Object
}

// ObjectList is a list of Kubernetes objects.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// ObjectKey names an object: its namespace (empty for a cluster-scoped kind) and name.
type ObjectKey = types.NamespacedName

// Reader reads objects.
type Reader interface {
	// Get reads the object named key into obj.
	Get(ctx context.Context, key ObjectKey, obj Object) error
	// List reads the objects the options select into list.
	List(ctx context.Context, list ObjectList, opts ...ListOption) error
}

// Writer changes objects on the API server. Each call decodes the server's answer into obj.
type Writer interface {
	Create(ctx context.Context, obj Object) error
	Update(ctx context.Context, obj Object) error
	// Patch applies data, a patch of type pt, to the object obj names.
	Patch(ctx context.Context, obj Object, pt types.PatchType, data []byte) error
	Delete(ctx context.Context, obj Object) error
	// DeleteAllOf deletes the objects of obj's kind that the options select.
	DeleteAllOf(ctx context.Context, obj Object, opts ...ListOption) error
}

// StatusWriter writes the status subresource.
type StatusWriter interface {
	Update(ctx context.Context, obj Object) error
}

// Client reads and writes objects.
type Client interface {
	Reader
	Writer
	Status() StatusWriter
}

// WithWatch is a Client that also watches.
type WithWatch interface {
	Client
	// Watch watches the objects of list's kind that the options select.
	Watch(ctx context.Context, list ObjectList, opts ...ListOption) (watch.Interface, error)
}

// ListOptions select the objects of a list, a watch or a DeleteAllOf.
type ListOptions struct {
	Namespace     string
	LabelSelector labels.Selector
	// Raw, when set, is sent as it is (with Namespace and LabelSelector on top): a reflector's
	// resource version, page size and continue token.
	Raw *metav1.ListOptions
	// UnsafeDisableDeepCopy lets a cache's list share its stored objects, which the caller must
	// not change. A list from the API server ignores it.
	UnsafeDisableDeepCopy bool
}

// ListOption is one option of a list.
type ListOption interface{ ApplyToList(*ListOptions) }

// ApplyToList makes ListOptions an option itself (all its set fields).
func (o *ListOptions) ApplyToList(to *ListOptions) {
	if o.Namespace != "" {
		to.Namespace = o.Namespace
	}
	if o.LabelSelector != nil {
		to.LabelSelector = o.LabelSelector
	}
	if o.Raw != nil {
		to.Raw = o.Raw
	}
	if o.UnsafeDisableDeepCopy {
		to.UnsafeDisableDeepCopy = true
	}
}

// InNamespace selects the objects of one namespace.
type InNamespace string

// ApplyToList implements ListOption.
func (n InNamespace) ApplyToList(o *ListOptions) { o.Namespace = string(n) }

// MatchingLabels selects the objects with all these labels.
type MatchingLabels map[string]string

// ApplyToList implements ListOption.
func (m MatchingLabels) ApplyToList(o *ListOptions) {
	o.LabelSelector = labels.SelectorFromValidatedSet(labels.Set(m))
}

// MatchingLabelsSelector selects the objects that the selector matches.
type MatchingLabelsSelector struct{ labels.Selector }

// ApplyToList implements ListOption.
func (m MatchingLabelsSelector) ApplyToList(o *ListOptions) { o.LabelSelector = m.Selector }

type unsafeDisableDeepCopy struct{}

// ApplyToList implements ListOption.
func (unsafeDisableDeepCopy) ApplyToList(o *ListOptions) { o.UnsafeDisableDeepCopy = true }

// UnsafeDisableDeepCopy lets a cache's list share its objects (see ListOptions).
var UnsafeDisableDeepCopy ListOption = unsafeDisableDeepCopy{}

// Apply returns the options opts make.
func Apply(opts []ListOption) ListOptions {
	var o ListOptions
	for _, opt := range opts {
		opt.ApplyToList(&o)
	}
	return o
}

// IgnoreNotFound returns nil for a NotFound error, err otherwise.
func IgnoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// REST is a WithWatch over the API server's REST interface.
type REST struct {
	scheme *runtime.Scheme
	cfg    *rest.Config
	hc     *http.Client
	codecs serializer.CodecFactory

	mu      sync.Mutex
	clients map[schema.GroupVersionResource]*rest.RESTClient
}

var _ WithWatch = (*REST)(nil)

// New returns a client of the kinds scheme knows, talking to the API server of cfg through hc
// (rest.HTTPClientFor(cfg) when nil). Every kind is taken as namespaced unless the object's key or
// options name no namespace.
func New(cfg *rest.Config, hc *http.Client, scheme *runtime.Scheme) (*REST, error) {
	if hc == nil {
		var err error
		if hc, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(scheme)
	return &REST{
		scheme: scheme, cfg: rest.CopyConfig(cfg), hc: hc, codecs: codecs,
		clients: map[schema.GroupVersionResource]*rest.RESTClient{},
	}, nil
}

// Scheme returns the client's scheme.
func (c *REST) Scheme() *runtime.Scheme { return c.scheme }

// HTTPClient returns the client's HTTP client.
func (c *REST) HTTPClient() *http.Client { return c.hc }

// Resource returns the group, version and resource of obj's kind (an object or a list).
func (c *REST) Resource(obj runtime.Object) (schema.GroupVersionResource, error) {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	gvk := gvks[0]
	if meta.IsListType(obj) {
		gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	}
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural, nil
}

// restFor returns the REST client of gvr's resource. Each resource has its own, and so its own
// rate limit of the configuration's QPS and burst, as with controller-runtime's client (one per
// kind): the status writer's burst of ServiceL2Status writes at a takeover does not wait behind the
// reads of another kind.
//
// The built-in kinds (those whose Go types decode protobuf, as k8s.io/api's do) travel as
// protobuf, as controller-runtime's client and client-go's clientsets send them: a speaker decodes
// every Service and EndpointSlice of the cluster and each change to them, and JSON costs several
// times the CPU (a speaker of the 20-node lab, starved at start, missed its memberlist probes with
// JSON). Herald's own kinds are custom resources, which the API server serves as JSON only.
func (c *REST) restFor(gvr schema.GroupVersionResource, obj runtime.Object) (*rest.RESTClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.clients[gvr]; ok {
		return rc, nil
	}
	gv := gvr.GroupVersion()
	cfg := rest.CopyConfig(c.cfg)
	gvCopy := gv
	cfg.GroupVersion = &gvCopy
	cfg.APIPath = "/apis"
	if gv.Group == "" {
		cfg.APIPath = "/api"
	}
	cfg.ContentType = runtime.ContentTypeJSON
	if _, ok := obj.(interface{ Unmarshal([]byte) error }); ok {
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	}
	cfg.NegotiatedSerializer = c.codecs.WithoutConversion()
	rc, err := rest.RESTClientForConfigAndClient(cfg, c.hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", gv, err)
	}
	c.clients[gvr] = rc
	return rc, nil
}

// request starts a request of verb on obj's kind in namespace (none when empty).
func (c *REST) request(obj runtime.Object, verb, namespace string) (*rest.Request, error) {
	gvr, err := c.Resource(obj)
	if err != nil {
		return nil, err
	}
	rc, err := c.restFor(gvr, obj)
	if err != nil {
		return nil, err
	}
	return rc.Verb(verb).NamespaceIfScoped(namespace, namespace != "").Resource(gvr.Resource), nil
}

// Get implements Reader.
func (c *REST) Get(ctx context.Context, key ObjectKey, obj Object) error {
	req, err := c.request(obj, http.MethodGet, key.Namespace)
	if err != nil {
		return err
	}
	return req.Name(key.Name).Do(ctx).Into(obj)
}

// List implements Reader.
func (c *REST) List(ctx context.Context, list ObjectList, opts ...ListOption) error {
	o := Apply(opts)
	req, err := c.request(list, http.MethodGet, o.Namespace)
	if err != nil {
		return err
	}
	return req.SpecificallyVersionedParams(o.raw(), metav1.ParameterCodec, metav1.SchemeGroupVersion).Do(ctx).Into(list)
}

// Watch implements WithWatch.
func (c *REST) Watch(ctx context.Context, list ObjectList, opts ...ListOption) (watch.Interface, error) {
	o := Apply(opts)
	req, err := c.request(list, http.MethodGet, o.Namespace)
	if err != nil {
		return nil, err
	}
	raw := o.raw()
	raw.Watch = true
	return req.SpecificallyVersionedParams(raw, metav1.ParameterCodec, metav1.SchemeGroupVersion).Watch(ctx)
}

// raw is the query of o.
func (o ListOptions) raw() *metav1.ListOptions {
	var raw metav1.ListOptions
	if o.Raw != nil {
		raw = *o.Raw
	}
	if o.LabelSelector != nil {
		raw.LabelSelector = o.LabelSelector.String()
	}
	return &raw
}

// Create implements Writer.
func (c *REST) Create(ctx context.Context, obj Object) error {
	req, err := c.request(obj, http.MethodPost, obj.GetNamespace())
	if err != nil {
		return err
	}
	return req.Body(obj).Do(ctx).Into(obj)
}

// Update implements Writer.
func (c *REST) Update(ctx context.Context, obj Object) error {
	return c.update(ctx, obj, "")
}

func (c *REST) update(ctx context.Context, obj Object, sub string) error {
	req, err := c.request(obj, http.MethodPut, obj.GetNamespace())
	if err != nil {
		return err
	}
	req = req.Name(obj.GetName())
	if sub != "" {
		req = req.SubResource(sub)
	}
	return req.Body(obj).Do(ctx).Into(obj)
}

// Patch implements Writer.
func (c *REST) Patch(ctx context.Context, obj Object, pt types.PatchType, data []byte) error {
	req, err := c.request(obj, http.MethodPatch, obj.GetNamespace())
	if err != nil {
		return err
	}
	return req.Name(obj.GetName()).SetHeader("Content-Type", string(pt)).Body(data).Do(ctx).Into(obj)
}

// Delete implements Writer. A delete that the API server answers with the object (one with
// finalizers) leaves obj as it was.
func (c *REST) Delete(ctx context.Context, obj Object) error {
	req, err := c.request(obj, http.MethodDelete, obj.GetNamespace())
	if err != nil {
		return err
	}
	return req.Name(obj.GetName()).Do(ctx).Error()
}

// DeleteAllOf implements Writer.
func (c *REST) DeleteAllOf(ctx context.Context, obj Object, opts ...ListOption) error {
	o := Apply(opts)
	req, err := c.request(obj, http.MethodDelete, o.Namespace)
	if err != nil {
		return err
	}
	return req.SpecificallyVersionedParams(o.raw(), metav1.ParameterCodec, metav1.SchemeGroupVersion).Do(ctx).Error()
}

type statusWriter struct{ c *REST }

func (s statusWriter) Update(ctx context.Context, obj Object) error {
	return s.c.update(ctx, obj, "status")
}

// Status implements Client.
func (c *REST) Status() StatusWriter { return statusWriter{c} }

// Holder is a Reader that holds only some kinds (a cache of the kinds it was told to keep).
type Holder interface {
	Reader
	// Holds tells whether the objects of obj's kind (obj an object or a list) are held.
	Holds(obj runtime.Object) bool
}

// Split returns a client that reads the kinds cached holds through cached, and other kinds and
// every write through w.
func Split(cached Holder, w Client) Client { return split{cached, w} }

type split struct {
	r Holder
	w Client
}

func (s split) Get(ctx context.Context, key ObjectKey, obj Object) error {
	if s.r.Holds(obj) {
		return s.r.Get(ctx, key, obj)
	}
	return s.w.Get(ctx, key, obj)
}

func (s split) List(ctx context.Context, list ObjectList, opts ...ListOption) error {
	if s.r.Holds(list) {
		return s.r.List(ctx, list, opts...)
	}
	return s.w.List(ctx, list, opts...)
}

func (s split) Create(ctx context.Context, obj Object) error { return s.w.Create(ctx, obj) }
func (s split) Update(ctx context.Context, obj Object) error { return s.w.Update(ctx, obj) }
func (s split) Delete(ctx context.Context, obj Object) error { return s.w.Delete(ctx, obj) }
func (s split) Status() StatusWriter                         { return s.w.Status() }

func (s split) Patch(ctx context.Context, obj Object, pt types.PatchType, data []byte) error {
	return s.w.Patch(ctx, obj, pt, data)
}

func (s split) DeleteAllOf(ctx context.Context, obj Object, opts ...ListOption) error {
	return s.w.DeleteAllOf(ctx, obj, opts...)
}
