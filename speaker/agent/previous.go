package agent

import (
	"context"
	"fmt"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
)

// previousStatus holds the names of this node's ServiceL2Status and ServiceBGPStatus objects
// while the speaker starts: those the speaker before it wrote. Until the speaker reports (see
// Agent.statusOpen), a Service they name is no news when it takes it up (events). It is emptied
// for good when the speaker first reports.
type previousStatus struct {
	mu     sync.Mutex
	names  map[string]bool // kind + "/" + object name; nil once closed
	remove []func()
}

// watchPreviousStatus records this node's ServiceBGPStatus objects as the cache lists them (its
// ServiceL2Status objects come from the agent's store: watchL2Status calls p.note); the first
// computation waits for the whole list (a.synced).
func (a *Agent) watchPreviousStatus(ctx context.Context) error {
	p := &a.prev
	p.names = map[string]bool{}
	inf, err := a.opts.Cache.GetInformer(ctx, &v1beta1.ServiceBGPStatus{})
	if err != nil {
		return fmt.Errorf("reading this node's ServiceBGPStatus objects: %w", err)
	}
	note := func(obj any, present bool) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		o, ok := obj.(client.Object)
		if !ok || o.GetNamespace() != a.opts.Namespace || o.GetLabels()[LabelNode] != a.opts.NodeName {
			return
		}
		p.note("bgp", o.GetName(), present)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { note(obj, true) },
		DeleteFunc: func(obj any) { note(obj, false) },
	})
	if err != nil {
		return fmt.Errorf("reading this node's ServiceBGPStatus objects: %w", err)
	}
	a.synced = append(a.synced, reg.HasSynced)
	p.remove = append(p.remove, func() { _ = inf.RemoveEventHandler(reg) })
	return nil
}

// note records that the object of kind ("l2", "bgp") called name is there or gone, until close.
func (p *previousStatus) note(kind, name string, present bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names != nil {
		setOrDelete(p.names, kind+"/"+name, present)
	}
}

// has reports whether the object of kind ("l2", "bgp") called name was there before this speaker
// first reported.
func (p *previousStatus) has(kind, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.names[kind+"/"+name]
}

// close forgets the names and stops recording.
func (p *previousStatus) close() {
	p.mu.Lock()
	p.names = nil
	remove := p.remove
	p.remove = nil
	p.mu.Unlock()
	for _, r := range remove {
		r()
	}
}
