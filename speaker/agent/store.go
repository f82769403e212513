package agent

import (
	"context"
	"fmt"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/internal/kube/client"
)

// Services and EndpointSlices go straight into the model
//
// A speaker runs on every node and reads every Service and EndpointSlice of the cluster. An
// informer would keep each decoded object in its cache (about 1.5 KB for a trimmed Service and
// 0.8 KB for a trimmed EndpointSlice, with the store's key and namespace index), beside the
// model's own records of them. Instead, a client-go reflector lists and watches each kind and
// hands every object to a modelStore, which turns it into the model's record (a service, a
// sliceSummary) and lets the decoded object go. The model is then the only copy, and an update
// that changes nothing the speaker reads (a resync, address churn in a slice) is dropped there.

// modelStore is the store of a reflector that keeps nothing itself: it puts each object into the
// model and tells the agent when the model changed.
type modelStore struct {
	put    func(key string, obj runtime.Object) bool // nil obj: deleted; true: the model changed
	retain func(keep map[string]bool) bool           // forget every key not in keep
	trim   toolscache.TransformFunc                  // what the reflector's temporary store keeps
	// changed is called after the model changed; skipped counts updates that changed nothing.
	changed func()
	skipped func()
	synced  atomic.Bool // the first list was stored
}

var _ toolscache.TransformingStore = (*modelStore)(nil)

func (s *modelStore) Add(obj any) error    { return s.set(obj, false) }
func (s *modelStore) Update(obj any) error { return s.set(obj, false) }
func (s *modelStore) Delete(obj any) error { return s.set(obj, true) }
func (s *modelStore) Resync() error        { return nil }

func (s *modelStore) Transformer() toolscache.TransformFunc { return s.trim }

func (s *modelStore) set(obj any, deleted bool) error {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	key, o, err := keyOf(obj)
	if err != nil {
		return err
	}
	if deleted {
		o = nil
	}
	if s.put(key, o) {
		s.changed()
	} else {
		s.skipped()
	}
	return nil
}

// Replace stores a full list (the first, or a relist after the watch was lost) and forgets
// the objects that are not in it.
func (s *modelStore) Replace(list []any, _ string) error {
	keep := make(map[string]bool, len(list))
	changed := false
	for _, obj := range list {
		key, o, err := keyOf(obj)
		if err != nil {
			return err
		}
		keep[key] = true
		changed = s.put(key, o) || changed
	}
	changed = s.retain(keep) || changed
	s.synced.Store(true)
	if changed {
		s.changed()
	}
	return nil
}

func (s *modelStore) hasSynced() bool { return s.synced.Load() }

func keyOf(obj any) (string, runtime.Object, error) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return "", nil, fmt.Errorf("model store: %T is not an API object", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", nil, fmt.Errorf("model store: %w", err)
	}
	return objectKey(m.GetNamespace(), m.GetName()), o, nil
}

// serviceStore and sliceStore feed the agent's model.
func (a *Agent) serviceStore() *modelStore {
	return newModelStore(a, a.model.setService, a.model.retainServices, trim(TrimService))
}

func (a *Agent) sliceStore() *modelStore {
	return newModelStore(a, a.model.setSlice, a.model.retainSlices, trim(TrimEndpointSlice))
}

// newModelStore makes a store that hands objects of type T to set (nil: deleted).
func newModelStore[T any](a *Agent, set func(key string, obj *T) bool, retain func(keep map[string]bool) bool, trim toolscache.TransformFunc) *modelStore {
	return &modelStore{
		put: func(key string, obj runtime.Object) bool {
			o, _ := any(obj).(*T)
			return set(key, o)
		},
		retain: retain, trim: trim, changed: a.signal, skipped: a.pace.skipped.Inc,
	}
}

// runReflector starts a reflector that lists and watches the objects of expected's kind in
// namespace (cluster-wide when empty) through w into store, until ctx ends.
func runReflector(ctx context.Context, w client.WithWatch, namespace string, expected client.Object, newList func() client.ObjectList, store toolscache.ReflectorStore) {
	r := toolscache.NewReflectorWithOptions(listWatch(w, namespace, newList), expected, store, toolscache.ReflectorOptions{Name: fmt.Sprintf("herald-speaker %T", expected)})
	go r.RunWithContext(ctx)
}

// listWatch lists and watches the kind of newList's lists in namespace (cluster-wide when empty)
// through w.
func listWatch(w client.WithWatch, namespace string, newList func() client.ObjectList) *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			l := newList()
			// Raw carries the reflector's resource version, page size and continue token (it pages
			// a list that the watch cache cannot serve).
			if err := w.List(ctx, l, &client.ListOptions{Raw: &o, Namespace: namespace}); err != nil {
				return nil, err
			}
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return w.Watch(ctx, newList(), &client.ListOptions{Raw: &o, Namespace: namespace})
		},
	}
}
