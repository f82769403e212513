// Package agent runs one node's speaker: it reads the cluster through an informer cache (internal/kube/cache),
// learns which speakers are alive from memberlist, computes this node's plan (package plan), drives
// the layer-2 announcer and the BGP speaker with it, and reports what it announces in
// ServiceL2Status/ServiceBGPStatus objects, events and metrics.
//
// Liveness comes from memberlist, not from the API server: when the API server is unreachable the
// cache keeps its last state, so the speaker keeps announcing what it announced; status writes are
// retried in the background and never hold up an announcement.
//
// # Eligibility: a node is elected only when it can answer
//
// Being alive in memberlist is not enough to be handed IPs. Each speaker gossips its readiness in
// its memberlist metadata (package nodemeta), and election counts a node only when it says it is
// ready. A speaker says so once it has a valid configuration, knows the other speakers (see
// below) and, for layer 2, has opened its responders on the interfaces it selected (package
// layer2's rule: the interfaces holding the node's addresses and default routes, plus those the
// L2Advertisements name); it publishes only the interfaces that are up and open. It stops saying so
// when that no longer holds: an interface that goes down or disappears leaves the list at once
// (rtnetlink reports it), and a node with none left is not elected for layer 2.
//
// Changes are ordered so that an IP never has two responders: a speaker that becomes able to
// answer publishes that first and answers only in its next computation, after the update went out
// (the previous owner stops answering when it hears of it); a speaker that becomes unable stops
// answering first and publishes after. The gap in between is the time gossip takes to reach the
// others, tens of milliseconds.
//
// # Joining
//
// A starting speaker contacts the speakers of every Node in the background, in parallel, and never
// holds its first computation on those dials (a NotReady Node's speaker can take the whole TCP
// timeout to fail). It must not answer for any IP before it knows the others, or it would elect
// itself for everything and answer alongside the real owners; so it counts as ready only once one
// of these holds: a speaker answered its join (memberlist's push/pull hands over the full member
// list, metadata included), another speaker contacted it, there is nobody to contact, every dial
// failed (it is alone), or JoinTimeout passed (it goes on with what it knows, and says so). Until
// then it publishes that it is not ready, and the others keep its share of the IPs.
//
// # Mixed versions
//
// Speakers from before readiness publish only their interface list; they are read as ready when
// they list one, as they count themselves, and a speaker that is not ready publishes no interfaces,
// so old speakers do not elect it either (see package nodemeta).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/status"
)

// Membership is what the agent needs of memberlist (package members implements it).
type Membership interface {
	Members() []string
	// MemberMeta returns the metadata of every live member, by name: one reading of it is also
	// the list of members (see membership).
	MemberMeta() map[string][]byte
	SetMeta(meta []byte, timeout time.Duration) error
	Changes() <-chan struct{}
	Join(addrs []string) (int, error)
	Leave(timeout time.Duration) error
}

// Layer2 is the ARP/NDP announcer (package layer2 implements it).
type Layer2 interface {
	// SetOwned makes owned (address -> interfaces) the complete set to answer for. It reads owned
	// only while it runs: the agent changes the map afterwards.
	SetOwned(owned map[netip.Addr][]string) error
	// Prepare keeps the named interfaces open and returns those it could open.
	Prepare(names []string) ([]string, error)
}

// Links reads this node's network interfaces and reports changes to them (layer2.Netlink
// implements it).
type Links interface {
	Scan() (layer2.Host, error)
	Watch(ctx context.Context, changed func()) error
}

// BGP is the BGP speaker (package bgp implements it).
type BGP interface {
	SetPeers(ctx context.Context, peers []bgp.Peer) error
	SetRoutes(ctx context.Context, routes bgp.Routes) error
	Status() []bgp.PeerStatus
	// Changes delivers a value soon after Status may report something new (a session's state
	// changed); several changes may come as one.
	Changes() <-chan struct{}
	// Shutdown withdraws every route, then closes the sessions: the node goes away.
	Shutdown(ctx context.Context) error
	// StopForRestart closes the sessions with graceful restart without withdrawing: a new
	// speaker is about to start on this node (leave.go).
	StopForRestart(ctx context.Context) error
}

