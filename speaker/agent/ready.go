package agent

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/nodemeta"
	"github.com/herald-lb/herald/speaker/plan"
)

// readiness is this node's side of eligibility: its interfaces, whether it knows the other
// speakers, and what it published (see the package documentation).
type readiness struct {
	metrics *readyMetrics

	mu        sync.Mutex
	host      layer2.Host      // last scan of the interfaces
	scanErr   string           // last scan error reported
	prepErr   string           // last error opening the selected interfaces
	encErr    string           // last metadata encoding problem reported
	nodeAddrs []netip.Addr     // the Node's InternalIPs, for the default interface rule
	named     []string         // interfaces the configuration names
	sel       layer2.Selection // selection of the last scan (to tell the watcher what matters)
	settled   bool             // knows the other speakers, or knows it is alone
	published []byte           // metadata last published; nil before the first
	pubMeta   nodemeta.Meta    // the same, as the others read it
}

type readyMetrics struct {
	ready, interfaces, metaBytes prometheus.Gauge
	metaUpdates                  prometheus.Counter
}

func newReadyMetrics(reg prometheus.Registerer) *readyMetrics {
	m := &readyMetrics{
		ready:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_ready", Help: "1 when this speaker tells the others it can answer (valid configuration, knows the other speakers, responders set up): only then is it elected."}),
		interfaces: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_layer2_interfaces", Help: "Interfaces this speaker tells the others it can answer on over layer 2 (selected, up and open)."}),
		metaBytes:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_metadata_bytes", Help: "Size of the memberlist metadata this speaker publishes (at most 512)."}),
		metaUpdates: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_speaker_metadata_updates_total",
			Help: "Times this speaker published new memberlist metadata (readiness or interfaces changed)."}),
	}
	if reg != nil {
		reg.MustRegister(m.ready, m.interfaces, m.metaBytes, m.metaUpdates)
	}
	return m
}

// refreshInterfaces rescans the interfaces and reports whether the selection changed (an
// interface selected, gone, up or down, or replaced under the same name). Changes of other
// interfaces (pod veths coming and going) report nothing: they change neither what this node
// answers on nor what it publishes.
func (a *Agent) refreshInterfaces() bool {
	if a.opts.Links == nil {
		return false
	}
	h, err := a.opts.Links.Scan()
	a.rd.mu.Lock()
	defer a.rd.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != a.rd.scanErr {
			a.rd.scanErr = msg
			a.log.Warn("reading this node's interfaces; keeping the last known ones", "error", err)
		}
		return false
	}
	a.rd.scanErr = ""
	a.rd.host = h
	sel := layer2.Select(h, a.rd.nodeAddrs, a.rd.named)
	if sel.Equal(a.rd.sel) {
		return false
	}
	a.rd.sel = sel
	return true
}

