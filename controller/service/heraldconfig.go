package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

// maxListedReleases bounds the addresses a release report lists by name.
const maxListedReleases = 10

// reconcileConfig rebuilds the configuration from the cache with config.ParseUsable: every valid
// object is in force, an invalid one keeps its last valid version or, with none (at start-up, or a
// new object), is left out. A bad peer, Secret or advertisement never stops allocation; an invalid
// edit of a pool keeps the pool's last version, so its addresses stay. The usable pools replace
// the pools in force (restoring the Services' addresses first if that has not happened yet), and
// every problem is reported on its object and by metric.
func (c *Controller) reconcileConfig(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	snap, err := c.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	c.mu.Lock()
	last := c.lastCfg
	c.mu.Unlock()
	cfg, rep := config.ParseUsable(snap, last)
	c.reportConfig(ctx, snap, rep)

	c.mu.Lock()
	c.unusable = unusablePools(snap, cfg)
	if c.alloc == nil {
		err := c.restoreLocked(ctx, cfg)
		if err == nil {
			c.lastCfg = cfg
		}
		c.mu.Unlock()
		if err != nil {
			return reconcile.Result{}, err
		}
		c.afterRestore(cfg)
		return reconcile.Result{}, nil
	}
	fp := poolFingerprint(cfg)
	if fp == c.poolsFP {
		c.lastCfg = cfg
		c.mu.Unlock()
		return reconcile.Result{}, nil
	}
	released, err := c.alloc.SetPools(ToAllocatorPools(cfg))
	if err != nil {
		// ParseUsable accepted pools the allocator rejects: keep the pools in force.
		c.mu.Unlock()
		c.metrics.ConfigValid(false)
		ctrl.LoggerFrom(ctx).Error(err, "the allocator rejected the usable configuration; keeping the pools in force")
		return reconcile.Result{}, nil
	}
	c.lastCfg = cfg
	c.poolsFP = fp
	c.recordReleasesLocked(ctx, released)
	c.mu.Unlock()

	ctrl.LoggerFrom(ctx).Info("address pools changed", "pools", len(cfg.Pools), "released", len(released))
	c.reportReleases(released)
	c.enqueuePending()
	c.notifyPools(configPools(cfg)...)
	return reconcile.Result{}, nil
}

// unusablePools returns the pools of the snapshot that are not in force (invalid, with no last
// valid version): the Services holding their addresses are left as they are until they are fixed.
func unusablePools(snap config.Snapshot, cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for i := range snap.Pools {
		if name := snap.Pools[i].Name; cfg.Pools[name] == nil {
			out[name] = true
		}
	}
	return out
}

// snapshot reads every Herald object of the Herald namespace, and its Secrets, from the cache.
func (c *Controller) snapshot(ctx context.Context) (config.Snapshot, error) {
	s, err := kube.ReadSnapshot(ctx, crclient.Reader(c.client), c.opts.Namespace, true)
	if err != nil {
		return s, fmt.Errorf("reading the Herald configuration from the cache: %w", err)
	}
	return s, nil
}

// reportConfig sets the metrics and puts a Warning event on every object with a problem it did
// not report yet: the error (object, field, value and fix) and what the configuration keeps of
// the object; warnings (dangling references) likewise.
func (c *Controller) reportConfig(ctx context.Context, snap config.Snapshot, rep config.Report) {
	c.metrics.ConfigValid(len(rep.Errors) == 0)
	c.metrics.InvalidObjects(rep.InvalidObjects())

	type event struct {
		fe      *config.FieldError
		reason  string
		message string
	}
	var events []event
	for _, fe := range rep.Errors {
		events = append(events, event{fe, ReasonInvalidConfiguration, fe.Error() + "; " + rep.Fate(fe).Consequence()})
	}
	for _, fe := range rep.Warnings {
		events = append(events, event{fe, ReasonConfigurationWarning, fe.Error()})
	}
	reported := make(map[string]bool, len(events))
	c.mu.Lock()
	var fresh []event
	for _, e := range events {
		reported[e.message] = true
		if !c.cfgEvents[e.message] {
			fresh = append(fresh, e)
		}
	}
	wasInvalid := len(c.cfgEvents) > 0
	c.cfgEvents = reported
	c.mu.Unlock()

	switch {
	case len(rep.Errors) > 0 && len(fresh) > 0:
		ctrl.LoggerFrom(ctx).Info("some Herald configuration objects are invalid; each is left out or kept at its last valid version, the others are in force",
			"invalid", len(rep.Fates), "errors", rep.Errors.Error())
	case len(rep.Errors) == 0 && len(rep.Warnings) == 0 && wasInvalid:
		ctrl.LoggerFrom(ctx).Info("the Herald configuration is valid again")
	}
	for _, e := range fresh {
		if obj := findObject(snap, e.fe.Kind, e.fe.Name); obj != nil {
			c.recorder.Event(obj, corev1.EventTypeWarning, e.reason, e.message)
		}
	}
}

