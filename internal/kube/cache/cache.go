// Package cache is the speaker's informer cache: one client-go shared informer per kind, each
// limited to a namespace and a label selector and transformed as its options say, read through
// the client package's Reader. It is what the speaker needs of controller-runtime's cache without
// controller-runtime (see internal/kube/client for why).
//
// A kind the options do not name gets a cluster-wide informer when first read or asked for, as
// controller-runtime's cache does; reads of it wait for its first list.
package cache

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/internal/kube/client"
)

// ByObject limits and transforms the cache of one kind.
type ByObject struct {
	// Namespace, when set, is the only namespace cached.
	Namespace string
	// Label, when set, selects the objects cached.
	Label labels.Selector
	// Transform, when set, runs on every object before it is stored (instead of
	// Options.DefaultTransform).
	Transform toolscache.TransformFunc
}

// Options configure a Cache.
type Options struct {
	// ByObject names the kinds cached from the start, by an empty object of each.
	ByObject map[client.Object]ByObject
	// DefaultTransform runs on the objects of kinds whose ByObject has no Transform.
	DefaultTransform toolscache.TransformFunc
}

// TransformStripManagedFields drops each object's managedFields.
func TransformStripManagedFields() toolscache.TransformFunc {
	return func(in any) (any, error) {
		if o, ok := in.(metav1.Object); ok {
			o.SetManagedFields(nil)
		}
		return in, nil
	}
}

// Informer is what a caller gets of one kind's informer.
type Informer interface {
	AddEventHandler(handler toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
	RemoveEventHandler(handle toolscache.ResourceEventHandlerRegistration) error
	HasSynced() bool
}

// Cache holds informers of the kinds its options name and of those read since.
type Cache struct {
	c    *client.REST
	opts Options

	mu        sync.Mutex
	informers map[reflect.Type]*entry
	ctx       context.Context // the context of Start, nil before it
}

type entry struct {
	inf     toolscache.SharedIndexInformer
	started bool
}

var _ client.Holder = (*Cache)(nil)

// New returns a cache that lists and watches through c. Start runs it.
func New(c *client.REST, opts Options) (*Cache, error) {
	ch := &Cache{c: c, opts: opts, informers: map[reflect.Type]*entry{}}
	for o, by := range opts.ByObject {
		if _, err := ch.add(o, by); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// add makes the informer of obj's kind.
func (ch *Cache) add(obj client.Object, by ByObject) (*entry, error) {
	t := reflect.TypeOf(obj)
	gvks, _, err := ch.c.Scheme().ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	gvk := gvks[0]
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	newList := func() (client.ObjectList, error) {
		l, err := ch.c.Scheme().New(listGVK)
		if err != nil {
			return nil, fmt.Errorf("cache: no list kind for %s: %w", gvk.Kind, err)
		}
		ol, ok := l.(client.ObjectList)
		if !ok {
			return nil, fmt.Errorf("cache: %T is not a list", l)
		}
		return ol, nil
	}
	if _, err := newList(); err != nil {
		return nil, err
	}
	sel := func(o metav1.ListOptions) *client.ListOptions {
		return &client.ListOptions{Raw: &o, Namespace: by.Namespace, LabelSelector: by.Label}
	}
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			l, err := newList()
			if err != nil {
				return nil, err
			}
			if err := ch.c.List(ctx, l, sel(o)); err != nil {
				return nil, err
			}
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			l, err := newList()
			if err != nil {
				return nil, err
			}
			return ch.c.Watch(ctx, l, sel(o))
		},
	}
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, obj, toolscache.SharedIndexInformerOptions{
		Indexers: toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc},
	})
	tf := by.Transform
	if tf == nil {
		tf = ch.opts.DefaultTransform
	}
	if tf != nil {
		if err := inf.SetTransform(tf); err != nil {
			return nil, err
		}
	}
	e := &entry{inf: inf}
	ch.informers[t] = e
	return e, nil
}

// Start runs the informers until ctx ends, and those added later from then on.
func (ch *Cache) Start(ctx context.Context) error {
	ch.mu.Lock()
	ch.ctx = ctx
	for _, e := range ch.informers {
		ch.run(e)
	}
	ch.mu.Unlock()
	<-ctx.Done()
	return nil
}

// run starts e's informer once; ch.mu is held and Start has been called.
func (ch *Cache) run(e *entry) {
	if e.started {
		return
	}
	e.started = true
	go e.inf.RunWithContext(ch.ctx)
}

