package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/plan"
)

// Labels on the status objects a speaker writes.
const (
	LabelNode             = "herald.dev/node"
	LabelServiceName      = "herald.dev/service-name"
	LabelServiceNamespace = "herald.dev/service-namespace"
	LabelPeer             = "herald.dev/peer"
)

// desired is the set of status objects this node should have, by name.
type desired struct {
	l2  map[string]v1beta1.ServiceL2StatusStatus
	bgp map[string]v1beta1.ServiceBGPStatusStatus
	// sessions are this node's BGP session states, by object name.
	sessions map[string]v1beta1.BGPSessionStatusStatus
	// sweep, when not nil, makes this node remove the status objects of nodes outside it: one
	// live speaker (the first by name) cleans up after speakers that died, so a dead node's
	// ServiceL2Status does not stay next to the new owner's.
	sweep map[string]bool
}

// statusName is a stable object name for a (node, Service "ns/name") pair.
func statusName(node, svcKey string) string {
	ns, name, _ := strings.Cut(svcKey, "/")
	return objectName(node, ns, name)
}

// objectName names the status object of a tuple of names, such as (node, namespace, Service) or
// (node, peer): the parts joined with "-" for people to read, then "-" and a hash of the tuple
// itself, so that tuples whose joined text is the same (node a-b in namespace c, node a in
// namespace b-c) get different names. The readable part is cut to keep the name within 253
// characters. Objects named by an older scheme carry this node's label and are deleted as
// unwanted by the next convergence.
func objectName(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	suffix := "-" + hex.EncodeToString(sum[:5])
	readable := strings.Join(parts, "-")
	if limit := 253 - len(suffix); len(readable) > limit {
		readable = readable[:limit]
	}
	return strings.TrimRight(readable, "-.") + suffix
}

func desiredStatus(p plan.Plan, node string, alive []string) desired {
	d := desired{l2: map[string]v1beta1.ServiceL2StatusStatus{}, bgp: map[string]v1beta1.ServiceBGPStatusStatus{}}
	if len(alive) > 0 && alive[0] == node {
		d.sweep = map[string]bool{}
		for _, n := range alive {
			d.sweep[n] = true
		}
	}
	for _, as := range p.L2 {
		ns, name, _ := strings.Cut(as.Service, "/")
		key := statusName(node, as.Service)
		st := d.l2[key]
		st.Node, st.ServiceName, st.ServiceNamespace = node, name, ns
		for _, ifi := range as.Interfaces {
			if !slices.ContainsFunc(st.Interfaces, func(i v1beta1.InterfaceInfo) bool { return i.Name == ifi }) {
				st.Interfaces = append(st.Interfaces, v1beta1.InterfaceInfo{Name: ifi})
			}
		}
		d.l2[key] = st
	}
	for _, as := range p.BGP {
		ns, name, _ := strings.Cut(as.Service, "/")
		key := statusName(node, as.Service)
		st := d.bgp[key]
		st.Node, st.ServiceName, st.ServiceNamespace = node, name, ns
		for _, peer := range as.Peers {
			if !slices.Contains(st.Peers, peer) {
				st.Peers = append(st.Peers, peer)
			}
		}
		slices.Sort(st.Peers)
		d.bgp[key] = st
	}
	return d
}

// statusWriter converges the status objects of this node towards the latest desired set in the
// background, retrying while the API server is unreachable.
type statusWriter struct {
	c    client.Client
	ns   string
	node string
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[string]v1beta1.BGPSessionStatusStatus
	want     *desired
	applied  *desired
	kick     chan struct{}

	// alive, when set, returns the speakers alive now: a sweep never removes the objects of one of
	// them, even when the desired state it applies was computed before that speaker came back.
	alive func() []string
}

func newStatusWriter(c client.Client, ns, node string, log *slog.Logger) *statusWriter {
	return &statusWriter{c: c, ns: ns, node: node, log: log, kick: make(chan struct{}, 1)}
}

func (w *statusWriter) set(d desired) {
	w.mu.Lock()
	d.sessions = w.sessions
	if w.applied != nil && reflect.DeepEqual(*w.applied, d) {
		w.mu.Unlock()
		return
	}
	w.want = &d
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// recheck makes the next set apply even when the desired state did not change, so that an object
// removed behind this writer's back (by a sweep racing with this speaker's restart) is written
// again. The agent calls it at every resync.
func (w *statusWriter) recheck() {
	w.mu.Lock()
	w.applied = nil
	w.mu.Unlock()
}

// setSessions replaces the BGP session states to report, keeping the rest of the desired state.
func (w *statusWriter) setSessions(s map[string]v1beta1.BGPSessionStatusStatus) {
	w.mu.Lock()
	if reflect.DeepEqual(w.sessions, s) {
		w.mu.Unlock()
		return
	}
	w.sessions = s
	var d desired
	switch {
	case w.want != nil:
		d = *w.want
	case w.applied != nil:
		d = *w.applied
	default:
		// Nothing computed yet: the first set carries the sessions along.
		w.mu.Unlock()
		return
	}
	d.sessions = s
	w.want = &d
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *statusWriter) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry.C:
		}
		w.mu.Lock()
		d := w.want
		w.mu.Unlock()
		if d == nil {
			continue
		}
		if err := w.apply(ctx, *d); err != nil {
			if ctx.Err() == nil {
				w.log.Warn("writing ServiceL2Status/ServiceBGPStatus; retrying", "err", err)
				retry.Reset(2 * time.Second)
			}
			continue
		}
		w.mu.Lock()
		w.applied = d
		if w.want == d {
			w.want = nil
		}
		w.mu.Unlock()
	}
}