// watchLinks rescans on every interface, address or route change and recomputes when the
// selection changed. It runs until ctx ends.
func (a *Agent) watchLinks(ctx context.Context) {
	if a.opts.Links == nil {
		return
	}
	kick := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
				if a.refreshInterfaces() {
					a.Trigger()
				}
			}
		}
	}()
	for ctx.Err() == nil {
		err := a.opts.Links.Watch(ctx, func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		a.log.Warn("watching this node's interfaces; interface changes are seen at the next resync until it works again", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// joinInBackground starts joining the other speakers without waiting, and bounds how long this
// speaker waits to know them before it may say it is ready.
func (a *Agent) joinInBackground(ctx context.Context) {
	a.joining.Store(true)
	go func() { defer a.joining.Store(false); a.join(ctx) }()
	t := time.AfterFunc(a.opts.JoinTimeout, func() {
		a.settle("joining the other speakers is taking long; going on with the members known so far", true, nil)
	})
	context.AfterFunc(ctx, func() { t.Stop() })
}

// settle records that this speaker knows the other speakers (or that it is alone); members, when
// not nil, are those known (nil: read them for the log).
func (a *Agent) settle(why string, warn bool, members []string) {
	a.rd.mu.Lock()
	done := a.rd.settled
	a.rd.settled = true
	a.rd.mu.Unlock()
	if done {
		return
	}
	if members == nil {
		members = a.opts.Members.Members()
	}
	if warn {
		a.log.Warn(why, "members", members)
	} else {
		a.log.Info("knows the other speakers", "how", why, "members", members)
	}
	a.Trigger()
}

// join contacts, in parallel, the speakers of Nodes that are not members yet, and settles this
// speaker as soon as one answers (or when none can).
func (a *Agent) join(ctx context.Context) {
	var nodes corev1.NodeList
	if err := a.opts.Cache.List(ctx, &nodes); err != nil {
		a.log.Warn("listing nodes to join their speakers", "error", err)
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
		a.settle("no other speaker to join", false, nil)
		return
	}
	results := make(chan error, len(addrs))
	for _, addr := range addrs {
		go func() {
			_, err := a.opts.Members.Join([]string{addr})
			if err != nil {
				a.log.Debug("joining a speaker", "peer", addr, "error", err)
			}
			results <- err
		}()
	}
	joined := false
	for range addrs {
		select {
		case err := <-results:
			if err == nil && !joined {
				joined = true
				a.settle("joined", false, nil)
			}
		case <-ctx.Done():
			return
		}
	}
	if !joined {
		a.settle("no other speaker answered; alone so far", true, nil)
	}
}

// noteNode records this node's InternalIPs (for the default interface rule) from its Node.
func (a *Agent) noteNode(n *corev1.Node) {
	var addrs []netip.Addr
	for _, ad := range n.Status.Addresses {
		if ad.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(ad.Address); err == nil {
			addrs = append(addrs, ip)
		}
	}
	for _, ip := range []netip.Addr{a.opts.NodeIPv4, a.opts.NodeIPv6} {
		if ip.IsValid() && !slices.Contains(addrs, ip) {
			addrs = append(addrs, ip)
		}
	}
	a.rd.mu.Lock()
	a.rd.nodeAddrs = addrs
	a.rd.mu.Unlock()
}

// gossiped fills in what a node's speaker says about itself in its metadata, and hands the
// hardware addresses it publishes to duplicate address detection (learnMACs).
func (a *Agent) gossiped(en *election.Node, raw []byte) {
	m, err := nodemeta.Decode(raw)
	if err != nil {
		a.log.Debug("speaker metadata unreadable; the node is not elected", "node", en.Name, "error", err)
	}
	en.SpeakerReady, en.Interfaces, en.DefaultInterfaces = m.Ready, m.Interfaces, m.Defaults
	if len(m.MACs) > 0 && en.Name != a.opts.NodeName {
		if g := a.guard(); g != nil {
			a.learnMACs(g, en.Name, slices.Values(m.MACs), "memberlist metadata")
		}
	}
}

// readyState decides what this node can do now: it selects the interfaces, opens them, and
// returns the metadata to publish. It also sets this node in in.Nodes to what both the others
// know (the metadata last published) and what holds now allow: the more restrictive of the two,
// so that this node never answers beyond what it has told the others, nor beyond what it can.
func (a *Agent) readyState(in *plan.Input, mem membership) nodemeta.Meta {
	if len(mem.alive) > 1 {
		a.settle("contacted by the other speakers", false, mem.alive)
	}
	named, hasL2 := l2Named(in.Config)

	a.rd.mu.Lock()
	a.rd.named = named
	sel := layer2.Select(a.rd.host, a.rd.nodeAddrs, named)
	a.rd.sel = sel
	settled := a.rd.settled
	pub := a.rd.pubMeta
	a.rd.mu.Unlock()

	var open []string
	if hasL2 {
		var err error
		open, err = a.opts.L2.Prepare(sel.Names())
		a.rd.mu.Lock()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != a.rd.prepErr {
			a.rd.prepErr = msg
			if err != nil {
				a.log.Warn("opening the selected interfaces; not answering on those", "selected", sel.Names(), "open", open, "error", err)
			}
		}
		a.rd.mu.Unlock()
	} else if _, err := a.opts.L2.Prepare(nil); err != nil {
		a.log.Warn("closing the layer-2 interfaces", "error", err)
	}
	want := nodemeta.Meta{Ready: in.Config != nil && settled}
	if want.Ready {
		want.Interfaces = open
		for _, d := range sel.DefaultNames() {
			if slices.Contains(open, d) {
				want.Defaults = append(want.Defaults, d)
			}
		}
		// The hardware addresses of those interfaces, for the other speakers' duplicate address
		// detection (only a speaker with detection knows them).
		if g := a.guard(); g != nil {
			macs := g.MACs()
			for _, n := range open {
				if mac := macs[n]; mac != "" {
					want.MACs = append(want.MACs, mac)
				}
			}
		}
	}

	a.selfReady = false
	for i := range in.Nodes {
		n := &in.Nodes[i]
		if n.Name != a.opts.NodeName {
			continue
		}
		n.SpeakerReady = pub.Ready && want.Ready
		a.selfReady = n.SpeakerReady
		n.Interfaces = intersect(pub.Interfaces, want.Interfaces)
		n.DefaultInterfaces = intersect(pub.Defaults, want.Defaults)
	}
	return want
}

// publish gossips want when it differs from what was published. When it says more than before
// (ready now, or a new interface), it asks for another computation, which answers on it.
func (a *Agent) publish(want nodemeta.Meta) {
	enc, encErr := nodemeta.Encode(want)
	a.rd.mu.Lock()
	if encErr != nil && encErr.Error() != a.rd.encErr {
		a.log.Warn("some interfaces are left out of what this speaker publishes; it is not elected on them", "error", encErr)
	}
	if encErr != nil {
		a.rd.encErr = encErr.Error()
	} else {
		a.rd.encErr = ""
	}
	same := a.rd.published != nil && bytes.Equal(enc, a.rd.published)
	prev := a.rd.pubMeta
	a.rd.mu.Unlock()
	if same || enc == nil {
		return
	}
	if err := a.opts.Members.SetMeta(enc, time.Second); err != nil {
		// The metadata is set locally either way; memberlist spreads it with its next push/pull.
		a.log.Warn("publishing readiness to the other speakers took long", "error", err)
	}
	now, err := nodemeta.Decode(enc)
	if err != nil { // unreachable: Encode's output decodes
		a.log.Error("reading back the published metadata", "error", err)
	}
	a.rd.mu.Lock()
	a.rd.published, a.rd.pubMeta = enc, now
	a.rd.mu.Unlock()
	a.rd.metrics.metaUpdates.Inc()
	a.rd.metrics.metaBytes.Set(float64(len(enc)))
	a.rd.metrics.interfaces.Set(float64(len(now.Interfaces)))
	if now.Ready {
		a.rd.metrics.ready.Set(1)
	} else {
		a.rd.metrics.ready.Set(0)
	}
	a.log.Info("published this node's readiness", "ready", now.Ready, "interfaces", now.Interfaces, "default", now.Defaults, "bytes", len(enc))
	if (now.Ready && !prev.Ready) || len(intersect(now.Interfaces, prev.Interfaces)) < len(now.Interfaces) ||
		len(intersect(now.Defaults, prev.Defaults)) < len(now.Defaults) {
		a.Trigger()
	}
}

// l2Named returns the interfaces the L2Advertisements name, and whether there is any
// L2Advertisement.
func l2Named(cfg *config.Config) ([]string, bool) {
	if cfg == nil {
		return nil, false
	}
	var out []string
	for _, ad := range cfg.L2Advertisements {
		out = append(out, ad.Interfaces...)
	}
	slices.Sort(out)
	return slices.Compact(out), len(cfg.L2Advertisements) > 0
}

// intersect returns the elements of a also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
