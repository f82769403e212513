// Package status writes the status objects a speaker reports about its own node: ServiceL2Status
// and ServiceBGPStatus (what it announces, per Service) and BGPSessionStatus (its BGP sessions). It
// names them, derives them from the node's plan, and converges them in the background towards the
// latest desired set, retrying while the API server is unreachable; the first live speaker also
// removes the objects of speakers that died.
package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/workqueue"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/speaker/plan"
)

// Labels on the status objects a speaker writes.
const (
	LabelNode             = "herald.dev/node"
	LabelServiceName      = "herald.dev/service-name"
	LabelServiceNamespace = "herald.dev/service-namespace"
	LabelPeer             = "herald.dev/peer"
)

// Desired is the set of status objects this node should have, by name.
type Desired struct {
	L2  map[string]v1beta1.ServiceL2StatusStatus
	BGP map[string]v1beta1.ServiceBGPStatusStatus
	// Sessions are this node's BGP session states, by object name.
	Sessions map[string]v1beta1.BGPSessionStatusStatus
	// Sweep, when not nil, makes this node remove the status objects of nodes outside it: one
	// live speaker (the first by name) cleans up after speakers that died, so a dead node's
	// ServiceL2Status does not stay next to the new owner's.
	Sweep map[string]bool
}

// Name is the stable object name for a (node, Service "ns/name") pair.
func Name(node, svcKey string) string {
	ns, name, _ := strings.Cut(svcKey, "/")
	return ObjectName(node, ns, name)
}

// ObjectName names the status object of a tuple of names, such as (node, namespace, Service) or
// (node, peer): the parts joined with "-" for people to read, then "-" and a hash of the tuple
// itself, so that tuples whose joined text is the same (node a-b in namespace c, node a in
// namespace b-c) get different names. The readable part is cut to keep the name within 253
// characters. Objects named by an older scheme carry this node's label and are deleted as
// unwanted by the next convergence.
func ObjectName(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	suffix := "-" + hex.EncodeToString(sum[:5])
	readable := strings.Join(parts, "-")
	if limit := 253 - len(suffix); len(readable) > limit {
		readable = readable[:limit]
	}
	return strings.TrimRight(readable, "-.") + suffix
}

// FromAssignments is the desired state of node's status objects (without sessions, MACs and
// conflicts) from its layer-2 and BGP assignments, in any order: the speaker's engine gives them
// without assembling the rest of a plan (every IP's owner and interfaces, the route tables) at each
// full computation. Each Service's assignments are taken in the order of their IPs, as a sorted
// plan (plan.Plan's L2 and BGP) has them. alive are the live speakers, sorted: the first of them
// sweeps.
func FromAssignments(l2s []plan.L2Assignment, bgps []plan.BGPAssignment, node string, alive []string) Desired {
	d := Desired{L2: map[string]v1beta1.ServiceL2StatusStatus{}, BGP: map[string]v1beta1.ServiceBGPStatusStatus{}}
	if len(alive) > 0 && alive[0] == node {
		d.Sweep = map[string]bool{}
		for _, n := range alive {
			d.Sweep[n] = true
		}
	}
	l2 := map[string][]plan.L2Assignment{}
	for _, as := range l2s {
		l2[as.Service] = append(l2[as.Service], as)
	}
	for svc, as := range l2 {
		slices.SortStableFunc(as, func(a, b plan.L2Assignment) int { return a.IP.Compare(b.IP) })
		d.L2[Name(node, svc)] = L2Status(node, svc, as)
	}
	bgp := map[string][]plan.BGPAssignment{}
	for _, as := range bgps {
		bgp[as.Service] = append(bgp[as.Service], as)
	}
	for svc, as := range bgp {
		slices.SortStableFunc(as, func(a, b plan.BGPAssignment) int { return a.IP.Compare(b.IP) })
		d.BGP[Name(node, svc)] = BGPStatus(node, svc, as)
	}
	return d
}

