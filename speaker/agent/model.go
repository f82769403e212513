package agent

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/plan"
)

// Incremental recomputation
//
// A Service or EndpointSlice event changes what the speaker announces only for the IPs of that
// Service. The model below is the speaker's view of the Services and of their endpoints, kept up
// to date by the reflectors' stores (store.go; O(1) per event), with the keys of the Services that
// changed since the last computation. A computation caused by such events recomputes only the IPs
// of those Services (engine.update), so an event costs the same with 100 or 10,000 Services.
// Everything else (configuration, Nodes, Secrets, membership, this node's interfaces, the
// periodic resync) recomputes every IP (engine.full): rare, and with the model in memory it reads
// nothing from the cache but the configuration and the Nodes.

// model holds what the speaker reads of the Services and of their EndpointSlices, as the
// reflectors delivered them (store.go): a compact record per Service and a summary per slice, not
// the decoded API objects. Its methods are safe for concurrent use.
type model struct {
	mu     sync.Mutex
	svcs   map[string]*service     // by "namespace/name"
	slices map[string]sliceSummary // by "namespace/name" of the slice
	// bySvc lists the keys of each Service's slices: one or a few, so a slice rather than a map
	// (a map per Service would cost some 200 bytes more for each of 10,000 Services).
	bySvc map[string][]string
	// statusOf counts the ServiceL2Status objects (of any node) that name each Service.
	statusOf map[string]int
	dirty    map[string]bool // Services changed since the last take
	full     bool            // something else changed: recompute everything
	nodes    bool            // a Node changed: recompute the IPs that nodes' changes affect
}

// service is what the speaker reads of a Service: its identity (for events), labels (service
// selectors), type and class (handled or not), traffic policy and the IPs in its status. About
// 250 bytes, where the informer's trimmed corev1.Service with its store key and index entries took
// some 1,500.
type service struct {
	// key is "namespace/name", the same string as the model's map key, which the Service's other
	// holders share (the engine, the ServiceL2Status store: see serviceKey).
	key    string
	uid    types.UID
	labels map[string]string
	typ    corev1.ServiceType // spec.type, interned
	class  *string            // spec.loadBalancerClass, interned
	local  bool               // spec.externalTrafficPolicy is Local
	// ips are the addresses of status.loadBalancer.ingress, in order, without duplicates;
	// entries that are no address are left out (the controller reports them).
	ips []netip.Addr
}

// serviceOf returns the record of s. Its repeated strings (namespace, class, label keys) are
// interned.
func serviceOf(s *corev1.Service) *service {
	m := s.ObjectMeta
	internMeta(&m)
	r := &service{uid: s.UID, labels: m.Labels,
		typ: corev1.ServiceType(intern(string(s.Spec.Type))), local: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
	if c := s.Spec.LoadBalancerClass; c != nil {
		r.class = ptr.To(intern(*c))
	}
	if ips, _ := v1beta1.IngressIPs(s); len(ips) > 0 {
		r.ips = slices.Clip(ips)
	}
	return r
}

// managed reports whether the speaker of load-balancer class lbClass handles the Service.
func (s *service) managed(lbClass string) bool { return v1beta1.ManagedSpec(s.typ, s.class, lbClass) }

// ref is the Service's reference for events.
func (s *service) ref() *corev1.ObjectReference {
	ns, name, _ := strings.Cut(s.key, "/")
	return &corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: ns, Name: name, UID: s.uid}
}

// equal compares what the plan and the events read of s and o, the records of the same key.
func (s *service) equal(o *service) bool {
	return s.uid == o.uid && maps.Equal(s.labels, o.labels) &&
		ptr.Equal(s.class, o.class) && s.typ == o.typ && s.local == o.local &&
		slices.Equal(s.ips, o.ips)
}

// sliceSummary is what the plan reads of one EndpointSlice.
type sliceSummary struct {
	svc string // "namespace/service"; empty when the slice names no Service
	// usable: some endpoint is ready, or serving while it terminates.
	usable bool
	// nodes with a ready endpoint.
	nodes []string
}

func (s sliceSummary) equal(o sliceSummary) bool {
	return s.svc == o.svc && s.usable == o.usable && slices.Equal(s.nodes, o.nodes)
}

func newModel() *model {
	return &model{svcs: map[string]*service{}, slices: map[string]sliceSummary{}, bySvc: map[string][]string{},
		statusOf: map[string]int{}, dirty: map[string]bool{}}
}

func objectKey(namespace, name string) string { return namespace + "/" + name }

