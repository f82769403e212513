package confstatus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

// Options configure a Writer.
type Options struct {
	// Namespace holds the Herald configuration objects.
	Namespace string
	// Parse finds the problems of a snapshot (default: Parse).
	Parse func(config.Snapshot) Problems
	// SkipNameValidation lets several managers run in one process (tests).
	SkipNameValidation bool
}

// Writer keeps the Valid condition of the configuration objects of one namespace.
type Writer struct {
	opts   Options
	log    logr.Logger
	client client.Client
}

// New returns a Writer; SetupWithManager starts it with the manager.
func New(o Options, log logr.Logger) (*Writer, error) {
	if o.Namespace == "" {
		return nil, errors.New("confstatus: Namespace is required")
	}
	if o.Parse == nil {
		o.Parse = Parse
	}
	return &Writer{opts: o, log: log}, nil
}

// conditioned is a configuration object with conditions (every kind of api/v1beta1 but the
// status kinds).
type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
}

func kinds() []conditioned {
	var out []conditioned
	for _, o := range kube.ConfigKinds() {
		out = append(out, o.(conditioned)) // every configuration kind has the Valid condition
	}
	return out
}

// SetupWithManager registers the writer: any change of a configuration object or a Secret of
// the namespace recomputes every object's condition (one queue key, so bursts coalesce). It runs
// on the leader only.
func (w *Writer) SetupWithManager(mgr ctrl.Manager) error {
	w.client = mgr.GetClient()
	key := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.opts.Namespace, Name: "config-status"}}
	toKey := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if o.GetNamespace() != w.opts.Namespace {
			return nil
		}
		return []reconcile.Request{key}
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("herald-config-status").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: &w.opts.SkipNameValidation})
	for _, o := range kinds() {
		b = b.Watches(o, toKey, builder.WithPredicates(needsCondition{}))
	}
	b = b.Watches(&corev1.Secret{}, toKey, builder.WithPredicates(predicate.Or(predicate.ResourceVersionChangedPredicate{}, predicate.LabelChangedPredicate{})))
	b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(key)
		return nil
	}))
	if err := b.Complete(reconcile.Func(w.reconcile)); err != nil {
		return fmt.Errorf("setting up the configuration status writer: %w", err)
	}
	return nil
}

// needsCondition passes creations, deletions, spec and label changes, and any update after
// which the object's Valid condition is missing or older than its spec (another writer of the
// status, such as the pool status, replaced it), but not the writer's own condition updates.
type needsCondition struct{ predicate.Funcs }

func (needsCondition) Create(event.CreateEvent) bool   { return true }
func (needsCondition) Delete(event.DeleteEvent) bool   { return true }
func (needsCondition) Generic(event.GenericEvent) bool { return false }
func (needsCondition) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return true
	}
	if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
		!equalLabels(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) {
		return true
	}
	o, ok := e.ObjectNew.(conditioned)
	if !ok {
		return true
	}
	c := meta.FindStatusCondition(o.GetConditions(), v1beta1.ConditionValid)
	return c == nil || c.ObservedGeneration != o.GetGeneration()
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// reconcile reads the configuration from the cache, finds its problems and patches the status
// of every object whose Valid condition differs.
func (w *Writer) reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	snap, err := kube.ReadSnapshot(ctx, crclient.Reader(w.client), w.opts.Namespace, true)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading the Herald configuration from the cache: %w", err)
	}
	objs := objects(&snap)
	infos := make([]Object, len(objs))
	for i, o := range objs {
		infos[i] = Object{Kind: kindOf(o), Name: o.GetName(), Generation: o.GetGeneration()}
	}
	want := Conditions(infos, w.opts.Parse(snap))
	var errs []error
	conflict := false
	for i, o := range objs {
		c, ok := want[Ref{Kind: infos[i].Kind, Name: infos[i].Name}]
		if !ok {
			continue
		}
		err := w.write(ctx, o, c)
		switch {
		case apierrors.IsConflict(err):
			conflict = true // the cache is behind the object: its update event requeues us
		case err != nil:
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: conflictRetry(conflict)}, nil
}

// conflictRetry is how soon a reconcile that lost a write to a newer object looks again, in
// case that object's update event does not pass needsCondition.
func conflictRetry(conflict bool) time.Duration {
	if conflict {
		return time.Second
	}
	return 0
}

// write patches the Valid condition of o when it differs from c. The patch carries o's
// resourceVersion: written over a newer object (one whose other conditions this writer has not
// seen yet), it fails and the reconcile is retried.
func (w *Writer) write(ctx context.Context, o conditioned, c metav1.Condition) error {
	cur := meta.FindStatusCondition(o.GetConditions(), v1beta1.ConditionValid)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message &&
		cur.ObservedGeneration == c.ObservedGeneration {
		return nil
	}
	orig, ok := o.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %s %s", kindOf(o), o.GetName())
	}
	conds := append([]metav1.Condition(nil), o.GetConditions()...)
	meta.SetStatusCondition(&conds, c)
	o.SetConditions(conds)
	err := w.client.Status().Patch(ctx, o, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	switch {
	case err == nil:
		w.log.V(1).Info("configuration object condition", "kind", kindOf(o), "name", o.GetName(),
			"valid", c.Status, "reason", c.Reason, "message", c.Message)
		return nil
	case apierrors.IsNotFound(err):
		return nil
	default:
		return fmt.Errorf("writing the Valid condition of %s %s/%s: %w", kindOf(o), o.GetNamespace(), o.GetName(), err)
	}
}

// objects returns pointers to every configuration object of s.
func objects(s *config.Snapshot) []conditioned {
	var out []conditioned
	for i := range s.Pools {
		out = append(out, &s.Pools[i])
	}
	for i := range s.L2Advertisements {
		out = append(out, &s.L2Advertisements[i])
	}
	for i := range s.BGPAdvertisements {
		out = append(out, &s.BGPAdvertisements[i])
	}
	for i := range s.Peers {
		out = append(out, &s.Peers[i])
	}
	for i := range s.BFDProfiles {
		out = append(out, &s.BFDProfiles[i])
	}
	for i := range s.Communities {
		out = append(out, &s.Communities[i])
	}
	return out
}

// kindOf returns the kind config.FieldError uses for o.
func kindOf(o client.Object) string {
	switch o.(type) {
	case *v1beta1.IPAddressPool:
		return config.KindIPAddressPool
	case *v1beta1.L2Advertisement:
		return config.KindL2Advertisement
	case *v1beta1.BGPAdvertisement:
		return config.KindBGPAdvertisement
	case *v1beta1.BGPPeer:
		return config.KindBGPPeer
	case *v1beta1.BFDProfile:
		return config.KindBFDProfile
	case *v1beta1.Community:
		return config.KindCommunity
	}
	return fmt.Sprintf("%T", o)
}