// l2Status is the ServiceL2Status of a Service from its layer-2 assignments on node (by IP): the
// interfaces it is answered on, without MACs and conflicts (see decorate).
func L2Status(node, svc string, as []plan.L2Assignment) v1beta1.ServiceL2StatusStatus {
	ns, name, _ := strings.Cut(svc, "/")
	st := v1beta1.ServiceL2StatusStatus{Node: node, ServiceName: name, ServiceNamespace: ns}
	for _, a := range as {
		for _, ifi := range a.Interfaces {
			if !slices.ContainsFunc(st.Interfaces, func(i v1beta1.InterfaceInfo) bool { return i.Name == ifi }) {
				st.Interfaces = append(st.Interfaces, v1beta1.InterfaceInfo{Name: ifi})
			}
		}
	}
	return st
}

// bgpStatus is the ServiceBGPStatus of a Service from its BGP assignments on node.
func BGPStatus(node, svc string, as []plan.BGPAssignment) v1beta1.ServiceBGPStatusStatus {
	ns, name, _ := strings.Cut(svc, "/")
	st := v1beta1.ServiceBGPStatusStatus{Node: node, ServiceName: name, ServiceNamespace: ns}
	for _, a := range as {
		for _, peer := range a.Peers {
			if !slices.Contains(st.Peers, peer) {
				st.Peers = append(st.Peers, peer)
			}
		}
	}
	slices.Sort(st.Peers)
	return st
}

// Writer converges the status objects of this node towards the latest desired set in the
// background, retrying while the API server is unreachable.
//
// It is driven by a rate-limited work queue, as the controller's reconcilers are: each thing to
// converge is a key (one object by kind and name, this node's sessions, or everything), a key
// queued several times is converged once, and a key whose convergence fails is retried alone,
// after a delay that doubles with each failure (retryBase up to retryMax) and starts again from
// retryBase once it succeeds.
//
// A full computation hands it the whole desired set (Set); it converges everything when that
// differs from what it applied last, listing this node's objects (and, for the first live speaker,
// sweeping those of dead ones). A computation of a few Services hands it their objects only
// (Put), and it converges those names alone, so its cost follows the changes, not the Services.
type Writer struct {
	c    client.Client
	ns   string
	node string
	log  *slog.Logger

	queue workqueue.TypedRateLimitingInterface[item]

	mu       sync.Mutex
	sessions map[string]v1beta1.BGPSessionStatusStatus
	// cur is the latest desired state; nil before the first set.
	cur *Desired
	// applied is the state last converged; nil when unknown (the next set converges everything).
	applied *Desired
	// shared is true while cur's maps are also applied's, or those of a convergence of everything
	// in progress: cur is copied before it changes (Put, noteApplied), so that a speaker whose
	// desired state does not change holds one copy of it, not two, and makes none at a resync.
	shared bool
	// busy is the key being converged, if any; failing are the keys waiting to be retried.
	busy    *item
	failing map[item]bool

	// alive, when set, returns the speakers alive now: a sweep never removes the objects of one of
	// them, even when the desired state it applies was computed before that speaker came back.
	alive func() []string
	// l2, when set, is where the ServiceL2Status objects are read (UseL2Objects); else the client.
	l2 L2Objects

	// swept is the set of live speakers (joined, sorted) of the last deletion of dead speakers'
	// ServiceBGPStatus and BGPSessionStatus objects, and sweptAt when it was made.
	swept   string
	sweptAt time.Time
	now     func() time.Time
}

// bgpSweepEvery is how often the sweeping speaker deletes dead speakers' ServiceBGPStatus and
// BGPSessionStatus objects while the live speakers stay the same. They are deleted by label on the
// API server (no speaker caches other nodes' BGP objects), at once when the live speakers change;
// this backstop catches the objects of a speaker that was never alive in this one's view.
const bgpSweepEvery = 10 * time.Minute

// kind is what a work queue key converges.
type kind uint8

const (
	kindAll      kind = iota // every object of this node, and the sweep
	kindL2                   // one ServiceL2Status
	kindBGP                  // one ServiceBGPStatus
	kindSessions             // this node's BGPSessionStatus objects
)

