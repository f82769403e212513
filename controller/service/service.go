package service

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/allocator"
)

// staleRecheck bounds how long a reconcile that found the cache behind the controller's own
// writes waits for the watch event before it looks again.
const staleRecheck = 5 * time.Second

// outcome is what one reconcile decided for one Service under the allocator's lock.
type outcome struct {
	assigned []allocator.Assignment
	released []allocator.Assignment
	err      error // allocation or translation error, reported as AllocationFailed
	// heldFor names the pool, invalid and not in force, whose addresses the Service holds in
	// its status: the Service is left as it is until the pool is usable.
	heldFor string
	// foreign lists addresses in the Service's status that Herald never assigned and no pool
	// holds (given by another load balancer, or before Herald's configuration was applied): the
	// Service is left as it is, so that its address never moves by accident.
	foreign []netip.Addr
}

// reconcileService brings one Service's addresses, status and annotation in line with the
// allocator. It reads the Service from the cache and writes only what differs.
func (c *Controller) reconcileService(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := Key(req.Namespace, req.Name)
	svc, ok := c.services.get(key) // a copy of its own
	if !ok {
		c.guard.forget(key)
		c.forget(key)
		return reconcile.Result{}, nil
	}
	if c.guard.stale(key, svc.ResourceVersion) {
		return reconcile.Result{RequeueAfter: staleRecheck}, nil
	}
	if !v1beta1.ManagedService(svc, c.opts.LBClass) {
		return reconcile.Result{}, c.unmanage(ctx, svc)
	}

	var nsLabels map[string]string
	var ns corev1.Namespace
	if err := c.client.Get(ctx, client.ObjectKey{Name: svc.Namespace}, &ns); err == nil {
		nsLabels = ns.Labels
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("reading namespace %s from the cache: %w", svc.Namespace, err)
	}

	out, ok := c.allocate(ctx, svc, nsLabels)
	if !ok {
		return reconcile.Result{}, nil // requeued once the addresses are restored
	}
	if len(out.foreign) > 0 {
		msg := fmt.Sprintf("Leaving %s in status untouched: Herald did not assign it and no IPAddressPool holds it (given by another load balancer, or before Herald's configuration was applied). "+
			"Create a pool that holds it to let Herald take it over, or remove the status (or set %s) to get a new address",
			strings.Join(ingressIPs(svc.Status.LoadBalancer.Ingress), ", "), v1beta1.AnnotationLoadBalancerIPs)
		if c.firstReport(svc, msg) {
			c.recorder.Event(svc, corev1.EventTypeWarning, ReasonForeignAddress, msg)
		}
		return reconcile.Result{}, nil // requeued when the pools change
	}
	if out.heldFor != "" {
		msg := fmt.Sprintf("Keeping %s in status: IPAddressPool %s is invalid and has no earlier valid version in force (see its events); the addresses are neither released nor reassigned until it is fixed",
			strings.Join(ingressIPs(svc.Status.LoadBalancer.Ingress), ", "), out.heldFor)
		if c.firstReport(svc, msg) {
			c.recorder.Event(svc, corev1.EventTypeWarning, ReasonPoolNotInForce, msg)
		}
		return reconcile.Result{}, nil // requeued when the pools change
	}
	if len(out.released) > 0 {
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonIPReleased, "Released %s: %s", ips(out.released),
			"the Service's request, pool, families, ports or sharing key no longer allow it")
		c.enqueuePending()
	}
	if out.err != nil {
		c.metrics.AllocationError(ErrorReason(out.err))
		// A pending Service is retried whenever an address is freed or the pools change: it
		// gets one event per distinct problem, not one per retry.
		if c.firstReport(svc, out.err.Error()) {
			c.recorder.Event(svc, corev1.EventTypeWarning, ReasonAllocationFailed, out.err.Error())
		}
	}
	oldIPs := ingressIPs(svc.Status.LoadBalancer.Ingress)
	if err := c.write(ctx, svc, Ingress(out.assigned), PoolOf(out.assigned)); err != nil {
		return reconcile.Result{}, err
	}
	var added []allocator.Assignment
	for _, a := range out.assigned {
		if !slices.Contains(oldIPs, a.IP.String()) {
			added = append(added, a)
		}
	}
	// Assignments are reported per pool (see assignLog), not per Service: a burst of Services
	// costs each its status and annotation writes only.
	c.assigned.add(added)
	if len(added) > 0 || len(out.released) > 0 {
		c.notifyPools(poolNames(added, out.released)...)
	}
	return reconcile.Result{}, nil
}

