// Package agent runs one node's speaker: it reads the cluster through a controller-runtime cache,
// learns which speakers are alive from memberlist, computes this node's plan (package plan), drives
// the layer-2 announcer and the BGP speaker with it, and reports what it announces in
// ServiceL2Status/ServiceBGPStatus objects, events and metrics.
//
// Liveness comes from memberlist, not from the API server: when the API server is unreachable the
// cache keeps its last state, so the speaker keeps announcing what it announced; status writes are
// retried in the background and never hold up an announcement.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/bgp"
)

// Membership is what the agent needs of memberlist (package members implements it).
type Membership interface {
	Members() []string
	MemberMeta() map[string][]byte
	SetMeta(meta []byte, timeout time.Duration) error
	Changes() <-chan struct{}
	Join(addrs []string) (int, error)
	Leave(timeout time.Duration) error
}

// Layer2 is the ARP/NDP announcer (package layer2 implements it).
type Layer2 interface {
	SetOwned(owned map[netip.Addr][]string) error
}

// BGP is the BGP speaker (package bgp implements it).
type BGP interface {
	SetPeers(ctx context.Context, peers []bgp.Peer) error
	SetRoutes(ctx context.Context, routes []bgp.Route) error
	Status() []bgp.PeerStatus
	Shutdown(ctx context.Context) error
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

	Cache    cache.Cache
	Client   client.Client
	Recorder record.EventRecorder
	Members  Membership
	L2       Layer2
	BGP      BGP
	// Interfaces lists this node's interfaces usable for layer-2 announcements.
	Interfaces func() ([]string, error)

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Resync is how often the agent recomputes even without a change (default 10s); it also
	// checks the interfaces and re-joins missing members at that pace.
	Resync time.Duration
	// JoinTimeout bounds the wait for memberlist to merge the other speakers before the first
	// announcement (default 3s); a speaker that announced before knowing the others could answer
	// alongside the real owner.
	JoinTimeout time.Duration
}

// Agent is one node's speaker loop.
type Agent struct {
	opts    Options
	log     *slog.Logger
	trigger chan struct{}
	metrics *metrics
	pace    *paceMetrics
	status  *statusWriter

	joining atomic.Bool // a background join is running

	mu         sync.Mutex
	cfg        *config.Config // last good configuration
	meta       nodeMeta
	prevOwned  map[string]bool   // Services this node announced over layer 2 at the last sync
	prevBGP    map[string]bool   // Services this node advertised over BGP at the last sync
	warned     map[string]string // unannounced warnings emitted: "svc ip" -> reason
	lastConfig string            // last configuration error reported
}

// nodeMeta is what each speaker publishes about its node through memberlist.
type nodeMeta struct {
	Interfaces []string `json:"ifaces"`
}

// New checks opts and returns an Agent; Start runs it.
func New(opts Options) (*Agent, error) {
	switch {
	case opts.NodeName == "":
		return nil, errors.New("agent: node name is required")
	case opts.Cache == nil || opts.Client == nil || opts.Members == nil || opts.L2 == nil || opts.BGP == nil:
		return nil, errors.New("agent: cache, client, members, layer2 and bgp are required")
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
	if opts.Interfaces == nil {
		opts.Interfaces = func() ([]string, error) { return nil, nil }
	}
	if opts.Recorder == nil {
		opts.Recorder = &record.FakeRecorder{}
	}
	a := &Agent{
		opts:      opts,
		log:       opts.Logger,
		trigger:   make(chan struct{}, 1),
		metrics:   newMetrics(opts.Registerer),
		pace:      newPaceMetrics(opts.Registerer),
		prevOwned: map[string]bool{},
		prevBGP:   map[string]bool{},
		warned:    map[string]string{},
	}
	a.status = newStatusWriter(opts.Client, opts.Namespace, opts.NodeName, opts.Logger)
	return a, nil
}

// lastConfigError returns the configuration error in force, empty when the configuration is valid.
func (a *Agent) lastConfigError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastConfig
}

// Trigger asks for a recomputation soon. It never blocks.
func (a *Agent) Trigger() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Start runs the agent until ctx ends, then stops announcing, withdraws BGP routes and leaves the
// memberlist cluster, in that order, so the IPs move at once and never have two responders.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.watch(ctx); err != nil {
		return err
	}
	if !a.opts.Cache.WaitForCacheSync(ctx) {
		return a.shutdown()
	}
	a.refreshInterfaces()
	a.join(ctx)

	go a.status.run(ctx)
	go a.watchSessions(ctx, 2*time.Second, 10*time.Second)
	ticker := time.NewTicker(a.opts.Resync)
	defer ticker.Stop()
	// Object changes are paced (see pacer): at most one recomputation per gap, the changes
	// meanwhile coalesced into it. Membership changes re-elect at once.
	pace := newPacer()
	paced := time.NewTimer(time.Hour)
	paced.Stop()
	pending := false
	a.pacedSync(ctx, pace, syncStart)
	for {
		cause := syncAPI
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-a.trigger:
			if pending {
				a.pace.coalesced.Inc()
				continue
			}
			if wait := pace.wait(time.Now()); wait > 0 {
				pending = true
				paced.Reset(wait)
				a.pace.coalesced.Inc()
				continue
			}
		case <-paced.C:
			pending = false
		case <-a.opts.Members.Changes():
			cause = syncMembers
		case <-ticker.C:
			cause = syncResync
			a.refreshInterfaces()
			// Re-joining a node whose speaker is down blocks until the join times out: never
			// in this loop, which must react to membership changes at once.
			if a.joining.CompareAndSwap(false, true) {
				go func() { defer a.joining.Store(false); a.join(ctx) }()
			}
		}
		if pending && cause != syncAPI {
			// This recomputation reads every change made so far: the paced one is not needed.
			paced.Stop()
			pending = false
		}
		a.pacedSync(ctx, pace, cause)
	}
}