// item is a key of the writer's work queue.
type item struct {
	kind kind
	name string // the object's, for kindL2 and kindBGP
}

// The retry delays of a key whose convergence failed: retryBase after the first failure, doubling
// with each one, at most retryMax. The agent's resync also converges everything every few seconds,
// whatever the delay of the keys that fail.
const (
	retryBase = 200 * time.Millisecond
	retryMax  = 30 * time.Second
)

// NewWriter returns a writer of node's status objects in namespace ns; alive, when not nil, returns
// the speakers alive now (see Writer.alive). Run runs it.
func NewWriter(c client.Client, ns, node string, log *slog.Logger, alive func() []string) *Writer {
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[item](retryBase, retryMax),
		workqueue.TypedRateLimitingQueueConfig[item]{})
	return &Writer{c: c, ns: ns, node: node, log: log, alive: alive, queue: q, failing: map[item]bool{}, now: time.Now}
}

// Held is an existing status object as the writer needs it: its status, to compare it with the
// wanted one, and its resourceVersion, to update it. A store may keep only a sum of the status
// (L2Sum, for ServiceL2Status): then Status is nil and Sum is compared instead.
type Held[S any] struct {
	ResourceVersion string
	Status          *S
	Sum             uint64
}

// L2Objects is a store of the ServiceL2Status objects of the writer's namespace that the caller
// keeps up to date (the speaker's compact store: at 10,000 Services an informer's decoded objects
// were a quarter of its heap). The writer then never reads ServiceL2Status through its client.
type L2Objects interface {
	// Mine calls f with each ServiceL2Status labelled with the writer's node. f must not call the
	// store.
	Mine(f func(name string, h Held[v1beta1.ServiceL2StatusStatus]))
	// Get returns the ServiceL2Status called name: its status only when it is the writer's node's,
	// and the node it is labelled with.
	Get(name string) (h Held[v1beta1.ServiceL2StatusStatus], node string, ok bool)
	// Dead returns the names of the ServiceL2Status objects labelled with a node for which alive is
	// not true, with that node.
	Dead(alive map[string]bool) map[string]string
}

// UseL2Objects makes the writer read the ServiceL2Status objects from l2 instead of its client.
// Call it before Run.
func (w *Writer) UseL2Objects(l2 L2Objects) { w.l2 = l2 }

// Set replaces the whole desired state (the writer keeps d's maps).
func (w *Writer) Set(d Desired) {
	w.mu.Lock()
	d.Sessions = w.sessions
	if d.L2 == nil {
		d.L2 = map[string]v1beta1.ServiceL2StatusStatus{}
	}
	if d.BGP == nil {
		d.BGP = map[string]v1beta1.ServiceBGPStatusStatus{}
	}
	w.cur, w.shared = &d, false
	if w.applied != nil && w.applied.equal(d) {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.queue.Add(item{kind: kindAll})
}

// Resync converges the latest desired state again if Recheck dropped what was applied: what a
// Set of the same desired state does, without the caller building it anew.
func (w *Writer) Resync() {
	w.mu.Lock()
	again := w.cur != nil && w.applied == nil
	w.mu.Unlock()
	if again {
		w.queue.Add(item{kind: kindAll})
	}
}

// Wants reports whether the ServiceL2Status called name is desired now.
func (w *Writer) Wants(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		return false
	}
	_, ok := w.cur.L2[name]
	return ok
}

// Wrote reports whether the ServiceL2Status called name was written by the last convergence that
// completed, and is still known to be (not invalidated by Recheck).
func (w *Writer) Wrote(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied == nil {
		return false
	}
	_, ok := w.applied.L2[name]
	return ok
}

// Idle reports whether the writer has written the latest desired state and has nothing left to do:
// no key queued, being converged or waiting to be retried.
func (w *Writer) Idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur != nil && w.applied != nil && w.busy == nil && len(w.failing) == 0 && w.queue.Len() == 0
}