// WaitForCacheSync waits until every informer has its first list, or ctx ends (false).
func (ch *Cache) WaitForCacheSync(ctx context.Context) bool {
	ch.mu.Lock()
	synced := make([]toolscache.InformerSynced, 0, len(ch.informers))
	for _, e := range ch.informers {
		synced = append(synced, e.inf.HasSynced)
	}
	ch.mu.Unlock()
	return toolscache.WaitForCacheSync(ctx.Done(), synced...)
}

// GetInformer returns the informer of obj's kind, made cluster-wide when the options did not name
// the kind.
func (ch *Cache) GetInformer(_ context.Context, obj client.Object) (Informer, error) {
	e, err := ch.entryOf(obj)
	if err != nil {
		return nil, err
	}
	return e.inf, nil
}

func (ch *Cache) entryOf(obj runtime.Object) (*entry, error) {
	t := reflect.TypeOf(obj)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if e, ok := ch.informers[t]; ok {
		return e, nil
	}
	o, ok := obj.(client.Object)
	if !ok {
		return nil, fmt.Errorf("cache: %T is not an object", obj)
	}
	e, err := ch.add(o, ByObject{})
	if err != nil {
		return nil, err
	}
	if ch.ctx != nil {
		ch.run(e)
	}
	return e, nil
}

// synced returns the entry of obj's kind once its informer has its first list.
func (ch *Cache) synced(ctx context.Context, obj runtime.Object) (*entry, error) {
	e, err := ch.entryOf(obj)
	if err != nil {
		return nil, err
	}
	if !e.inf.HasSynced() && !toolscache.WaitForCacheSync(ctx.Done(), e.inf.HasSynced) {
		return nil, fmt.Errorf("cache: waiting for the first list of %T: %w", obj, ctx.Err())
	}
	return e, nil
}

// Holds implements client.Holder: whether obj's kind (obj an object or a list) has an informer.
func (ch *Cache) Holds(obj runtime.Object) bool {
	if meta.IsListType(obj) {
		item, err := ch.itemOf(obj)
		if err != nil {
			return false
		}
		obj = item
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	_, ok := ch.informers[reflect.TypeOf(obj)]
	return ok
}

// itemOf returns a new object of the kind of list's items.
func (ch *Cache) itemOf(list runtime.Object) (runtime.Object, error) {
	gvks, _, err := ch.c.Scheme().ObjectKinds(list)
	if err != nil {
		return nil, err
	}
	gvk := gvks[0]
	gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	item, err := ch.c.Scheme().New(gvk)
	if err != nil {
		return nil, fmt.Errorf("cache: no object kind for %T: %w", list, err)
	}
	return item, nil
}

// Get implements client.Reader: a copy of the cached object named key.
func (ch *Cache) Get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	e, err := ch.synced(ctx, obj)
	if err != nil {
		return err
	}
	got, ok, err := e.inf.GetIndexer().GetByKey(toolscache.NewObjectName(key.Namespace, key.Name).String())
	if err != nil {
		return err
	}
	if !ok {
		gvr, _ := ch.c.Resource(obj)
		return apierrors.NewNotFound(gvr.GroupResource(), key.Name)
	}
	src := reflect.ValueOf(got.(runtime.Object).DeepCopyObject())
	dst := reflect.ValueOf(obj)
	if src.Type() != dst.Type() {
		return fmt.Errorf("cache: holds %s for %T", src.Type(), obj)
	}
	dst.Elem().Set(src.Elem())
	return nil
}

// List implements client.Reader: copies of the cached objects that the options select (the
// cached objects themselves with UnsafeDisableDeepCopy).
func (ch *Cache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := client.Apply(opts)
	item, err := ch.itemOf(list)
	if err != nil {
		return err
	}
	e, err := ch.synced(ctx, item)
	if err != nil {
		return err
	}
	var objs []any
	if o.Namespace != "" {
		objs, err = e.inf.GetIndexer().ByIndex(toolscache.NamespaceIndex, o.Namespace)
		if err != nil {
			return err
		}
	} else {
		objs = e.inf.GetIndexer().List()
	}
	items := make([]runtime.Object, 0, len(objs))
	for _, x := range objs {
		obj := x.(runtime.Object)
		if o.LabelSelector != nil {
			m, err := meta.Accessor(obj)
			if err != nil {
				return err
			}
			if !o.LabelSelector.Matches(labels.Set(m.GetLabels())) {
				continue
			}
		}
		if !o.UnsafeDisableDeepCopy {
			obj = obj.DeepCopyObject()
		}
		items = append(items, obj)
	}
	return meta.SetList(list, items)
}
