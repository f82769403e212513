package service

import (
	"context"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// queueRef gives one controller's work queue to the others: its source only records the queue
// when the controller starts. Adds before that are dropped, which is safe because a starting
// controller lists every object of its kind anyway.
//
// controller-runtime's source.Channel does not do this job: a send on its channel blocks while
// the controller has not started (or its buffer is full), and the callers send from reconciles
// and allocator callbacks that must not wait; it has no AddAfter, which coalesces a burst of
// pool status updates into one; and it hides the queue, whose length releaseStartupMemory reads.
type queueRef struct {
	q atomic.Pointer[workqueue.TypedRateLimitingInterface[reconcile.Request]]
}

func (r *queueRef) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		r.q.Store(&q)
		return nil
	})
}

func (r *queueRef) add(reqs ...reconcile.Request) {
	q := r.q.Load()
	if q == nil {
		return
	}
	for _, req := range reqs {
		(*q).Add(req)
	}
}

// len returns the number of requests waiting, or -1 before the controller starts.
func (r *queueRef) len() int {
	q := r.q.Load()
	if q == nil {
		return -1
	}
	return (*q).Len()
}

// addAfter adds req after d; a request already waiting keeps its earlier time, which is what
// coalesces a burst of notifications into one reconcile.
func (r *queueRef) addAfter(req reconcile.Request, d time.Duration) {
	if q := r.q.Load(); q != nil {
		(*q).AddAfter(req, d)
	}
}