// Put changes the desired objects of the given names (nil: none wanted), keeping the rest.
func (w *Writer) Put(l2 map[string]*v1beta1.ServiceL2StatusStatus, bgp map[string]*v1beta1.ServiceBGPStatusStatus) {
	w.mu.Lock()
	if w.cur == nil {
		// Nothing computed in full yet: the first set carries everything.
		w.mu.Unlock()
		return
	}
	w.unshare()
	changedL2 := putAll(w.cur.L2, l2, l2StatusEqual)
	changedBGP := putAll(w.cur.BGP, bgp, bgpStatusEqual)
	w.mu.Unlock()
	for _, name := range changedL2 {
		w.queue.Add(item{kind: kindL2, name: name})
	}
	for _, name := range changedBGP {
		w.queue.Add(item{kind: kindBGP, name: name})
	}
}

// putAll applies changes to want and returns the names whose desired state differs from before.
func putAll[S any](want map[string]S, changes map[string]*S, equal func(a, b S) bool) []string {
	var changed []string
	for name, st := range changes {
		old, had := want[name]
		switch {
		case st == nil && !had:
			continue
		case st == nil:
			delete(want, name)
		default:
			if had && equal(old, *st) {
				continue
			}
			want[name] = *st
		}
		changed = append(changed, name)
	}
	return changed
}

// Recheck makes the next set apply even when the desired state did not change, so that an object
// removed behind this writer's back (by a sweep racing with this speaker's restart) is written
// again. The agent calls it at every resync.
func (w *Writer) Recheck() {
	w.mu.Lock()
	w.applied = nil
	w.mu.Unlock()
}

// SetSessions replaces the BGP session states to report, keeping the rest of the desired state.
func (w *Writer) SetSessions(s map[string]v1beta1.BGPSessionStatusStatus) {
	w.mu.Lock()
	if maps.EqualFunc(w.sessions, s, sessionStatusEqual) {
		w.mu.Unlock()
		return
	}
	w.sessions = s
	if w.cur == nil {
		// Nothing computed yet: the first set carries the sessions along.
		w.mu.Unlock()
		return
	}
	w.cur.Sessions = s
	w.mu.Unlock()
	w.queue.Add(item{kind: kindSessions})
}

// Run converges the queued keys, one at a time, until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, w.queue.ShutDown)
	defer stop()
	for w.next(ctx) {
	}
}