// Options configure an Agent.
type Options struct {
	NodeName string
	// Namespace holds Herald's configuration objects and the status objects the speaker writes.
	Namespace string
	// LBClass: empty handles Services without spec.loadBalancerClass, otherwise only that class.
	LBClass string
	// NodeIPv4/NodeIPv6 are this node's addresses (BGP router ID and next hops).
	NodeIPv4, NodeIPv6 netip.Addr
	// MemberlistPort is the port speakers gossip on, to join the other nodes' speakers.
	MemberlistPort int

	Cache  *cache.Cache
	Client client.Client
	// Watcher lists and watches the Services and EndpointSlices of the cluster for the model
	// (store.go); the other kinds come from Cache.
	Watcher client.WithWatch
	// Reader reads without the cache (the Pod and DaemonSet that tell a restart from a stop for
	// good, leave.go); nil: the speaker always stops for good.
	Reader client.Reader
	// PodName is this speaker's Pod in Namespace; empty: unknown (stops are for good).
	PodName  string
	Recorder record.EventRecorder
	Members  Membership
	L2       Layer2
	BGP      BGP
	// Links reads this node's interfaces for layer 2; nil: the node answers on no interface.
	Links Links

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Resync is how often the agent recomputes even without a change (default 10s); it also
	// rescans the interfaces (changes are normally seen at once through Links.Watch) and re-joins
	// missing members at that pace.
	Resync time.Duration
	// JoinTimeout bounds how long a starting speaker waits to know the other speakers before it
	// says it is ready (default 3s); see "Joining" in the package documentation.
	JoinTimeout time.Duration
}

// Agent is one node's speaker loop.
type Agent struct {
	opts    Options
	log     *slog.Logger
	queue   workqueue.TypedDelayingInterface[planKey] // the loop's (loop.go)
	causes  causes                                    // why the key was added
	metrics *metrics
	pace    *paceMetrics
	status  *status.Writer
	l2s     *l2Store // the ServiceL2Status objects (l2store.go)

	joining atomic.Bool // a background join is running

	rd readiness // interfaces, join state and what this node published (ready.go)

	// Read and written by the loop's goroutine only (report, syncAll).
	//
	// statusOpen is set by the first computation in which this speaker is ready (or once
	// statusStartGrace has passed since start): from then on it writes its status objects and
	// reports unannounced IPs. Before, its plan is not yet its own (it has not joined the other
	// speakers or published its readiness) and names nothing for this node: the status objects
	// the speaker before it wrote stay, instead of being deleted and written again, and a Service
	// they name is no news (no NodeAssigned) when this speaker takes it up.
	statusOpen bool
	selfReady  bool           // this node was ready in the last full computation
	startedAt  time.Time      // when Start was called
	prev       previousStatus // this node's status objects the speaker before this one wrote
	// statusAlive are the live speakers of the last full desired status (nil: none built yet): a
	// full computation that changed no Service, the live speakers, MACs nor conflicts converges
	// that desired state again instead of building it anew (report).
	statusAlive []string

	mu         sync.Mutex
	cfg        *config.Config    // last good configuration
	prevOwned  map[string]bool   // Services this node announced over layer 2 at the last sync
	prevBGP    map[string]bool   // Services this node advertised over BGP at the last sync
	warned     map[string]string // unannounced warnings emitted: "svc ip" -> reason
	lastConfig string            // last configuration error reported
	// bgpApplied are the route tables last given to the BGP speaker; bgpPending the deadlines
	// of the routes kept for a handover (handover.go), and handoverTimer the sync that ends them.
	bgpApplied    bgp.Routes
	bgpPending    map[routeKey]time.Time
	handoverTimer *time.Timer

	l2c conflictState // address conflicts (conflicts.go)

	model  *model  // Services and endpoints from the reflectors (model.go, store.go)
	eng    *engine // per-IP plans; the loop's goroutine only (engine.go)
	synced []toolscache.InformerSynced
	// members is the reading of memberlist the last full computation planned with; the loop's
	// goroutine only (sync.go).
	members membership

	// observeSync, when set (by tests), is told how long each computation took.
	observeSync func(cause string, took time.Duration)
}

