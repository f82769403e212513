package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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

// statusName is a stable object name for a (node, Service "ns/name") pair, hashed when too long.
func statusName(node, svcKey string) string {
	ns, name, _ := strings.Cut(svcKey, "/")
	return objectName(node, ns, name)
}

// objectName joins parts with "-" into an object name, shortened with a hash beyond 253 characters.
func objectName(parts ...string) string {
	n := strings.Join(parts, "-")
	if len(n) <= 253 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:200] + "-" + hex.EncodeToString(sum[:8])
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

func (w *statusWriter) labels(st interface{ svc() (string, string) }) map[string]string {
	ns, name := st.svc()
	return map[string]string{LabelNode: w.node, LabelServiceName: name, LabelServiceNamespace: ns}
}

type l2st v1beta1.ServiceL2StatusStatus

func (s l2st) svc() (string, string) { return s.ServiceNamespace, s.ServiceName }

type bgpst v1beta1.ServiceBGPStatusStatus

func (s bgpst) svc() (string, string) { return s.ServiceNamespace, s.ServiceName }

func (w *statusWriter) apply(ctx context.Context, d desired) error {
	var errs []error
	sel := client.MatchingLabels{LabelNode: w.node}

	var l2 v1beta1.ServiceL2StatusList
	if err := w.c.List(ctx, &l2, client.InNamespace(w.ns), sel); err != nil {
		return fmt.Errorf("listing ServiceL2Status: %w", err)
	}
	have := map[string]*v1beta1.ServiceL2Status{}
	for i := range l2.Items {
		have[l2.Items[i].Name] = &l2.Items[i]
	}
	for name, st := range d.l2 {
		obj := have[name]
		if obj == nil {
			obj = &v1beta1.ServiceL2Status{}
			obj.Name, obj.Namespace, obj.Labels = name, w.ns, w.labels(l2st(st))
			if err := w.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("creating ServiceL2Status %s: %w", name, err))
				continue
			}
		}
		if equality.Semantic.DeepEqual(obj.Status, st) {
			continue
		}
		obj.Status = st
		if err := w.c.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("updating ServiceL2Status %s: %w", name, err))
		}
	}
	for name, obj := range have {
		if _, ok := d.l2[name]; !ok {
			if err := w.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting ServiceL2Status %s: %w", name, err))
			}
		}
	}

	var bl v1beta1.ServiceBGPStatusList
	if err := w.c.List(ctx, &bl, client.InNamespace(w.ns), sel); err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing ServiceBGPStatus: %w", err))...)
	}
	haveB := map[string]*v1beta1.ServiceBGPStatus{}
	for i := range bl.Items {
		haveB[bl.Items[i].Name] = &bl.Items[i]
	}
	for name, st := range d.bgp {
		obj := haveB[name]
		if obj == nil {
			obj = &v1beta1.ServiceBGPStatus{}
			obj.Name, obj.Namespace, obj.Labels = name, w.ns, w.labels(bgpst(st))
			if err := w.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("creating ServiceBGPStatus %s: %w", name, err))
				continue
			}
		}
		if equality.Semantic.DeepEqual(obj.Status, st) {
			continue
		}
		obj.Status = st
		if err := w.c.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("updating ServiceBGPStatus %s: %w", name, err))
		}
	}
	for name, obj := range haveB {
		if _, ok := d.bgp[name]; !ok {
			if err := w.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting ServiceBGPStatus %s: %w", name, err))
			}
		}
	}
	errs = append(errs, w.applySessions(ctx, d.sessions))
	if d.sweep != nil {
		errs = append(errs, w.sweepDead(ctx, d.sweep))
	}
	return errors.Join(errs...)
}

// applySessions makes this node's BGPSessionStatus objects those of want.
func (w *statusWriter) applySessions(ctx context.Context, want map[string]v1beta1.BGPSessionStatusStatus) error {
	var errs []error
	var l v1beta1.BGPSessionStatusList
	if err := w.c.List(ctx, &l, client.InNamespace(w.ns), client.MatchingLabels{LabelNode: w.node}); err != nil {
		return fmt.Errorf("listing BGPSessionStatus: %w", err)
	}
	have := map[string]*v1beta1.BGPSessionStatus{}
	for i := range l.Items {
		have[l.Items[i].Name] = &l.Items[i]
	}
	for name, st := range want {
		obj := have[name]
		if obj == nil {
			obj = &v1beta1.BGPSessionStatus{}
			obj.Name, obj.Namespace = name, w.ns
			obj.Labels = map[string]string{LabelNode: w.node, LabelPeer: st.Peer}
			if err := w.c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("creating BGPSessionStatus %s: %w", name, err))
				continue
			}
		}
		if equality.Semantic.DeepEqual(obj.Status, st) {
			continue
		}
		obj.Status = st
		if err := w.c.Status().Update(ctx, obj); err != nil {
			errs = append(errs, fmt.Errorf("updating BGPSessionStatus %s: %w", name, err))
		}
	}
	for name, obj := range have {
		if _, ok := want[name]; !ok {
			if err := w.c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting BGPSessionStatus %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// sweepDead deletes the status objects of nodes whose speaker is not alive.
func (w *statusWriter) sweepDead(ctx context.Context, alive map[string]bool) error {
	var errs []error
	var l2 v1beta1.ServiceL2StatusList
	if err := w.c.List(ctx, &l2, client.InNamespace(w.ns), client.HasLabels{LabelNode}); err != nil {
		return fmt.Errorf("listing ServiceL2Status: %w", err)
	}
	for i := range l2.Items {
		if o := &l2.Items[i]; !alive[o.Labels[LabelNode]] {
			if err := w.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting ServiceL2Status %s of dead speaker %s: %w", o.Name, o.Labels[LabelNode], err))
			}
		}
	}
	var bl v1beta1.ServiceBGPStatusList
	if err := w.c.List(ctx, &bl, client.InNamespace(w.ns), client.HasLabels{LabelNode}); err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing ServiceBGPStatus: %w", err))...)
	}
	for i := range bl.Items {
		if o := &bl.Items[i]; !alive[o.Labels[LabelNode]] {
			if err := w.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting ServiceBGPStatus %s of dead speaker %s: %w", o.Name, o.Labels[LabelNode], err))
			}
		}
	}
	var sl v1beta1.BGPSessionStatusList
	if err := w.c.List(ctx, &sl, client.InNamespace(w.ns), client.HasLabels{LabelNode}); err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing BGPSessionStatus: %w", err))...)
	}
	for i := range sl.Items {
		if o := &sl.Items[i]; !alive[o.Labels[LabelNode]] {
			if err := w.c.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("deleting BGPSessionStatus %s of dead speaker %s: %w", o.Name, o.Labels[LabelNode], err))
			}
		}
	}
	return errors.Join(errs...)
}
