package agent

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// The agent's loop is a reconciler of one key, the node's plan, on a work queue, as the
// controller's are: every source (API object changes, memberlist changes, address conflicts, the
// resync ticker) adds the key with its cause, a key added several times before it is reconciled is
// reconciled once (a burst becomes one computation, which reads every change made so far), and one
// worker reconciles it, so computations never overlap.
//
// Computations caused by API events only are paced (pacer): reconciling the key then re-adds it
// after the pause owed, as a reconciler's RequeueAfter. Every other cause reconciles at once, with
// no rate limit: a membership change re-elects as soon as the worker is free.

// planKey is the one key of the agent's work queue.
type planKey struct{}

// causes are the reasons for a reconcile gathered since the last one.
type causes struct {
	mu  sync.Mutex
	set map[string]bool
}

// add records cause and reports whether it was already waiting.
func (c *causes) add(cause string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set = map[string]bool{}
	}
	had := c.set[cause]
	c.set[cause] = true
	return had
}

// take returns the causes gathered and forgets them.
func (c *causes) take() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.set
	c.set = nil
	return s
}

// causeOrder is the cause a reconcile with several is counted under: any cause but syncAPI
// recomputes everything, which covers the API changes too, and a membership change is logged with
// its timings as a failover.
var causeOrder = []string{syncMembers, syncConflicts, syncResync, syncStart, syncAPI}

// enqueue asks for a reconcile for cause: at once, or after the pacing pause for syncAPI (decided
// when the key is reconciled). It never blocks.
func (a *Agent) enqueue(cause string) {
	if a.causes.add(cause) && cause == syncAPI {
		a.pace.coalesced.Inc() // an API change already waits for a reconcile, which reads this one too
		return
	}
	a.queue.Add(planKey{})
}

// forward adds the key with cause for every value received on ch until ctx ends: a channel
// source. A nil ch sends nothing.
func (a *Agent) forward(ctx context.Context, ch <-chan struct{}, cause string) {
	if ch == nil {
		return
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				a.enqueue(cause)
			}
		}
	}()
}

// resyncs adds the key with syncResync every period until ctx ends.
func (a *Agent) resyncs(ctx context.Context, period time.Duration) {
	ticker := time.NewTicker(period)
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				a.enqueue(syncResync)
			}
		}
	}()
}

// runLoop reconciles the key until ctx ends; a reconcile under way when it ends completes first.
func (a *Agent) runLoop(ctx context.Context) {
	stop := context.AfterFunc(ctx, a.queue.ShutDown)
	defer stop()
	pace := newPacer()
	for {
		key, shutdown := a.queue.Get()
		if shutdown || ctx.Err() != nil {
			if !shutdown {
				a.queue.Done(key)
			}
			return
		}
		a.reconcile(ctx, pace)
		a.queue.Done(key)
	}
}

// reconcile runs one computation for the causes gathered, or defers a paced one.
func (a *Agent) reconcile(ctx context.Context, pace *pacer) {
	got := a.causes.take()
	cause := ""
	for _, c := range causeOrder {
		if got[c] {
			cause = c
			break
		}
	}
	switch cause {
	case "":
		return // a paced reconcile whose changes an earlier computation already read
	case syncAPI:
		if wait := pace.wait(time.Now()); wait > 0 {
			a.causes.add(syncAPI)
			a.pace.coalesced.Inc()
			a.queue.AddAfter(planKey{}, wait)
			return
		}
	}
	if got[syncResync] {
		a.refreshInterfaces()
		a.status.Recheck()
		// Re-joining a node whose speaker is down blocks until the join times out: never in the
		// loop, which must react to membership changes at once.
		if a.joining.CompareAndSwap(false, true) {
			go func() { defer a.joining.Store(false); a.join(ctx) }()
		}
	}
	a.pacedSync(ctx, pace, cause)
}

// newPlanQueue returns the agent's work queue: no rate limit, only the delays of pacing.
func newPlanQueue() workqueue.TypedDelayingInterface[planKey] {
	return workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[planKey]{})
}