// next converges one key, and queues it again with its retry delay when that fails. It returns
// false once the queue is shut down.
func (w *Writer) next(ctx context.Context) bool {
	it, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(it)
	w.mu.Lock()
	w.busy = &it
	w.mu.Unlock()
	err := w.converge(ctx, it)
	w.mu.Lock()
	w.busy = nil
	if err != nil {
		w.failing[it] = true
	} else {
		delete(w.failing, it)
	}
	w.mu.Unlock()
	if err == nil {
		w.queue.Forget(it)
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	w.log.Warn("writing ServiceL2Status/ServiceBGPStatus; retrying", "error", err,
		"failures", w.queue.NumRequeues(it)+1)
	w.queue.AddRateLimited(it)
	return true
}

// converge converges what one key stands for towards the desired state now.
func (w *Writer) converge(ctx context.Context, it item) error {
	w.mu.Lock()
	if w.cur == nil {
		w.mu.Unlock()
		return nil
	}
	switch it.kind {
	case kindAll:
		d := *w.cur // the same maps: nothing changes them until unshare copies cur
		w.shared = true
		w.mu.Unlock()
		if err := w.apply(ctx, d); err != nil {
			return err
		}
		w.mu.Lock()
		w.applied = &d
		w.mu.Unlock()
		return nil
	case kindL2:
		want := wanted(w.cur.L2, it.name)
		w.mu.Unlock()
		err := convergeNames(ctx, w, w.l2Kind(), w.l2Get(), want)
		w.noteApplied(err, func(a *Desired) { noteApplied(a.L2, want) })
		return err
	case kindBGP:
		want := wanted(w.cur.BGP, it.name)
		w.mu.Unlock()
		err := convergeNames(ctx, w, w.bgpKind(), getFromClient(w, w.bgpKind()), want)
		w.noteApplied(err, func(a *Desired) { noteApplied(a.BGP, want) })
		return err
	default: // kindSessions
		sess := maps.Clone(w.cur.Sessions)
		w.mu.Unlock()
		var have v1beta1.BGPSessionStatusList
		if err := w.c.List(ctx, &have, client.InNamespace(w.ns), client.MatchingLabels{LabelNode: w.node}); err != nil {
			return fmt.Errorf("listing BGPSessionStatus: %w", err)
		}
		err := converge(ctx, w, w.sessionKind(), listed(w.sessionKind(), have.Items), sess)
		w.noteApplied(err, func(a *Desired) { a.Sessions = sess })
		return err
	}
}

// noteApplied records a successful convergence of part of the state in w.applied, when known.
func (w *Writer) noteApplied(err error, note func(*Desired)) {
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied != nil {
		w.unshare()
		note(w.applied)
	}
}

// unshare gives cur maps of its own if it shares them (see shared). w.mu must be held.
func (w *Writer) unshare() {
	if w.shared {
		c := w.cur.clone()
		w.cur, w.shared = &c, false
	}
}

// wanted is the desired state of one name (nil: not wanted), as convergeNames takes it. w.mu must
// be held.
func wanted[S any](want map[string]S, name string) map[string]*S {
	if st, ok := want[name]; ok {
		return map[string]*S{name: &st}
	}
	return map[string]*S{name: nil}
}

// noteApplied notes converged names in applied.
func noteApplied[S any](applied map[string]S, done map[string]*S) {
	for name, st := range done {
		if st == nil {
			delete(applied, name)
		} else {
			applied[name] = *st
		}
	}
}

func (d Desired) clone() Desired {
	c := Desired{L2: maps.Clone(d.L2), BGP: maps.Clone(d.BGP), Sessions: maps.Clone(d.Sessions), Sweep: maps.Clone(d.Sweep)}
	if c.L2 == nil {
		c.L2 = map[string]v1beta1.ServiceL2StatusStatus{}
	}
	if c.BGP == nil {
		c.BGP = map[string]v1beta1.ServiceBGPStatusStatus{}
	}
	return c
}

// getter reads one status object by name: its state (status only when it is this node's), the
// node it is labelled with, whether it exists.
type getter[S any] func(ctx context.Context, name string) (Held[S], string, bool, error)

// getFromClient reads one object of a kind through the writer's client.
func getFromClient[T any, S any, P objectPtr[T]](w *Writer, k statusKind[T, S, P]) getter[S] {
	return func(ctx context.Context, name string) (Held[S], string, bool, error) {
		obj := P(new(T))
		err := w.c.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: name}, obj)
		switch {
		case apierrors.IsNotFound(err):
			return Held[S]{}, "", false, nil
		case err != nil:
			return Held[S]{}, "", false, err
		}
		return Held[S]{ResourceVersion: obj.GetResourceVersion(), Status: k.status(obj)}, obj.GetLabels()[LabelNode], true, nil
	}
}

// l2Get reads one ServiceL2Status from the writer's store, or else through its client.
func (w *Writer) l2Get() getter[v1beta1.ServiceL2StatusStatus] {
	if w.l2 == nil {
		return getFromClient(w, w.l2Kind())
	}
	return func(_ context.Context, name string) (Held[v1beta1.ServiceL2StatusStatus], string, bool, error) {
		h, node, ok := w.l2.Get(name)
		return h, node, ok, nil
	}
}

// convergeNames makes the objects of the given names (of one kind, this node's) have the desired
// status, creating or deleting them as needed.
func convergeNames[T any, S any, P objectPtr[T]](ctx context.Context, w *Writer, k statusKind[T, S, P], get getter[S], want map[string]*S) error {
	var errs []error
	for name, st := range want {
		h, node, found, err := get(ctx, name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s %s: %w", k.name, name, err))
		case !found && st == nil:
		case !found:
			errs = append(errs, create(ctx, w, k, name, *st))
		case node != w.node:
			// not this node's: never touched
		case st == nil:
			errs = append(errs, remove(ctx, w, k, name))
		case !k.same(h, *st):
			errs = append(errs, update(ctx, w, k, name, h.ResourceVersion, *st))
		}
	}
	return errors.Join(errs...)
}