// New checks opts and returns an Agent; Start runs it.
func New(opts Options) (*Agent, error) {
	switch {
	case opts.NodeName == "":
		return nil, errors.New("agent: node name is required")
	case opts.Cache == nil || opts.Client == nil || opts.Watcher == nil || opts.Members == nil || opts.L2 == nil || opts.BGP == nil:
		return nil, errors.New("agent: cache, client, watcher, members, layer2 and bgp are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Second
	}
	if opts.JoinTimeout <= 0 {
		opts.JoinTimeout = 3 * time.Second
	}
	if opts.Recorder == nil {
		opts.Recorder = &record.FakeRecorder{}
	}
	a := &Agent{
		opts:       opts,
		log:        opts.Logger,
		queue:      newPlanQueue(),
		metrics:    newMetrics(opts.Registerer),
		pace:       newPaceMetrics(opts.Registerer),
		prevOwned:  map[string]bool{},
		prevBGP:    map[string]bool{},
		warned:     map[string]string{},
		model:      newModel(),
		eng:        newEngine(),
		bgpPending: map[routeKey]time.Time{},
	}
	a.status = status.NewWriter(opts.Client, opts.Namespace, opts.NodeName, opts.Logger, opts.Members.Members)
	a.l2s = newL2Store(opts.NodeName)
	a.l2s.key = a.model.serviceKey
	a.status.UseL2Objects(a.l2s)
	a.rd.metrics = newReadyMetrics(opts.Registerer)
	return a, nil
}

// lastConfigError returns the configuration error in force, empty when the configuration is valid.
func (a *Agent) lastConfigError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastConfig
}

// Trigger asks for a recomputation of everything soon. It never blocks.
func (a *Agent) Trigger() {
	a.model.markFull()
	a.signal()
}

// signal asks for a computation of what changed in the model. It never blocks.
func (a *Agent) signal() { a.enqueue(syncAPI) }

// Start runs the agent until ctx ends, then stops announcing, withdraws BGP routes and leaves the
// memberlist cluster, in that order, so the IPs move at once and never have two responders.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.watch(ctx); err != nil {
		return err
	}
	a.startedAt = time.Now()
	if err := a.watchPreviousStatus(ctx); err != nil {
		return err
	}
	a.watchL2Status(ctx)
	if !a.opts.Cache.WaitForCacheSync(ctx) {
		return a.shutdown()
	}
	// The model is complete once the reflectors' stores hold their first lists and the handlers
	// have seen every object the informers listed.
	if !toolscache.WaitForCacheSync(ctx.Done(), a.synced...) {
		return a.shutdown()
	}
	a.refreshInterfaces()
	a.joinInBackground(ctx)
	go a.watchLinks(ctx)

	go a.status.Run(ctx)
	go a.watchSessions(ctx, sessionRecheck, sessionGrace)
	// The loop reconciles one key (loop.go), added by these sources: object changes (paced, see
	// pacer), membership changes (at once), address conflicts and the resync.
	a.enqueue(syncStart)
	a.forward(ctx, a.opts.Members.Changes(), syncMembers)
	a.forward(ctx, a.conflictChanges(), syncConflicts)
	a.resyncs(ctx, a.opts.Resync)
	a.runLoop(ctx)
	return a.shutdown()
}

// pacedSync recomputes and records the cost with the pacer and the metrics.
func (a *Agent) pacedSync(ctx context.Context, pace *pacer, cause string) {
	start := time.Now()
	a.sync(ctx, cause)
	end := time.Now()
	pace.done(start, end)
	if a.observeSync != nil {
		a.observeSync(cause, end.Sub(start))
	}
	a.pace.syncs.WithLabelValues(cause).Inc()
	a.pace.busy.Add(end.Sub(start).Seconds())
}

