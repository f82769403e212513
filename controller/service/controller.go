package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/metrics"
	"github.com/herald-lb/herald/internal/kube"
)

// Event reasons the controller uses (defined, and described, in api/v1beta1).
const (
	ReasonIPAllocated          = v1beta1.EventReasonIPAllocated
	ReasonIPReleased           = v1beta1.EventReasonIPReleased
	ReasonAllocationFailed     = v1beta1.EventReasonAllocationFailed
	ReasonIPNotRestored        = v1beta1.EventReasonIPNotRestored
	ReasonInvalidConfiguration = v1beta1.EventReasonInvalidConfiguration
	// ReasonConfigurationWarning reports a reference to a pool or peer that does not exist.
	ReasonConfigurationWarning = v1beta1.EventReasonConfigurationWarning
	// ReasonPoolNotInForce reports a Service left as it is because its pool is invalid.
	ReasonPoolNotInForce = v1beta1.EventReasonPoolNotInForce
	// ReasonForeignAddress reports a Service left as it is because its status holds an address
	// Herald did not assign and no pool holds.
	ReasonForeignAddress = v1beta1.EventReasonForeignAddress
	// ConditionAddressesReleased is the IPAddressPool condition that reports addresses
	// released because the pool no longer covers them.
	ConditionAddressesReleased = "AddressesReleased"
)

// ErrNotReady is returned by the readiness check until the controller has restored the
// addresses in the Services' status.
var ErrNotReady = errors.New("addresses not restored yet (waiting for the cache)")

// Options configure the controller.
type Options struct {
	// Namespace holds the Herald objects (pools, advertisements, ...).
	Namespace string
	// LBClass: empty handles Services without spec.loadBalancerClass, otherwise only that class.
	LBClass string
	// MaxConcurrentReconciles of the Service controller (default DefaultServiceWorkers).
	// Allocator calls are serialised anyway (about a microsecond each); the workers overlap the
	// API writes, so a burst is assigned at the pace the API server accepts writes.
	MaxConcurrentReconciles int
	// PoolStatusInterval is the least time between two writes of one pool's status (default 1s).
	PoolStatusInterval time.Duration
	// SummaryInterval is the least time between two IPAllocated events of one pool, each
	// summarising the assignments since the last (default 10s).
	SummaryInterval time.Duration
	// Registry receives the controller's metrics.
	Registry prometheus.Registerer
	// SkipNameValidation lets several managers run in one process (tests).
	SkipNameValidation bool
}

// DefaultServiceWorkers is the default number of Services reconciled at once: enough to keep
// two writes per Service in flight for a burst of a few hundred Services per second on an API
// server that answers a write in 100-300 ms under that load.
const DefaultServiceWorkers = 64

// Controller wires the three reconcilers of the package (the Herald configuration, in
// heraldconfig.go; Services, in service.go; IPAddressPool status, in poolstatus.go) to the
// manager, with what they share: the clients, the queues and the allocation state (allocState).
type Controller struct {
	opts     Options
	client   client.Client // reads from the manager's cache (never Services: see services)
	services *serviceStore // the Services, compact
	recorder record.EventRecorder
	metrics  *metrics.Metrics

	svcQueue  queueRef
	poolQueue queueRef
	guard     staleGuard // Services
	poolGuard staleGuard // IPAddressPools
	ready     atomic.Bool
	assigned  *assignLog // assignments not yet reported by a pool's IPAllocated event

	allocState // the allocator and what the three reconcilers share, under one mutex
}

// New returns a Controller and registers its metrics in opts.Registry. The reconcilers log
// through the logger controller-runtime puts in each reconcile's context (the manager's, with
// the controller's name and the reconcile ID).
func New(opts Options) (*Controller, error) {
	if opts.Namespace == "" {
		return nil, errors.New("options: Namespace is required")
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = DefaultServiceWorkers
	}
	if opts.PoolStatusInterval <= 0 {
		opts.PoolStatusInterval = time.Second
	}
	if opts.SummaryInterval <= 0 {
		opts.SummaryInterval = 10 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	c := &Controller{
		opts:       opts,
		assigned:   newAssignLog(opts.SummaryInterval),
		allocState: newAllocState(),
	}
	m, err := metrics.New(opts.Registry, metrics.Sources{Pools: c.PoolCounts, Pending: c.pendingCount, AllocationErrorReasons: ErrorReasons()})
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// CacheOptions restricts the Herald objects and Secrets to the Herald namespace, strips
// managedFields, which the controller never reads, and keeps of each Service only what the
// controller and the webhook read (TrimService).
func CacheOptions(namespace string) cache.Options {
	inNS := cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}}
	by := map[client.Object]cache.ByObject{&corev1.Secret{}: inNS, &corev1.Service{}: {Transform: TrimService}}
	for _, o := range heraldKinds() {
		by[o] = inNS
	}
	return cache.Options{ByObject: by, DefaultTransform: cache.TransformStripManagedFields()}
}