// allocate asks the allocator for svc's addresses. It reports false when the addresses in the
// Services' status are not restored yet; the Service is then pending.
func (c *Controller) allocate(ctx context.Context, svc *corev1.Service, nsLabels map[string]string) (outcome, bool) {
	key := Key(svc.Namespace, svc.Name)
	desc, terr := ToAllocatorService(svc, nsLabels)
	statusIPs, _ := v1beta1.IngressIPs(svc)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alloc == nil {
		c.pending[key] = struct{}{}
		return outcome{}, false
	}
	held := c.alloc.Assignments(key)
	if len(held) == 0 && len(statusIPs) > 0 && desc != nil {
		// The status holds addresses the allocator does not know for this Service (written
		// after the restore listed it, or before a type change and back): keep them if valid.
		if _, err := c.alloc.Reserve(desc, statusIPs); err != nil {
			ctrl.LoggerFrom(ctx).V(1).Info("not keeping addresses from status", "service", key, "error", AllocationError(err))
		}
	}
	if foreign := c.foreignLocked(svc, statusIPs); len(foreign) > 0 {
		c.pending[key] = struct{}{}
		return outcome{foreign: foreign}, true
	}
	if pool := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]; c.unusable[pool] && len(statusIPs) > 0 && len(c.alloc.Assignments(key)) == 0 {
		// The Service's addresses come from a pool that is not in force: after a restart with
		// that pool invalid, its last valid version is unknown. Releasing or moving the
		// addresses would take them from a working Service; keep them until the pool is fixed.
		c.pending[key] = struct{}{}
		return outcome{heldFor: pool}, true
	}
	var out outcome
	if terr != nil {
		// A malformed request changes nothing: the Service keeps what it holds.
		out.assigned, out.err = c.alloc.Assignments(key), terr
	} else {
		res, err := c.alloc.Assign(desc)
		out.assigned, out.released, out.err = res.Assigned, res.Released, AllocationError(err)
		if err == nil && len(res.Missing) == 0 {
			delete(c.pending, key)
			delete(c.reported, key)
			return out, true
		}
	}
	c.pending[key] = struct{}{}
	return out, true
}

// firstReport reports whether msg is a problem not yet reported by event for the Service as its
// owner last wrote it, and remembers it as reported. A pending Service retried because an address
// was freed or the pools changed is not reported again for the same problem; one its owner changed
// (spec, labels or annotations) is, so that each of the owner's edits gets its answer.
func (c *Controller) firstReport(svc *corev1.Service, msg string) bool {
	return c.allocState.firstReport(Key(svc.Namespace, svc.Name), msg+"\n"+ownerState(svc))
}

// ownerState describes what the Service's owner writes: the spec (by its generation), the labels
// and the annotations but the one the controller writes. The controller's own writes leave it
// unchanged.
func ownerState(svc *corev1.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", svc.Generation)
	for _, m := range []map[string]string{svc.Labels, svc.Annotations} {
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range keys {
			if k == v1beta1.AnnotationAllocatedFromPool {
				continue
			}
			fmt.Fprintf(&b, "\x00%s=%s", k, m[k])
		}
		b.WriteString("\x01")
	}
	return b.String()
}