// serviceKey is objectKey(namespace, name), the model's own string when it has the Service: a
// holder of many keys (the ServiceL2Status store, one object per Service) then keeps no copy.
func (m *model) serviceKey(namespace, name string) string {
	var buf [128]byte
	k := append(append(append(buf[:0], namespace...), '/'), name...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.svcs[string(k)]; ok {
		return s.key
	}
	return string(k)
}

func summarize(es *discoveryv1.EndpointSlice) sliceSummary {
	// The same reading of endpoints as the plan's (plan.EndpointsByService), one slice at a time.
	for svc, e := range plan.EndpointsByService([]discoveryv1.EndpointSlice{*es}) {
		nodes := e.ReadyNodes
		for i := range nodes {
			nodes[i] = intern(nodes[i])
		}
		return sliceSummary{svc: svc, usable: e.Usable, nodes: slices.Clip(nodes)}
	}
	return sliceSummary{}
}

// setService records a Service (nil: deleted) and, when what the speaker reads of it changed,
// marks it dirty and reports true.
func (m *model) setService(key string, s *corev1.Service) bool {
	var r *service
	if s != nil {
		r = serviceOf(s)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setServiceLocked(key, r)
}

func (m *model) setServiceLocked(key string, r *service) bool {
	old, ok := m.svcs[key]
	switch {
	case r == nil && !ok:
		return false
	case r == nil:
		delete(m.svcs, key)
	case ok && old.equal(r):
		return false
	case ok:
		r.key = old.key // the string the map holds
		m.svcs[key] = r
	default:
		r.key = key
		m.svcs[key] = r
	}
	m.dirty[key] = true
	return true
}

// setSlice records an EndpointSlice (nil: deleted) and, when what the plan reads of it changed,
// marks the Services it named and names dirty and reports true.
func (m *model) setSlice(key string, es *discoveryv1.EndpointSlice) bool {
	var sum *sliceSummary
	if es != nil {
		s := summarize(es)
		sum = &s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setSliceLocked(key, sum)
}

func (m *model) setSliceLocked(key string, sum *sliceSummary) bool {
	old, ok := m.slices[key]
	if sum == nil && !ok || sum != nil && ok && old.equal(*sum) {
		return false
	}
	if ok && old.svc != "" {
		m.dirty[old.svc] = true
		if keys := slices.DeleteFunc(m.bySvc[old.svc], func(k string) bool { return k == key }); len(keys) == 0 {
			delete(m.bySvc, old.svc)
		} else {
			m.bySvc[old.svc] = keys
		}
	}
	if sum == nil {
		delete(m.slices, key)
		return true
	}
	m.slices[key] = *sum
	if sum.svc != "" {
		m.dirty[sum.svc] = true
		m.bySvc[sum.svc] = append(m.bySvc[sum.svc], key)
	}
	return true
}

// retainServices forgets the Services not in keep (a reflector's relist: they were deleted
// while it was not watching) and reports whether there were any.
func (m *model) retainServices(keep map[string]bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return retainLocked(m.svcs, keep, func(k string) bool { return m.setServiceLocked(k, nil) })
}

// retainSlices is retainServices for EndpointSlices.
func (m *model) retainSlices(keep map[string]bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return retainLocked(m.slices, keep, func(k string) bool { return m.setSliceLocked(k, nil) })
}

// retainLocked drops the keys of items not in keep and reports whether drop changed anything.
func retainLocked[V any](items map[string]V, keep map[string]bool, drop func(key string) bool) bool {
	changed := false
	for k := range items {
		if !keep[k] {
			changed = drop(k) || changed
		}
	}
	return changed
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

// markNodes asks for a recomputation of the IPs that a change of Nodes may affect.
func (m *model) markNodes() {
	m.mu.Lock()
	m.nodes = true
	m.mu.Unlock()
}

// dirtyKeep is the most dirty Services whose cleared map take keeps for the next ones.
const dirtyKeep = 256

// take returns the Services changed since the last take, whether everything is to be recomputed
// and whether Nodes changed, and forgets all three.
func (m *model) take() (keys []string, full, nodes bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys = slices.Collect(maps.Keys(m.dirty))
	if len(keys) > dirtyKeep {
		// A burst (the first list: every Service) grew the map, and a cleared map keeps its table:
		// some 500 KB held for good after 10,000 Services.
		m.dirty = map[string]bool{}
	} else {
		clear(m.dirty)
	}
	full, m.full = m.full, false
	nodes, m.nodes = m.nodes, false
	return keys, full, nodes
}

// serviceRef returns the reference of a Service for events; false when it is not known.
func (m *model) serviceRef(key string) (*corev1.ObjectReference, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.svcs[key]; s != nil {
		return s.ref(), true
	}
	return nil, false
}

// planServices returns what the plan reads of the named Services: nil for a Service that is gone,
// not handled (handles) or without an IP.
func (m *model) planServices(keys []string, handles func(*service) bool) map[string]*plan.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*plan.Service, len(keys))
	for _, k := range keys {
		out[k] = nil
		if ps, ok := m.planServiceLocked(k, handles); ok {
			out[k] = &ps
		}
	}
	return out
}

// allPlanServices returns what the plan reads of every handled Service with an IP.
func (m *model) allPlanServices(handles func(*service) bool) map[string]plan.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]plan.Service, len(m.svcs))
	for k := range m.svcs {
		if ps, ok := m.planServiceLocked(k, handles); ok {
			out[k] = ps
		}
	}
	return out
}

func (m *model) planServiceLocked(key string, handles func(*service) bool) (plan.Service, bool) {
	s := m.svcs[key]
	if s == nil || !handles(s) {
		return plan.Service{}, false
	}
	// The endpoints of its slices, summarized per slice as the events came (the union of what
	// plan.EndpointsByService reads of each).
	var e plan.Endpoints
	keys := m.bySvc[key]
	switch len(keys) {
	case 0:
		return plan.ServiceOf(key, s.labels, s.local, s.ips, nil)
	case 1:
		// Most Services have one slice: its nodes, sorted and unique, are shared (nothing
		// changes a Service's ReadyEndpointNodes), not copied at every computation.
		sum := m.slices[keys[0]]
		e = plan.Endpoints{Usable: sum.usable, ReadyNodes: sum.nodes}
	default:
		var nodes []string
		for _, sk := range keys {
			sum := m.slices[sk]
			e.Usable = e.Usable || sum.usable
			nodes = append(nodes, sum.nodes...)
		}
		slices.Sort(nodes)
		e.ReadyNodes = slices.Compact(nodes)
	}
	return plan.ServiceOf(key, s.labels, s.local, s.ips, &e)
}