// apply converges this node's status objects of every kind towards d and, when d says so, removes
// those of speakers that died.
func (w *statusWriter) apply(ctx context.Context, d desired) error {
	var (
		l2   v1beta1.ServiceL2StatusList
		bgp  v1beta1.ServiceBGPStatusList
		sess v1beta1.BGPSessionStatusList
	)
	mine := client.MatchingLabels{LabelNode: w.node}
	for _, l := range []client.ObjectList{&l2, &bgp, &sess} {
		if err := w.c.List(ctx, l, client.InNamespace(w.ns), mine); err != nil {
			return fmt.Errorf("listing %T: %w", l, err)
		}
	}
	errs := []error{
		converge(ctx, w, "ServiceL2Status", l2.Items, d.l2,
			func(o *v1beta1.ServiceL2Status) *v1beta1.ServiceL2StatusStatus { return &o.Status },
			func(st v1beta1.ServiceL2StatusStatus) map[string]string {
				return w.serviceLabels(st.ServiceNamespace, st.ServiceName)
			}),
		converge(ctx, w, "ServiceBGPStatus", bgp.Items, d.bgp,
			func(o *v1beta1.ServiceBGPStatus) *v1beta1.ServiceBGPStatusStatus { return &o.Status },
			func(st v1beta1.ServiceBGPStatusStatus) map[string]string {
				return w.serviceLabels(st.ServiceNamespace, st.ServiceName)
			}),
		converge(ctx, w, "BGPSessionStatus", sess.Items, d.sessions,
			func(o *v1beta1.BGPSessionStatus) *v1beta1.BGPSessionStatusStatus { return &o.Status },
			func(st v1beta1.BGPSessionStatusStatus) map[string]string {
				return map[string]string{LabelNode: w.node, LabelPeer: st.Peer}
			}),
	}
	if d.sweep != nil {
		alive := maps.Clone(d.sweep)
		if w.alive != nil {
			for _, n := range w.alive() {
				alive[n] = true
			}
		}
		errs = append(errs, w.sweepDead(ctx, alive))
	}
	return errors.Join(errs...)
}

func (w *statusWriter) serviceLabels(ns, name string) map[string]string {
	return map[string]string{LabelNode: w.node, LabelServiceName: name, LabelServiceNamespace: ns}
}

// objectPtr is a pointer to a status kind's object type.
type objectPtr[T any] interface {
	*T
	client.Object
}

// converge makes the objects have (of one kind, this node's) those of want, by name: it creates the
// missing ones, updates the status of those that differ and deletes the rest.
func converge[T any, S any, P objectPtr[T]](ctx context.Context, w *statusWriter, kind string, have []T, want map[string]S,
	status func(P) *S, labels func(S) map[string]string) error {
	var errs []error
	byName := make(map[string]P, len(have))
	for i := range have {
		o := P(&have[i])
		byName[o.GetName()] = o
	}
	for name, st := range want {
		obj := byName[name]
		if obj == nil {
			obj = P(new(T))
			obj.SetName(name)
			obj.SetNamespace(w.ns)
			obj.SetLabels(labels(st))
			if err := w.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("creating %s %s: %w", kind, name, err))
				continue
			}
		}
		if equality.Semantic.DeepEqual(*status(obj), st) {
			continue
		}
		*status(obj) = st
		if err := w.c.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("updating %s %s: %w", kind, name, err))
		}
	}
	for name, obj := range byName {
		if _, ok := want[name]; !ok {
			if err := w.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting %s %s: %w", kind, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// sweepDead deletes the status objects of nodes whose speaker is not alive.
func (w *statusWriter) sweepDead(ctx context.Context, alive map[string]bool) error {
	var (
		l2   v1beta1.ServiceL2StatusList
		bgp  v1beta1.ServiceBGPStatusList
		sess v1beta1.BGPSessionStatusList
	)
	for _, l := range []client.ObjectList{&l2, &bgp, &sess} {
		if err := w.c.List(ctx, l, client.InNamespace(w.ns), client.HasLabels{LabelNode}); err != nil {
			return fmt.Errorf("listing %T: %w", l, err)
		}
	}
	return errors.Join(
		deleteDead(ctx, w, "ServiceL2Status", l2.Items, alive),
		deleteDead(ctx, w, "ServiceBGPStatus", bgp.Items, alive),
		deleteDead(ctx, w, "BGPSessionStatus", sess.Items, alive),
	)
}

func deleteDead[T any, P objectPtr[T]](ctx context.Context, w *statusWriter, kind string, items []T, alive map[string]bool) error {
	var errs []error
	for i := range items {
		o := P(&items[i])
		if node := o.GetLabels()[LabelNode]; !alive[node] {
			if err := w.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting %s %s of dead speaker %s: %w", kind, o.GetName(), node, err))
			}
		}
	}
	return errors.Join(errs...)
}
