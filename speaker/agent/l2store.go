package agent

import (
	"fmt"
	"sync"
	"sync/atomic"

	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/status"
)

// ServiceL2Status objects go into a compact store
//
// Every speaker reads every ServiceL2Status of Herald's namespace: the other nodes' for their
// speakers' MACs (learnMACs), for the Services they name (announcedBefore) and for the sweep of
// dead speakers' objects; its own for the status writer, which compares them with what it wants.
// An informer kept each one decoded, with its store key and index entries: about 950 bytes an
// object (an exact heap profile at 2,000 Services: 1.9 MB of the speaker's 13 MB), and a speaker
// caches one per layer-2 Service of the cluster. A reflector hands them to an l2Store instead,
// which keeps what those readers use: the node and Service an object names and, of this node's
// objects, their resourceVersion and a 64-bit sum of their status (status.L2Sum), which is all the
// writer compares: with the map's table, some 200 bytes an object (a kept status with its
// interfaces cost this node's objects about 120 bytes more).
// The changes go to the agent as they come, as an informer's event handlers got them.

// l2Object is what the store keeps of one ServiceL2Status.
type l2Object struct {
	node string // its LabelNode, interned
	svc  string // "namespace/name" of the Service it names; empty when it names none
	// rv and sum are this node's objects' resourceVersion and status.L2Sum of their status; rv is
	// empty for other nodes' objects (a stored object always has one).
	rv  string
	sum uint64
}

// mine reports whether o is one of this node's objects.
func (o l2Object) mine() bool { return o.rv != "" }

// l2Store is a reflector's store of the ServiceL2Status objects of one namespace, and the status
// writer's view of them (status.L2Objects). Its hooks run on the reflector's goroutine, without
// the store's lock, after the store changed.
type l2Store struct {
	self string // this node

	mu   sync.Mutex
	objs map[string]l2Object // by object name

	synced atomic.Bool // the first list was stored

	// key makes the key of the Service an object names (objectKey, or a holder's copy of it).
	key func(namespace, name string) string

	// seen is given every object added or changed, as decoded; counted each change in the number of
	// objects naming a Service; removed each object deleted.
	seen    func(o *v1beta1.ServiceL2Status, added bool)
	counted func(svc string, d int)
	removed func(name string, o l2Object)
}

var (
	_ toolscache.ReflectorStore = (*l2Store)(nil)
	_ status.L2Objects          = (*l2Store)(nil)
)

func newL2Store(self string) *l2Store {
	nop := func(*v1beta1.ServiceL2Status, bool) {}
	return &l2Store{self: self, objs: map[string]l2Object{}, key: objectKey, seen: nop,
		counted: func(string, int) {}, removed: func(string, l2Object) {}}
}

func (s *l2Store) Add(obj any) error    { return s.set(obj) }
func (s *l2Store) Update(obj any) error { return s.set(obj) }
func (s *l2Store) Resync() error        { return nil }

func (s *l2Store) Delete(obj any) error {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	st, err := asL2Status(obj)
	if err != nil {
		return err
	}
	s.remove(st.Name)
	return nil
}

// Replace stores a full list (the first, or a relist after the watch was lost) and removes the
// objects that are not in it.
func (s *l2Store) Replace(list []any, _ string) error {
	keep := make(map[string]bool, len(list))
	for _, obj := range list {
		st, err := asL2Status(obj)
		if err != nil {
			return err
		}
		keep[st.Name] = true
		s.put(st)
	}
	s.mu.Lock()
	var gone []string
	for name := range s.objs {
		if !keep[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.remove(name)
	}
	s.synced.Store(true)
	return nil
}

func (s *l2Store) hasSynced() bool { return s.synced.Load() }

func (s *l2Store) set(obj any) error {
	st, err := asL2Status(obj)
	if err != nil {
		return err
	}
	s.put(st)
	return nil
}

func asL2Status(obj any) (*v1beta1.ServiceL2Status, error) {
	st, ok := obj.(*v1beta1.ServiceL2Status)
	if !ok {
		return nil, fmt.Errorf("ServiceL2Status store: %T is not a ServiceL2Status", obj)
	}
	return st, nil
}

// put records one object and tells the hooks.
func (s *l2Store) put(o *v1beta1.ServiceL2Status) {
	rec := s.record(o)
	s.mu.Lock()
	old, had := s.objs[o.Name]
	s.objs[o.Name] = rec
	s.mu.Unlock()
	if !had || old.svc != rec.svc {
		if had && old.svc != "" {
			s.counted(old.svc, -1)
		}
		if rec.svc != "" {
			s.counted(rec.svc, 1)
		}
	}
	s.seen(o, !had)
}

func (s *l2Store) remove(name string) {
	s.mu.Lock()
	old, had := s.objs[name]
	delete(s.objs, name)
	s.mu.Unlock()
	if !had {
		return
	}
	if old.svc != "" {
		s.counted(old.svc, -1)
	}
	s.removed(name, old)
}

// record is what the store keeps of o. Its repeated strings are interned.
func (s *l2Store) record(o *v1beta1.ServiceL2Status) l2Object {
	l := o.Labels
	ns, name := o.Status.ServiceNamespace, o.Status.ServiceName
	if name == "" { // just created: the writer sets the status next
		ns, name = l[LabelServiceNamespace], l[LabelServiceName]
	}
	rec := l2Object{node: intern(l[LabelNode])}
	if name != "" {
		rec.svc = s.key(ns, name)
	}
	if rec.node != s.self || o.ResourceVersion == "" {
		return rec
	}
	rec.rv, rec.sum = o.ResourceVersion, status.L2Sum(o.Status)
	return rec
}

// Mine calls f with each of this node's objects (status.L2Objects), under the store's lock.
func (s *l2Store) Mine(f func(name string, h status.Held[v1beta1.ServiceL2StatusStatus])) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, o := range s.objs {
		if o.mine() {
			f(name, status.Held[v1beta1.ServiceL2StatusStatus]{ResourceVersion: o.rv, Sum: o.sum})
		}
	}
}

// Get returns the object called name (status.L2Objects).
func (s *l2Store) Get(name string) (status.Held[v1beta1.ServiceL2StatusStatus], string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[name]
	if !ok {
		return status.Held[v1beta1.ServiceL2StatusStatus]{}, "", false
	}
	return status.Held[v1beta1.ServiceL2StatusStatus]{ResourceVersion: o.rv, Sum: o.sum}, o.node, true
}

// Dead returns the objects labelled with a node that alive does not hold true (status.L2Objects).
// Objects without the label are no speaker's and are left alone.
func (s *l2Store) Dead(alive map[string]bool) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dead map[string]string
	for name, o := range s.objs {
		if o.node != "" && !alive[o.node] {
			if dead == nil {
				dead = map[string]string{}
			}
			dead[name] = o.node
		}
	}
	return dead
}