// create creates the object called name, with this node's labels, and gives it status st.
func create[T any, S any, P objectPtr[T]](ctx context.Context, w *Writer, k statusKind[T, S, P], name string, st S) error {
	obj := P(new(T))
	obj.SetName(name)
	obj.SetNamespace(w.ns)
	obj.SetLabels(k.labels(st))
	if err := w.c.Create(ctx, obj); apierrors.IsAlreadyExists(err) {
		// Created before, and not yet in what this writer read: its status is compared when it is.
		return fmt.Errorf("creating %s %s: it exists but is not read yet; comparing it again", k.name, name)
	} else if err != nil {
		return fmt.Errorf("creating %s %s: %w", k.name, name, err)
	}
	if k.equal(*k.status(obj), st) {
		return nil
	}
	*k.status(obj) = st
	if err := w.c.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("updating %s %s: %w", k.name, name, err)
	}
	return nil
}

// update gives the object called name, at resourceVersion rv, the status st. The API server takes
// only the status from a status update and keeps the rest of the object as it is.
func update[T any, S any, P objectPtr[T]](ctx context.Context, w *Writer, k statusKind[T, S, P], name, rv string, st S) error {
	obj := P(new(T))
	obj.SetName(name)
	obj.SetNamespace(w.ns)
	obj.SetResourceVersion(rv)
	*k.status(obj) = st
	if err := w.c.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("updating %s %s: %w", k.name, name, err)
	}
	return nil
}

// remove deletes the object called name.
func remove[T any, S any, P objectPtr[T]](ctx context.Context, w *Writer, k statusKind[T, S, P], name string) error {
	obj := P(new(T))
	obj.SetName(name)
	obj.SetNamespace(w.ns)
	if err := w.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %s %s: %w", k.name, name, err)
	}
	return nil
}

// apply converges this node's status objects of every kind towards d and, when d says so, removes
// those of speakers that died.
func (w *Writer) apply(ctx context.Context, d Desired) error {
	var (
		l2   v1beta1.ServiceL2StatusList
		bgp  v1beta1.ServiceBGPStatusList
		sess v1beta1.BGPSessionStatusList
	)
	lists := []client.ObjectList{&bgp, &sess}
	if w.l2 == nil {
		lists = append(lists, &l2)
	}
	mine := client.MatchingLabels{LabelNode: w.node}
	for _, l := range lists {
		// The cache's own objects, not copies of thousands of them at every resync: converge reads
		// them and never changes them.
		if err := w.c.List(ctx, l, client.InNamespace(w.ns), mine, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("listing %T: %w", l, err)
		}
	}
	haveL2 := listed(w.l2Kind(), l2.Items)
	if w.l2 != nil {
		haveL2 = w.l2.Mine
	}
	errs := []error{
		converge(ctx, w, w.l2Kind(), haveL2, d.L2),
		converge(ctx, w, w.bgpKind(), listed(w.bgpKind(), bgp.Items), d.BGP),
		converge(ctx, w, w.sessionKind(), listed(w.sessionKind(), sess.Items), d.Sessions),
	}
	if d.Sweep != nil {
		alive := maps.Clone(d.Sweep)
		if w.alive != nil {
			for _, n := range w.alive() {
				alive[n] = true
			}
		}
		errs = append(errs, w.sweepDead(ctx, alive))
	}
	return errors.Join(errs...)
}

func (w *Writer) serviceLabels(ns, name string) map[string]string {
	return map[string]string{LabelNode: w.node, LabelServiceName: name, LabelServiceNamespace: ns}
}