// pacedSync recomputes and records the cost with the pacer and the metrics.
func (a *Agent) pacedSync(ctx context.Context, pace *pacer, cause string) {
	start := time.Now()
	a.sync(ctx)
	end := time.Now()
	pace.done(start, end)
	a.pace.syncs.WithLabelValues(cause).Inc()
	a.pace.busy.Add(end.Sub(start).Seconds())
}

// watch makes every relevant object change trigger a recomputation.
func (a *Agent) watch(ctx context.Context) error {
	objs := []client.Object{
		&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Node{}, &corev1.Secret{},
		&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.BFDProfile{}, &v1beta1.Community{},
	}
	for _, o := range objs {
		inf, err := a.opts.Cache.GetInformer(ctx, o)
		if err != nil {
			return fmt.Errorf("watching %T: %w", o, err)
		}
		if _, err := inf.AddEventHandler(triggerHandler{a}); err != nil {
			return fmt.Errorf("watching %T: %w", o, err)
		}
	}
	return nil
}

type triggerHandler struct{ a *Agent }

func (h triggerHandler) OnAdd(any, bool) { h.a.Trigger() }
func (h triggerHandler) OnDelete(any)    { h.a.Trigger() }

// OnUpdate ignores updates that change nothing the speaker reads (see relevantUpdate).
func (h triggerHandler) OnUpdate(old, new any) {
	if !relevantUpdate(old, new) {
		h.a.pace.skipped.Inc()
		return
	}
	h.a.Trigger()
}

// refreshInterfaces publishes this node's usable interfaces when they change.
func (a *Agent) refreshInterfaces() {
	ifaces, err := a.opts.Interfaces()
	if err != nil {
		a.log.Warn("listing interfaces", "err", err)
	}
	a.mu.Lock()
	same := slices.Equal(ifaces, a.meta.Interfaces)
	a.meta.Interfaces = ifaces
	meta := a.meta
	a.mu.Unlock()
	if same && ifaces != nil {
		return
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return
	}
	if err := a.opts.Members.SetMeta(b, time.Second); err != nil {
		a.log.Warn("publishing interfaces to the other speakers", "err", err)
	}
}

// join contacts the speakers of Nodes that are not members yet.
func (a *Agent) join(ctx context.Context) {
	var nodes corev1.NodeList
	if err := a.opts.Cache.List(ctx, &nodes); err != nil {
		a.log.Warn("listing nodes to join their speakers", "err", err)
		return
	}
	members := map[string]bool{}
	for _, m := range a.opts.Members.Members() {
		members[m] = true
	}
	var addrs []string
	for _, n := range nodes.Items {
		if members[n.Name] || n.Name == a.opts.NodeName {
			continue
		}
		for _, addr := range n.Status.Addresses {
			if addr.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(addr.Address); err == nil {
				addrs = append(addrs, netip.AddrPortFrom(ip, uint16(a.opts.MemberlistPort)).String())
				break
			}
		}
	}
	if len(addrs) == 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := a.opts.Members.Join(addrs); err != nil {
			a.log.Debug("joining speakers", "peers", addrs, "reached", n, "err", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(a.opts.JoinTimeout):
		a.log.Warn("joining the other speakers is taking long; announcing with the members known so far", "peers", addrs)
	case <-ctx.Done():
	}
}

// shutdown stops answering first, then leaves the speakers' cluster while BGP routes are withdrawn:
// the others take the layer-2 IPs over as soon as they hear of the leave, and by then this node no
// longer answers, so there is never a moment with two responders.
func (a *Agent) shutdown() error {
	start := time.Now()
	errL2 := a.opts.L2.SetOwned(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bgpDone := make(chan error, 1)
	go func() { bgpDone <- a.opts.BGP.Shutdown(ctx) }()
	errLeave := a.opts.Members.Leave(time.Second)
	errBGP := <-bgpDone
	if errors.Is(errBGP, bgp.ErrShutdown) {
		errBGP = nil
	}
	a.log.Info("stopped announcing, left the speakers and withdrew BGP routes", "took", time.Since(start))
	return errors.Join(errL2, errBGP, errLeave)
}