// foreignLocked returns the addresses of the Service's status that Herald must leave alone: the
// Service holds nothing in the allocator, Herald never wrote its pool annotation, it asks Herald
// for nothing in particular (no pool or address annotation), and none of its status addresses is
// in a pool. c.mu must be held.
func (c *Controller) foreignLocked(svc *corev1.Service, statusIPs []netip.Addr) []netip.Addr {
	if len(statusIPs) == 0 || len(c.alloc.Assignments(Key(svc.Namespace, svc.Name))) > 0 {
		return nil
	}
	for _, a := range []string{v1beta1.AnnotationAllocatedFromPool, v1beta1.AnnotationAddressPool, v1beta1.AnnotationLoadBalancerIPs} {
		if _, ok := svc.Annotations[a]; ok {
			return nil
		}
	}
	if svc.Spec.LoadBalancerIP != "" { // deprecated, but still a request
		return nil
	}
	for _, ip := range statusIPs {
		if _, ok := c.alloc.PoolOf(ip); ok {
			return nil
		}
	}
	return statusIPs
}

// forget releases a deleted Service's addresses and retries the pending Services if any were
// freed. Nothing else is touched.
func (c *Controller) forget(key string) {
	freed := c.release(key)
	if len(freed) > 0 {
		c.enqueuePending()
		c.notifyPools(poolNames(freed)...)
	}
}

// unmanage handles a Service the controller does not (or no longer) handle: it frees what the
// allocator holds for it and clears the status and annotation the controller wrote.
func (c *Controller) unmanage(ctx context.Context, svc *corev1.Service) error {
	freed := c.release(Key(svc.Namespace, svc.Name))
	// A Service of type LoadBalancer that the controller does not hold belongs to another
	// load-balancer implementation (or another Herald class): never touch it. One that is no
	// longer a LoadBalancer keeps nobody's address: clear what Herald wrote.
	_, annotated := svc.Annotations[v1beta1.AnnotationAllocatedFromPool]
	notLB := svc.Spec.Type != corev1.ServiceTypeLoadBalancer
	if len(freed) == 0 && (!annotated || !notLB) {
		return nil
	}
	if len(freed) > 0 {
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonIPReleased, "Released %s: the Service is no longer of type LoadBalancer with this controller's class", ips(freed))
		c.enqueuePending()
		c.notifyPools(poolNames(freed)...)
	}
	return c.write(ctx, svc, nil, "")
}

// write makes the Service's status and pool annotation what they should be, with at most one
// status patch and one metadata patch, and none when nothing changes.
func (c *Controller) write(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress, pool string) error {
	key := Key(svc.Namespace, svc.Name)
	seen := []string{svc.ResourceVersion}
	if IngressEqual(svc.Status.LoadBalancer.Ingress, ingress) && svc.Annotations[v1beta1.AnnotationAllocatedFromPool] == pool {
		c.guard.wrote(key, seen, svc.ResourceVersion) // nothing to write: the usual case, allocate nothing
		return nil
	}
	cur := svc.DeepCopy()
	defer func() { c.guard.wrote(key, seen, cur.ResourceVersion) }()

	if !IngressEqual(cur.Status.LoadBalancer.Ingress, ingress) {
		orig := cur.DeepCopy()
		cur.Status.LoadBalancer.Ingress = ingress
		if err := c.client.Status().Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("writing status.loadBalancer.ingress of %s: %w", key, err)
		}
		seen = append(seen, cur.ResourceVersion)
	}
	if cur.Annotations[v1beta1.AnnotationAllocatedFromPool] != pool {
		orig := cur.DeepCopy()
		if pool == "" {
			delete(cur.Annotations, v1beta1.AnnotationAllocatedFromPool)
		} else {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			cur.Annotations[v1beta1.AnnotationAllocatedFromPool] = pool
		}
		if err := c.client.Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("writing annotation %s of %s: %w", v1beta1.AnnotationAllocatedFromPool, key, err)
		}
	}
	return nil
}

func ips(as []allocator.Assignment) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.IP.String()
	}
	return strings.Join(parts, ", ")
}

func ingressIPs(in []corev1.LoadBalancerIngress) []string {
	out := make([]string, 0, len(in))
	for _, i := range in {
		out = append(out, i.IP)
	}
	return out
}