// statusKind is what converge and convergeNames need of a status kind: its name (for errors), its
// object's status, the labels of a new object, and when two statuses say the same (equal, or sum
// for a held status kept as its sum).
type statusKind[T any, S any, P objectPtr[T]] struct {
	name   string
	status func(P) *S
	labels func(S) map[string]string
	equal  func(a, b S) bool
	sum    func(S) uint64 // nil: the kind's held statuses are always whole
}

// same reports whether the held object's status says what st says.
func (k statusKind[T, S, P]) same(h Held[S], st S) bool {
	if h.Status == nil && k.sum != nil {
		return h.Sum == k.sum(st)
	}
	return h.Status != nil && k.equal(*h.Status, st)
}

func (w *Writer) l2Kind() statusKind[v1beta1.ServiceL2Status, v1beta1.ServiceL2StatusStatus, *v1beta1.ServiceL2Status] {
	return statusKind[v1beta1.ServiceL2Status, v1beta1.ServiceL2StatusStatus, *v1beta1.ServiceL2Status]{
		name:   "ServiceL2Status",
		status: func(o *v1beta1.ServiceL2Status) *v1beta1.ServiceL2StatusStatus { return &o.Status },
		labels: func(st v1beta1.ServiceL2StatusStatus) map[string]string {
			return w.serviceLabels(st.ServiceNamespace, st.ServiceName)
		},
		equal: l2StatusEqual,
		sum:   L2Sum,
	}
}

func (w *Writer) bgpKind() statusKind[v1beta1.ServiceBGPStatus, v1beta1.ServiceBGPStatusStatus, *v1beta1.ServiceBGPStatus] {
	return statusKind[v1beta1.ServiceBGPStatus, v1beta1.ServiceBGPStatusStatus, *v1beta1.ServiceBGPStatus]{
		name:   "ServiceBGPStatus",
		status: func(o *v1beta1.ServiceBGPStatus) *v1beta1.ServiceBGPStatusStatus { return &o.Status },
		labels: func(st v1beta1.ServiceBGPStatusStatus) map[string]string {
			return w.serviceLabels(st.ServiceNamespace, st.ServiceName)
		},
		equal: bgpStatusEqual,
	}
}

func (w *Writer) sessionKind() statusKind[v1beta1.BGPSessionStatus, v1beta1.BGPSessionStatusStatus, *v1beta1.BGPSessionStatus] {
	return statusKind[v1beta1.BGPSessionStatus, v1beta1.BGPSessionStatusStatus, *v1beta1.BGPSessionStatus]{
		name:   "BGPSessionStatus",
		status: func(o *v1beta1.BGPSessionStatus) *v1beta1.BGPSessionStatusStatus { return &o.Status },
		labels: func(st v1beta1.BGPSessionStatusStatus) map[string]string {
			return map[string]string{LabelNode: w.node, LabelPeer: st.Peer}
		},
		equal: sessionStatusEqual,
	}
}

// objectPtr is a pointer to a status kind's object type.
type objectPtr[T any] interface {
	*T
	client.Object
}

// heldSet calls f with each object of one kind that this node has, by name.
type heldSet[S any] func(f func(name string, h Held[S]))

// listed is the heldSet of a list's objects (which it reads, never changes).
func listed[T any, S any, P objectPtr[T]](k statusKind[T, S, P], items []T) heldSet[S] {
	return func(f func(name string, h Held[S])) {
		for i := range items {
			o := P(&items[i])
			f(o.GetName(), Held[S]{ResourceVersion: o.GetResourceVersion(), Status: k.status(o)})
		}
	}
}