// findObject returns the object of the snapshot a FieldError names.
func findObject(s config.Snapshot, kind, name string) runtime.Object {
	find := func(n int, nameOf func(int) string, obj func(int) runtime.Object) runtime.Object {
		for i := range n {
			if nameOf(i) == name {
				return obj(i)
			}
		}
		return nil
	}
	switch kind {
	case config.KindIPAddressPool:
		return find(len(s.Pools), func(i int) string { return s.Pools[i].Name }, func(i int) runtime.Object { return &s.Pools[i] })
	case config.KindL2Advertisement:
		return find(len(s.L2Advertisements), func(i int) string { return s.L2Advertisements[i].Name }, func(i int) runtime.Object { return &s.L2Advertisements[i] })
	case config.KindBGPAdvertisement:
		return find(len(s.BGPAdvertisements), func(i int) string { return s.BGPAdvertisements[i].Name }, func(i int) runtime.Object { return &s.BGPAdvertisements[i] })
	case config.KindBGPPeer:
		return find(len(s.Peers), func(i int) string { return s.Peers[i].Name }, func(i int) runtime.Object { return &s.Peers[i] })
	case config.KindBFDProfile:
		return find(len(s.BFDProfiles), func(i int) string { return s.BFDProfiles[i].Name }, func(i int) runtime.Object { return &s.BFDProfiles[i] })
	case config.KindCommunity:
		return find(len(s.Communities), func(i int) string { return s.Communities[i].Name }, func(i int) runtime.Object { return &s.Communities[i] })
	}
	return nil
}

// restoreLocked creates the allocator and reserves every address found in the status of the
// Services the controller handles, in key order, from one List of the synced cache. Nothing is
// assigned before it returns. c.mu must be held.
func (c *Controller) restoreLocked(ctx context.Context, cfg *config.Config) error {
	alloc, err := allocator.New(ToAllocatorPools(cfg))
	if err != nil {
		return fmt.Errorf("creating the allocator: %w", err)
	}
	if err := c.services.waitSynced(ctx); err != nil {
		return fmt.Errorf("listing Services to restore their addresses: %w", err)
	}
	nsLabels, err := c.namespaceLabels(ctx)
	if err != nil {
		return err
	}
	views := c.services.views("")
	slices.SortFunc(views, func(a, b *serviceView) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	restored, failed, held := 0, 0, 0
	for _, v := range views {
		if !v.managed(c.opts.LBClass) || len(v.ingress) == 0 {
			continue
		}
		svc := v.service()
		ips, perr := v1beta1.IngressIPs(svc)
		desc, _ := ToAllocatorService(svc, nsLabels[svc.Namespace]) // a partial description still holds the addresses
		if desc == nil {
			continue
		}
		var rerr error
		if len(ips) > 0 {
			var res allocator.Result
			res, rerr = alloc.Reserve(desc, ips)
			restored += len(res.Assigned)
		}
		if err := errors.Join(perr, AllocationError(rerr)); err != nil {
			if pool := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]; c.unusable[pool] {
				held++ // left as it is until its pool is usable (see allocate)
				continue
			}
			failed++
			c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonIPNotRestored,
				"Could not keep the address in status after a restart: %v; the Service gets a valid address instead", err)
		}
	}
	c.alloc = alloc
	c.poolsFP = poolFingerprint(cfg)
	c.ready.Store(true)
	ctrl.LoggerFrom(ctx).Info("restored addresses from Services' status", "services", len(views), "addresses", restored, "rejected", failed,
		"held for pools not in force", held)
	return nil
}

// afterRestore requeues the Services that waited for the restore and publishes pool status.
func (c *Controller) afterRestore(cfg *config.Config) {
	c.enqueuePending()
	c.notifyPools(configPools(cfg)...)
}

// namespaceLabels returns the labels of every namespace, from the cache.
func (c *Controller) namespaceLabels(ctx context.Context) (map[string]map[string]string, error) {
	var list corev1.NamespaceList
	if err := c.client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(list.Items))
	for _, ns := range list.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}

// recordReleasesLocked keeps, per pool, a report of the addresses a pool change released, for
// the pool's AddressesReleased condition. c.mu must be held.
func (c *Controller) recordReleasesLocked(ctx context.Context, released []allocator.Assignment) {
	byPool := map[string][]allocator.Assignment{}
	for _, a := range released {
		byPool[a.Pool] = append(byPool[a.Pool], a)
	}
	for pool, as := range byPool {
		var parts []string
		for i, a := range as {
			if i == maxListedReleases {
				parts = append(parts, fmt.Sprintf("and %d more", len(as)-i))
				break
			}
			parts = append(parts, fmt.Sprintf("%s from %s", a.IP, a.Service))
		}
		var gen int64
		var p v1beta1.IPAddressPool
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.opts.Namespace, Name: pool}, &p); err == nil {
			gen = p.Generation
		}
		c.released[pool] = releaseReport{
			generation: gen,
			message: fmt.Sprintf("Released %d address(es) the pool no longer covers: %s. The Services were requeued for a new address.",
				len(as), strings.Join(parts, ", ")),
		}
	}
}

// reportReleases puts an event on every Service whose address a pool change released and
// requeues it.
func (c *Controller) reportReleases(released []allocator.Assignment) {
	for _, a := range released {
		req := requestFor(a.Service)
		if svc, ok := c.services.get(a.Service); ok {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonIPReleased,
				"Released %s: pool %s no longer covers it or no longer allows this Service; a new address is assigned if a pool allows", a.IP, a.Pool)
		}
		c.svcQueue.add(req)
	}
	c.notifyPools(poolNames(released)...)
}
