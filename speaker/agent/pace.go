package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event storms
//
// Every relevant API object change recomputes the node's whole plan. A burst of thousands of
// EndpointSlice updates (a rollout, a flapping readiness probe) would otherwise keep the speaker
// recomputing back to back, using its whole CPU limit; under a CFS quota the process is then
// frozen for most of each period, memberlist's acks miss their deadlines, and live speakers are
// declared dead. Two things prevent that:
//
//   - Updates that change nothing the speaker reads do not trigger a recomputation: EndpointSlice
//     address or port churn leaves the model's summary of the slice as it was (model.setSlice),
//     and Node heartbeats and informer resyncs of unchanged objects are dropped (relevantUpdate).
//   - Recomputations caused by API events are paced (pacer): the first one after a quiet
//     moment runs at once, later ones wait until the recomputing has used at most syncBudget of
//     the time since the last one ended, and all the events of that wait are coalesced into one.
//     Membership changes never wait: failover is re-elected at once.

// syncBudget is the share of wall time recomputations caused by API events may take: 10% of
// one core, a fifth of the speaker's 500m CPU limit, leaves memberlist ample CPU in any storm.
const syncBudget = 0.1

// Bounds of the wait between two recomputations caused by API events.
const (
	minSyncGap = 10 * time.Millisecond
	maxSyncGap = 2 * time.Second
)

// pacer decides when the next recomputation caused by API events may start. It is not safe for
// concurrent use; the agent's loop owns it.
type pacer struct {
	budget   float64
	min, max time.Duration
	lastEnd  time.Time     // end of the last recomputation (any cause); zero before the first
	lastCost time.Duration // how long it took
}

func newPacer() *pacer { return &pacer{budget: syncBudget, min: minSyncGap, max: maxSyncGap} }

// gap is the pause owed after a recomputation that took cost: cost*(1-budget)/budget, so that
// recomputing takes at most budget of the time, within [min, max].
func (p *pacer) gap(cost time.Duration) time.Duration {
	g := time.Duration(float64(cost) * (1 - p.budget) / p.budget)
	return min(max(g, p.min), p.max)
}

// wait returns how long a recomputation asked for at now must wait (0: run it now).
func (p *pacer) wait(now time.Time) time.Duration {
	if p.lastEnd.IsZero() {
		return 0
	}
	next := p.lastEnd.Add(p.gap(p.lastCost))
	if !now.Before(next) {
		return 0
	}
	return next.Sub(now)
}

// done records a recomputation that ran from start to end.
func (p *pacer) done(start, end time.Time) {
	p.lastEnd, p.lastCost = end, end.Sub(start)
}

// Reasons for a recomputation, the label of herald_speaker_syncs_total.
const (
	syncAPI     = "api"
	syncMembers = "members"
	syncResync  = "resync"
	syncStart   = "start"
	// syncConflicts: the layer-2 announcer's address conflicts changed (reported at once).
	syncConflicts = "conflicts"
)

// paceMetrics count the recomputations and the events coalesced into them.
type paceMetrics struct {
	syncs     *prometheus.CounterVec
	busy      prometheus.Counter
	coalesced prometheus.Counter
	skipped   prometheus.Counter
	// scope counts the computations by what they recomputed: every IP, or the IPs of the Services
	// that changed; ips the IPs recomputed.
	scope *prometheus.CounterVec
	ips   prometheus.Counter
}

// Scopes of herald_speaker_computations_total.
const (
	scopeAll      = "all"
	scopeServices = "services"
	scopeNodes    = "nodes"
)

func newPaceMetrics(reg prometheus.Registerer) *paceMetrics {
	m := &paceMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_speaker_syncs_total",
			Help: "Recomputations of the node's announcements, by cause: api (object changes, paced), members (membership changes, at once), resync, start.",
		}, []string{"cause"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_speaker_sync_busy_seconds_total",
			Help: "Wall time spent recomputing (reading the cache, planning, announcing, events and status).",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_speaker_sync_events_coalesced_total",
			Help: "Object changes that were folded into a later recomputation instead of causing their own.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_speaker_sync_events_ignored_total",
			Help: "Object updates ignored because they change nothing the speaker reads (address churn in EndpointSlices, Node heartbeats, resyncs).",
		}),
	}
	m.scope = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_speaker_computations_total",
		Help: "Recomputations by scope: all (every IP: configuration, Secrets, this node, interfaces, resync, start), nodes (after a change of other Nodes or of membership: only the IPs those nodes own or may come to own, and those in pools a BGPAdvertisement covers) or services (only the IPs of the Services and EndpointSlices that changed).",
	}, []string{"scope"})
	m.ips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "herald_speaker_recomputed_ips_total",
		Help: "IPs whose plan was recomputed; over herald_speaker_computations_total, the IPs one computation costs.",
	})
	for _, c := range []string{syncAPI, syncMembers, syncResync, syncStart, syncConflicts} {
		m.syncs.WithLabelValues(c)
	}
	for _, s := range []string{scopeAll, scopeNodes, scopeServices} {
		m.scope.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.busy, m.coalesced, m.skipped, m.scope, m.ips)
	}
	return m
}

// relevantUpdate reports whether an update from old to new, of an object of the cache (Nodes,
// Secrets, Herald's configuration), may change the plan, the events or the status the speaker
// derives from it. It errs on the side of true: only changes known to be invisible to the speaker
// are false. Services and EndpointSlices do not come through the cache (store.go).
func relevantUpdate(old, new any) bool {
	om, ok1 := old.(metav1.Object)
	nm, ok2 := new.(metav1.Object)
	if ok1 && ok2 && om.GetResourceVersion() != "" && om.GetResourceVersion() == nm.GetResourceVersion() {
		return false // an informer resync: nothing changed
	}
	switch o := old.(type) {
	case *corev1.Node:
		n, ok := new.(*corev1.Node)
		return !ok || !equality.Semantic.DeepEqual(viewOfNode(o), viewOfNode(n))
	}
	return true
}

// endpointView is what the speaker reads of one endpoint: where it runs and whether it serves.
type endpointView struct {
	Node                        string
	Ready, Serving, Terminating triState
}

// triState is an optional bool: unset, true or false.
type triState uint8

func tri(b *bool) triState {
	switch {
	case b == nil:
		return 0
	case *b:
		return 1
	default:
		return 2
	}
}

// nodeView is what the speaker reads of a Node: labels (node selectors, exclusion), spec,
// addresses (joining, router IDs) and the conditions' states, not their heartbeat times.
type nodeView struct {
	Labels     map[string]string
	Spec       corev1.NodeSpec
	Addresses  []corev1.NodeAddress
	Conditions map[corev1.NodeConditionType]corev1.ConditionStatus
	Deleting   bool
}

func viewOfNode(n *corev1.Node) nodeView {
	v := nodeView{Labels: n.Labels, Spec: n.Spec, Addresses: n.Status.Addresses, Deleting: n.DeletionTimestamp != nil,
		Conditions: map[corev1.NodeConditionType]corev1.ConditionStatus{}}
	for _, c := range n.Status.Conditions {
		v.Conditions[c.Type] = c.Status
	}
	return v
}