// heraldKinds are the kinds that make up the configuration.
func heraldKinds() []client.Object {
	var out []client.Object
	for _, o := range kube.ConfigKinds() {
		out = append(out, o)
	}
	return out
}

// SetupWithManager registers the config, Service and pool status controllers.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	c.client = mgr.GetClient()
	// The core/v1 recorder on purpose: it raises an Event's count as each repeat happens, which
	// operators (kubectl describe) and the tests read. The events.k8s.io/v1 recorder
	// (mgr.GetEventRecorder) writes a repeat's series only every 30 minutes.
	c.recorder = mgr.GetEventRecorderFor("herald-controller")
	store, err := newServiceStore(mgr.GetConfig())
	if err != nil {
		return err
	}
	c.services = store
	if err := mgr.Add(store); err != nil {
		return fmt.Errorf("adding the Service cache: %w", err)
	}
	skip := &c.opts.SkipNameValidation

	configKey := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.opts.Namespace, Name: "config"}}
	toConfig := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{configKey}
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("herald-config").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: skip})
	changed := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	for _, o := range heraldKinds() {
		b = b.Watches(o, toConfig, changed)
	}
	b = b.Watches(&corev1.Secret{}, toConfig, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{}))
	// One reconcile at start even when the namespace holds no Herald object, so that the
	// addresses are restored and the controller gets ready.
	b = b.WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		q.Add(configKey)
		return nil
	}))
	if err := b.Complete(reconcile.Func(c.reconcileConfig)); err != nil {
		return fmt.Errorf("setting up the config controller: %w", err)
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("herald-service").
		WatchesRawSource(&source.Informer{Informer: store.informer, Handler: &handler.EnqueueRequestForObject{}}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(c.servicesInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(c.svcQueue.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: c.opts.MaxConcurrentReconciles, SkipNameValidation: skip}).
		Complete(reconcile.Func(c.reconcileService))
	if err != nil {
		return fmt.Errorf("setting up the Service controller: %w", err)
	}

	err = ctrl.NewControllerManagedBy(mgr).Named("herald-pool-status").
		// Spec changes and creation only: the controller's own status writes must not trigger
		// an immediate rewrite that would bypass the coalescing.
		For(&v1beta1.IPAddressPool{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(c.poolQueue.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: skip}).
		Complete(reconcile.Func(c.reconcilePoolStatus))
	if err != nil {
		return fmt.Errorf("setting up the pool status controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(c.releaseStartupMemory)); err != nil {
		return fmt.Errorf("adding the start-up memory release: %w", err)
	}
	return nil
}

// releaseStartupMemory gives the memory of the start-up back to the system once the addresses
// are restored and the Service queue has been worked through. The first List of every Service
// and the reconcile of each make the controller's largest heap (twice its live data at 10,000
// Services); the garbage collector would keep a heap sized for that peak until its next cycle,
// which an idle controller may not run for a long time.
func (c *Controller) releaseStartupMemory(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if c.ready.Load() && c.svcQueue.len() == 0 {
			debug.FreeOSMemory()
			return nil
		}
	}
}

// ReadyCheck is a healthz.Checker: ready once the addresses in the Services' status are restored.
func (c *Controller) ReadyCheck(*http.Request) error {
	if !c.ready.Load() {
		return ErrNotReady
	}
	return nil
}

// servicesInNamespace maps a Namespace whose labels changed to the managed Services in it.
func (c *Controller) servicesInNamespace(_ context.Context, ns client.Object) []reconcile.Request {
	var out []reconcile.Request
	for _, v := range c.services.views(ns.GetName()) {
		if v.managed(c.opts.LBClass) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: v.Namespace, Name: v.Name}})
		}
	}
	return out
}

// enqueuePending requeues every Service waiting for an address. Called when an address is
// freed or the pools change; the set holds only pending Services, never all of them.
func (c *Controller) enqueuePending() {
	keys := c.pendingKeys()
	reqs := make([]reconcile.Request, 0, len(keys))
	for _, key := range keys {
		reqs = append(reqs, requestFor(key))
	}
	c.svcQueue.add(reqs...)
}

// notifyPools schedules a status update of the named pools, coalesced.
func (c *Controller) notifyPools(names ...string) {
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		c.poolQueue.addAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.opts.Namespace, Name: n}},
			c.opts.PoolStatusInterval)
	}
}

// requestFor returns the request of a "namespace/name" key (the controller's keys of Services).
func requestFor(key string) reconcile.Request {
	ns, name, err := toolscache.SplitMetaNamespaceKey(key)
	if err != nil { // not a key the controller makes; the reconcile finds no such object
		name = key
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

// poolNames returns the pools of the given assignments.
func poolNames(lists ...[]allocator.Assignment) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			out = append(out, a.Pool)
		}
	}
	return out
}

// configPools returns the names of the pools of cfg.
func configPools(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	return cfg.PoolNames()
}