// watch records Services and EndpointSlices in the model (through reflectors, store.go), each
// change of one making the IPs of its Service recomputed, and makes every relevant change of the
// other objects recompute everything.
func (a *Agent) watch(ctx context.Context) error {
	svcs, eps := a.serviceStore(), a.sliceStore()
	runReflector(ctx, a.opts.Watcher, "", &corev1.Service{}, func() client.ObjectList { return &corev1.ServiceList{} }, svcs)
	runReflector(ctx, a.opts.Watcher, "", &discoveryv1.EndpointSlice{}, func() client.ObjectList { return &discoveryv1.EndpointSliceList{} }, eps)
	a.synced = append(a.synced, svcs.hasSynced, eps.hasSynced)
	triggered := []client.Object{&corev1.Node{}, &corev1.Secret{}}
	triggered = append(triggered, kube.ConfigKinds()...)
	for _, o := range triggered {
		inf, err := a.opts.Cache.GetInformer(ctx, o)
		if err != nil {
			return fmt.Errorf("watching %T: %w", o, err)
		}
		_, isNode := o.(*corev1.Node)
		reg, err := inf.AddEventHandler(triggerHandler{a: a, nodes: isNode})
		if err != nil {
			return fmt.Errorf("watching %T: %w", o, err)
		}
		a.synced = append(a.synced, reg.HasSynced)
	}
	return nil
}

// triggerHandler asks for a recomputation on any change of the objects of one informer: of every
// IP, or for Nodes of the IPs that nodes' changes may affect (engine.affectedByNodes).
type triggerHandler struct {
	a     *Agent
	nodes bool
}

func (h triggerHandler) OnAdd(any, bool) { h.trigger() }
func (h triggerHandler) OnDelete(any)    { h.trigger() }

// OnUpdate ignores updates that change nothing the speaker reads (see relevantUpdate).
func (h triggerHandler) OnUpdate(old, new any) {
	if !relevantUpdate(old, new) {
		h.a.pace.skipped.Inc()
		return
	}
	h.trigger()
}

func (h triggerHandler) trigger() {
	if h.nodes {
		h.a.model.markNodes()
		h.a.signal()
		return
	}
	h.a.Trigger()
}

// shutdown stops answering first, then leaves the speakers' cluster while BGP routes are withdrawn:
// the others take the layer-2 IPs over as soon as they hear of the leave, and by then this node no
// longer answers, so there is never a moment with two responders.
func (a *Agent) shutdown() error {
	start := time.Now()
	a.mu.Lock()
	if a.handoverTimer != nil {
		a.handoverTimer.Stop()
	}
	a.mu.Unlock()
	errL2 := a.opts.L2.SetOwned(nil)
	var peers []*config.Peer
	if a.eng.ready() {
		peers = a.eng.ctx.Peers()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout(peers))
	defer cancel()
	bgpDone := make(chan error, 1)
	go func() {
		// Reading what decides the stop (up to stopTimeout) concerns BGP only: memberlist leaves
		// meanwhile, so layer-2 IPs move as soon as on any stop.
		restart, why := decideStop(a.readStopFacts(ctx))
		if restart {
			a.log.Info("stopping for a restart: BGP routes kept at the routers for the graceful restart time", "why", why)
			bgpDone <- a.opts.BGP.StopForRestart(ctx)
			return
		}
		a.log.Info("stopping for good: withdrawing BGP routes before closing the sessions", "why", why)
		bgpDone <- a.opts.BGP.Shutdown(ctx)
	}()
	errLeave := a.opts.Members.Leave(time.Second)
	errBGP := <-bgpDone
	if errors.Is(errBGP, bgp.ErrShutdown) {
		errBGP = nil
	}
	a.log.Info("stopped announcing, left the speakers and withdrew BGP routes", "took", time.Since(start))
	return errors.Join(errL2, errBGP, errLeave)
}
