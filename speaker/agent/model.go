package agent

import (
	"maps"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/speaker/plan"
)

// Incremental recomputation
//
// A Service or EndpointSlice event changes what the speaker announces only for the IPs of that
// Service. The model below is the speaker's view of the Services and of their endpoints, kept up
// to date by the informers' event handlers (O(1) per event), with the keys of the Services that
// changed since the last computation. A computation caused by such events recomputes only the IPs
// of those Services (engine.update), so an event costs the same with 100 or 10,000 Services.
// Everything else (configuration, Nodes, Secrets, membership, this node's interfaces, the
// periodic resync) recomputes every IP (engine.full): rare, and with the model in memory it reads
// nothing from the cache but the configuration and the Nodes.

// model holds the Services and the endpoint summaries of their EndpointSlices, as the informers
// delivered them. Its methods are safe for concurrent use.
type model struct {
	mu     sync.Mutex
	svcs   map[string]*corev1.Service // by "namespace/name"; the informer's objects, never modified
	slices map[string]sliceSummary    // by "namespace/name" of the slice
	// bySvc lists the keys of each Service's slices: one or a few, so a slice rather than a map
	// (a map per Service would cost some 200 bytes more for each of 10,000 Services).
	bySvc map[string][]string
	// statusOf counts the ServiceL2Status objects (of any node) that name each Service.
	statusOf map[string]int
	dirty    map[string]bool // Services changed since the last take
	full     bool            // something else changed: recompute everything
}

// sliceSummary is what the plan reads of one EndpointSlice.
type sliceSummary struct {
	svc string // "namespace/service"; empty when the slice names no Service
	// usable: some endpoint is ready, or serving while it terminates.
	usable bool
	// nodes with a ready endpoint.
	nodes []string
}

func newModel() *model {
	return &model{svcs: map[string]*corev1.Service{}, slices: map[string]sliceSummary{}, bySvc: map[string][]string{},
		statusOf: map[string]int{}, dirty: map[string]bool{}}
}

func objectKey(namespace, name string) string { return namespace + "/" + name }

func summarize(es *discoveryv1.EndpointSlice) sliceSummary {
	// The same reading of endpoints as the plan's (plan.EndpointsByService), one slice at a time.
	for svc, e := range plan.EndpointsByService([]discoveryv1.EndpointSlice{*es}) {
		return sliceSummary{svc: svc, usable: e.Usable, nodes: e.ReadyNodes}
	}
	return sliceSummary{}
}

// setService records a Service (nil: deleted) and marks it dirty.
func (m *model) setService(key string, s *corev1.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == nil {
		delete(m.svcs, key)
	} else {
		m.svcs[key] = s
	}
	m.dirty[key] = true
}

// setSlice records an EndpointSlice (nil: deleted) and marks the Services it named and names dirty.
func (m *model) setSlice(key string, es *discoveryv1.EndpointSlice) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.slices[key]; ok && old.svc != "" {
		m.dirty[old.svc] = true
		if keys := slices.DeleteFunc(m.bySvc[old.svc], func(k string) bool { return k == key }); len(keys) == 0 {
			delete(m.bySvc, old.svc)
		} else {
			m.bySvc[old.svc] = keys
		}
	}
	if es == nil {
		delete(m.slices, key)
		return
	}
	s := summarize(es)
	m.slices[key] = s
	if s.svc == "" {
		return
	}
	m.dirty[s.svc] = true
	m.bySvc[s.svc] = append(m.bySvc[s.svc], key)
}

// countStatus adds d to the ServiceL2Status objects that name the Service key.
func (m *model) countStatus(key string, d int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.statusOf[key] += d; m.statusOf[key] <= 0 {
		delete(m.statusOf, key)
	}
}

// hasStatus reports whether some ServiceL2Status names the Service key.
func (m *model) hasStatus(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusOf[key] > 0
}

// markFull asks for a recomputation of everything.
func (m *model) markFull() {
	m.mu.Lock()
	m.full = true
	m.mu.Unlock()
}

// take returns the Services changed since the last take and whether everything is to be
// recomputed, and forgets both.
func (m *model) take() (keys []string, full bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys = slices.Collect(maps.Keys(m.dirty))
	clear(m.dirty)
	full, m.full = m.full, false
	return keys, full
}

// service returns the object of a Service, nil when it is not known.
func (m *model) service(key string) *corev1.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.svcs[key]
}

// planServices returns what the plan reads of the named Services: nil for a Service that is gone,
// not handled (handles) or without an IP.
func (m *model) planServices(keys []string, handles func(*corev1.Service) bool) map[string]*plan.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*plan.Service, len(keys))
	for _, k := range keys {
		out[k] = m.planServiceLocked(k, handles)
	}
	return out
}

// allPlanServices returns what the plan reads of every handled Service with an IP.
func (m *model) allPlanServices(handles func(*corev1.Service) bool) map[string]*plan.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*plan.Service, len(m.svcs))
	for k := range m.svcs {
		if ps := m.planServiceLocked(k, handles); ps != nil {
			out[k] = ps
		}
	}
	return out
}

func (m *model) planServiceLocked(key string, handles func(*corev1.Service) bool) *plan.Service {
	s := m.svcs[key]
	if s == nil || !handles(s) {
		return nil
	}
	// The endpoints of its slices, summarized per slice as the events came (the union of what
	// plan.EndpointsByService reads of each).
	var eps map[string]*plan.Endpoints
	if keys := m.bySvc[key]; len(keys) > 0 {
		e := &plan.Endpoints{}
		var nodes []string
		for _, sk := range keys {
			sum := m.slices[sk]
			e.Usable = e.Usable || sum.usable
			nodes = append(nodes, sum.nodes...)
		}
		slices.Sort(nodes)
		e.ReadyNodes = slices.Compact(nodes)
		eps = map[string]*plan.Endpoints{key: e}
	}
	ps, ok := plan.ServiceFromKube(s, eps)
	if !ok {
		return nil
	}
	ps.Key = key // the model's string, not a copy of it for every Service
	// An address listed twice in the status is one address of the Service.
	var ips []netip.Addr
	for _, ip := range ps.IPs {
		if !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	ps.IPs = ips
	return &ps
}

// Informer event handlers of the model.

// serviceHandler records Services in the model.
type serviceHandler struct{ a *Agent }

func (h serviceHandler) OnAdd(obj any, _ bool) { h.set(obj, false) }
func (h serviceHandler) OnUpdate(old, obj any) {
	if !relevantUpdate(old, obj) {
		h.a.pace.skipped.Inc()
		return
	}
	h.set(obj, false)
}
func (h serviceHandler) OnDelete(obj any) { h.set(obj, true) }

func (h serviceHandler) set(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	if deleted {
		h.a.model.setService(objectKey(s.Namespace, s.Name), nil)
	} else {
		h.a.model.setService(objectKey(s.Namespace, s.Name), s)
	}
	h.a.signal()
}

// sliceHandler records EndpointSlices in the model.
type sliceHandler struct{ a *Agent }

func (h sliceHandler) OnAdd(obj any, _ bool) { h.set(obj, false) }
func (h sliceHandler) OnUpdate(old, obj any) {
	if !relevantUpdate(old, obj) {
		h.a.pace.skipped.Inc()
		return
	}
	h.set(obj, false)
}
func (h sliceHandler) OnDelete(obj any) { h.set(obj, true) }

func (h sliceHandler) set(obj any, deleted bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if deleted {
		h.a.model.setSlice(objectKey(es.Namespace, es.Name), nil)
	} else {
		h.a.model.setSlice(objectKey(es.Namespace, es.Name), es)
	}
	h.a.signal()
}