// converge makes the objects this node has of one kind (have) those of want, by name: it creates
// the missing ones, updates the status of those that differ and deletes the rest. It reads have
// first and writes after, so a store's lock is not held across requests.
func converge[T any, S any, P objectPtr[T]](ctx context.Context, w *Writer, k statusKind[T, S, P], have heldSet[S], want map[string]S) error {
	var (
		seen   = make(map[string]bool, len(want))
		stale  []string          // to delete
		differ map[string]string // to update: name -> resourceVersion
	)
	have(func(name string, h Held[S]) {
		st, ok := want[name]
		switch {
		case !ok:
			stale = append(stale, name)
		case !k.same(h, st):
			if differ == nil {
				differ = map[string]string{}
			}
			differ[name] = h.ResourceVersion
			seen[name] = true
		default:
			seen[name] = true
		}
	})
	var errs []error
	for name, st := range want {
		if rv, ok := differ[name]; ok {
			errs = append(errs, update(ctx, w, k, name, rv, st))
		} else if !seen[name] {
			errs = append(errs, create(ctx, w, k, name, st))
		}
	}
	for _, name := range stale {
		errs = append(errs, remove(ctx, w, k, name))
	}
	return errors.Join(errs...)
}

// sweepDead deletes the status objects of nodes whose speaker is not alive: the ServiceL2Status
// objects the cache (every speaker caches them all) selects by label, the ServiceBGPStatus and
// BGPSessionStatus objects by label on the API server (sweepDeadBGP).
func (w *Writer) sweepDead(ctx context.Context, alive map[string]bool) error {
	var names []string
	for n, ok := range alive {
		// A name that is no label value labels no object.
		if ok && len(validation.IsValidLabelValue(n)) == 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil // no live speaker known, not even this one: a sweep would delete everything
	}
	slices.Sort(names)
	var errs []error
	if w.l2 != nil {
		for name, node := range w.l2.Dead(alive) {
			if err := remove(ctx, w, w.l2Kind(), name); err != nil {
				errs = append(errs, fmt.Errorf("%w (of dead speaker %s)", err, node))
			}
		}
	}
	labelled, err := labels.NewRequirement(LabelNode, selection.Exists, nil)
	if err != nil {
		return err
	}
	dead, err := labels.NewRequirement(LabelNode, selection.NotIn, names)
	if err != nil {
		return fmt.Errorf("selecting dead speakers' objects: %w", err)
	}
	sel := labels.NewSelector().Add(*labelled, *dead)
	// Only the dead speakers' objects, from the cache (read only: its own objects, not copies): the
	// cache filters by label before it builds the list, which at every resync would otherwise hold
	// every node's ServiceL2Status (10,000 at 10,000 Services).
	var l2 v1beta1.ServiceL2StatusList
	if w.l2 == nil {
		if err := w.c.List(ctx, &l2, client.InNamespace(w.ns), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("listing ServiceL2Status: %w", err)
		}
	}
	for i := range l2.Items {
		o := &l2.Items[i]
		if err := w.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting ServiceL2Status %s of dead speaker %s: %w", o.Name, o.Labels[LabelNode], err))
		}
	}
	return errors.Join(append(errs, w.sweepDeadBGP(ctx, strings.Join(names, ","), sel))...)
}

// sweepDeadBGP deletes, on the API server, the ServiceBGPStatus and BGPSessionStatus objects
// selected by dead (those labelled with a node outside the live ones, whose sorted names are key):
// at once when the live speakers differ from the last sweep's, else every bgpSweepEvery.
func (w *Writer) sweepDeadBGP(ctx context.Context, key string, dead labels.Selector) error {
	w.mu.Lock()
	due := key != w.swept || w.now().Sub(w.sweptAt) >= bgpSweepEvery
	w.mu.Unlock()
	if !due {
		return nil
	}
	for _, k := range []struct {
		name string
		obj  client.Object
	}{{"ServiceBGPStatus", &v1beta1.ServiceBGPStatus{}}, {"BGPSessionStatus", &v1beta1.BGPSessionStatus{}}} {
		if err := w.c.DeleteAllOf(ctx, k.obj, client.InNamespace(w.ns), client.MatchingLabelsSelector{Selector: dead}); err != nil {
			return fmt.Errorf("deleting the %s objects of speakers not alive (%s): %w", k.name, dead, err)
		}
	}
	w.mu.Lock()
	w.swept, w.sweptAt = key, w.now()
	w.mu.Unlock()
	return nil
}
