package service

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/allocator"
)

// reconcilePoolStatus writes a pool's address counts and its AddressesReleased condition when
// they differ from what the API server holds, and its IPAllocated event summarising the
// assignments since the last one. Notifications from Service reconciles reach it delayed by
// PoolStatusInterval and coalesced, so a burst of assignments writes each pool's status about
// once a second, and one event per SummaryInterval.
func (c *Controller) reconcilePoolStatus(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var pool v1beta1.IPAddressPool
	if err := c.client.Get(ctx, req.NamespacedName, &pool); err != nil {
		if apierrors.IsNotFound(err) {
			c.assigned.forget(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading IPAddressPool %s from the cache: %w", req.NamespacedName, err)
	}
	var result reconcile.Result
	msg, wait := c.assigned.take(req.Name, time.Now())
	if msg != "" {
		c.recorder.Event(&pool, corev1.EventTypeNormal, ReasonIPAllocated, msg)
	}
	result.RequeueAfter = wait
	key := req.Name
	if c.poolGuard.stale(key, pool.ResourceVersion) {
		if wait == 0 || wait > staleRecheck {
			result.RequeueAfter = staleRecheck
		}
		return result, nil
	}
	c.mu.Lock()
	var counts allocator.PoolCounts
	ok := false
	if c.alloc != nil {
		counts, ok = c.alloc.PoolCounts(req.Name)
	}
	report, hasReport := c.released[req.Name]
	c.mu.Unlock()
	if !ok {
		return result, nil // not in force (yet): an invalid pool keeps its last status
	}

	want := pool.Status.DeepCopy()
	want.AssignedIPv4 = counts.IPv4.Assigned.String()
	want.AvailableIPv4 = counts.IPv4.Available.String()
	want.AssignedIPv6 = counts.IPv6.Assigned.String()
	want.AvailableIPv6 = counts.IPv6.Available.String()
	if hasReport {
		meta.SetStatusCondition(&want.Conditions, metav1.Condition{
			Type:               ConditionAddressesReleased,
			Status:             metav1.ConditionTrue,
			Reason:             "PoolChanged",
			Message:            report.message,
			ObservedGeneration: report.generation,
		})
	}
	if equality.Semantic.DeepEqual(*want, pool.Status) {
		return result, nil
	}
	orig := pool.DeepCopy()
	pool.Status = *want
	if err := c.client.Status().Patch(ctx, &pool, client.MergeFrom(orig)); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("writing status of IPAddressPool %s: %w", req.NamespacedName, err)
	}
	c.poolGuard.wrote(key, []string{orig.ResourceVersion}, pool.ResourceVersion)
	return result, nil
}
