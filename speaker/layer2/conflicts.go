package layer2

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of ConflictConfig.
const (
	DefaultNewProbes     = 3
	DefaultNewProbeWait  = 300 * time.Millisecond
	DefaultFirstCheck    = time.Second
	DefaultProbeInterval = 30 * time.Second
	DefaultConfirm       = time.Second
	DefaultRecheck       = time.Second
	DefaultReplyWait     = 250 * time.Millisecond
	DefaultProbeRate     = 100
)

// ErrInvalidConflictConfig is returned (wrapped) by NewAnnouncer for a ConflictConfig it cannot use.
var ErrInvalidConflictConfig = errors.New("invalid conflict detection settings")

// ConflictConfig turns on duplicate address detection (Config.Conflicts). Zero fields take the
// defaults.
//
// The Announcer then watches, on every interface it answers on, the ARP and NDP frames in which
// another station claims an owned address (gratuitous ARP, ARP replies and requests sent from it,
// Neighbor Advertisements for it, solicitations sent from it), and probes each owned address now
// and then (an RFC 5227 ARP probe from 0.0.0.0, a Duplicate Address Detection solicitation from ::),
// because the answers a station sends to others' requests are unicast and never seen here.
//
// A station that claims the address again after Confirm is a conflict. Against a host that is not
// a Herald speaker, the Announcer stops answering (Herald never fights it); against another Herald
// speaker (the MACs of speakers come from SetPeerMACs), both apply the same rule over the two node
// names and exactly one of them goes on answering. The other keeps checking and answers again once
// the address has been free for two probes. An address marked fresh in SetOwnedFresh (nobody has
// announced it before) is probed NewProbes times over NewProbeWait before it is first answered;
// a takeover is answered at once and checked FirstCheck later.
type ConflictConfig struct {
	// Node is this speaker's node name, for the rule between two Herald speakers.
	Node string
	// NewProbes is how many probes precede the first announcement of a fresh address.
	NewProbes int
	// NewProbeWait is how long a fresh address stays silent while it is probed. It delays the
	// first answer for a new Service's address, never a takeover.
	NewProbeWait time.Duration
	// FirstCheck is when a taken-over address is first probed, after the takeover.
	FirstCheck time.Duration
	// Interval is how often an address without a conflict is probed (at most; see Rate).
	Interval time.Duration
	// Confirm is how long after its first claim another station must still claim the address to
	// make a conflict.
	Confirm time.Duration
	// Recheck is how often an address is probed while a conflict is suspected or lasts (while
	// yielding to a host that is not a Herald speaker, the interval doubles up to Interval).
	Recheck time.Duration
	// ReplyWait is how long the answers to a probe are waited for; less than Recheck.
	ReplyWait time.Duration
	// Rate bounds the probes per second over all addresses and interfaces, except the few before
	// a fresh address's first announcement. With 10,000 owned addresses at the default 100 per
	// second, each is probed about every 100 seconds.
	Rate float64
}

func (c ConflictConfig) timing() (guardTiming, float64, error) {
	t := guardTiming{
		NewProbes: c.NewProbes, NewWait: c.NewProbeWait, FirstCheck: c.FirstCheck, Interval: c.Interval,
		Confirm: c.Confirm, Recheck: c.Recheck, ReplyWait: c.ReplyWait,
	}
	rate := c.Rate
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if t.NewProbes == 0 {
		t.NewProbes = DefaultNewProbes
	}
	def(&t.NewWait, DefaultNewProbeWait)
	def(&t.FirstCheck, DefaultFirstCheck)
	def(&t.Interval, DefaultProbeInterval)
	def(&t.Confirm, DefaultConfirm)
	def(&t.Recheck, DefaultRecheck)
	def(&t.ReplyWait, DefaultReplyWait)
	if rate == 0 {
		rate = DefaultProbeRate
	}
	switch {
	case t.NewProbes < 0:
		return t, 0, fmt.Errorf("%w: %d probes before a first announcement", ErrInvalidConflictConfig, t.NewProbes)
	case t.NewWait < 0 || t.FirstCheck < 0 || t.Interval < 0 || t.Confirm < 0 || t.Recheck < 0 || t.ReplyWait < 0:
		return t, 0, fmt.Errorf("%w: negative duration in %+v", ErrInvalidConflictConfig, t)
	case t.ReplyWait >= t.Recheck:
		return t, 0, fmt.Errorf("%w: reply wait %s is not shorter than the recheck interval %s", ErrInvalidConflictConfig, t.ReplyWait, t.Recheck)
	case rate < 0:
		return t, 0, fmt.Errorf("%w: probe rate %v", ErrInvalidConflictConfig, rate)
	}
	return t, rate, nil
}

// Conflict is an owned address that another station claims too, on one interface.
type Conflict struct {
	IP        netip.Addr
	Interface string
	// MAC is the other station's hardware address.
	MAC net.HardwareAddr
	// Node is the Herald speaker's node with that MAC; empty for a host that is not one.
	Node string
	// Answering is whether this node goes on answering for IP on Interface.
	Answering bool
	// NeverAnnounced is true when the address was found taken before this node first announced it.
	NeverAnnounced bool
	// Since is when the other station was first seen.
	Since time.Time
}

// Action names what this node does about the conflict: "kept" (it goes on answering), "yielded"
// (it stopped answering) or "not-announced" (it never answered: the address was taken already).
func (c Conflict) Action() string {
	switch {
	case c.Answering:
		return "kept"
	case c.NeverAnnounced:
		return "not-announced"
	default:
		return "yielded"
	}
}

// seenClaim is a claim received on an interface, for an address answered or watched there.
type seenClaim struct {
	ifname string
	claim
}

// guards is the Announcer's duplicate address detection: one guard per owned address and interface,
// the timers that drive them, and the pacing of probes. Everything but the channels is protected by
// the Announcer's mutex.
type guards struct {
	self  string
	t     guardTiming
	log   *slog.Logger
	m     *conflictMetrics
	peers map[string]string // hardware address (bytes as a string) -> Herald node

	slots map[guardKey]*slot
	// conflicted are the slots whose guard is in a conflict, for Conflicts.
	conflicted map[guardKey]*slot
	evalQ      timerQueue[timerItem] // guard steps that are due by themselves
	urgentQ    timerQueue[timerItem] // probes of suspected and conflicting addresses, sent first
	quietQ     timerQueue[timerItem] // probes of quiet addresses
	bucket     tokenBucket

	claims  chan seenClaim
	changes chan struct{} // a Conflict appeared, changed or ended
	kick    chan struct{}
	done    chan struct{}
}

// slot is a guard, the interface it guards its address on, and where its timers stand in the
// queues. A speaker may hold 10,000 of them: the guard is kept in place and the queues point at
// the slot.
type slot struct {
	g                 guard
	ifname            string
	evalAt, probeAt   stamp
	evalGen, probeGen uint64
	probeUrgent       bool
	signature         string
	action            string // metric label of the conflict counted for it ("": none)
}

func newSlot(key guardKey, fresh bool, now time.Time, t *guardTiming) *slot {
	return &slot{g: newGuard(key.ip, fresh, now, t), ifname: key.ifname}
}

func (s *slot) key() guardKey { return guardKey{ip: s.g.ip, ifname: s.ifname} }

// metricLabels are the interface and family labels of the slot's metrics.
func (s *slot) metricLabels() (string, string) { return s.ifname, familyOf(s.g.ip).String() }

func newGuards(cfg *ConflictConfig, clk clock, reg prometheus.Registerer, log *slog.Logger) (*guards, error) {
	t, rate, err := cfg.timing()
	if err != nil {
		return nil, err
	}
	m, err := newConflictMetrics(reg)
	if err != nil {
		return nil, err
	}
	t.clock = clk
	return &guards{
		self: cfg.Node, t: t, log: log, m: m, peers: map[string]string{},
		slots:      map[guardKey]*slot{},
		conflicted: map[guardKey]*slot{},
		bucket:     tokenBucket{rate: rate, burst: max(1, rate/10)},
		claims:     make(chan seenClaim, 1024),
		changes:    make(chan struct{}, 1),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}, nil
}

// who names the Herald node with hardware address mac (bytes as a string), "" for other hosts.
func (gs *guards) who(mac string) string { return gs.peers[mac] }

// SetOwnedFresh is SetOwned for an Announcer with conflict detection: the addresses in fresh (a
// subset of owned's) have never been announced by anyone, so they are probed before their first
// announcement; every other newly owned address is a takeover and answered at once. Without
// Config.Conflicts, fresh is ignored.
func (a *Announcer) SetOwnedFresh(owned map[netip.Addr][]string, fresh map[netip.Addr]bool) error {
	return a.setOwned(maps.All(owned), fresh)
}

// syncGuards makes the guards those of want (interface -> family -> addresses), starting new ones
// fresh or as takeovers, and tells each responder which of its addresses to keep silent about.
// It runs in SetOwned, with a.mu held, before the responders learn the new sets, so that a fresh
// address is never answered before it has been probed. A nil receiver does nothing.
func (gs *guards) syncGuards(a *Announcer, want map[string]*[numFamilies]map[netip.Addr]struct{}, fresh map[netip.Addr]bool, now time.Time) {
	if gs == nil {
		return
	}
	changed := false
	for key, s := range gs.slots {
		if fams := want[key.ifname]; fams == nil || !has(fams[familyOf(key.ip)], key.ip) {
			if gs.forget(key, s) {
				changed = true
			}
		}
	}
	for name, fams := range want {
		for f, ips := range fams {
			muted := map[netip.Addr]struct{}{}
			for ip := range ips {
				key := guardKey{ip: ip, ifname: name}
				s := gs.slots[key]
				if s == nil {
					s = gs.start(a, key, fresh[ip], now)
				}
				if !s.g.answering {
					muted[ip] = struct{}{}
				}
			}
			if r := a.responder(name, family(f)); r != nil {
				r.setMuted(muted)
			}
		}
	}
	if changed {
		gs.notify()
	}
	select {
	case gs.kick <- struct{}{}:
	default:
	}
}

// start guards a newly owned address on an interface, fresh (probed before its first
// announcement) or taken over.
func (gs *guards) start(a *Announcer, key guardKey, fresh bool, now time.Time) *slot {
	s := newSlot(key, fresh, now, &gs.t)
	gs.slots[key] = s
	if fresh {
		a.log.Info("probing before the first announcement", "ip", key.ip, "interface", key.ifname)
	}
	gs.reschedule(s)
	return s
}

// forget stops guarding an address on an interface: its conflict leaves the gauge, and its queued
// timers go stale (their generations no longer match). It reports whether the slot was in a
// reported conflict, so that the subscriber is to be told.
func (gs *guards) forget(key guardKey, s *slot) bool {
	gs.count(s, "")
	delete(gs.slots, key)
	delete(gs.conflicted, key)
	s.evalGen++
	s.probeGen++
	return s.signature != ""
}

// silent reports whether an owned address is not to be announced (yet): it is being probed, or
// this node yields it. A nil receiver reports false.
func (gs *guards) silent(key guardKey) bool {
	if gs == nil {
		return false
	}
	s := gs.slots[key]
	return s != nil && !s.g.answering
}

// responder returns the responder of an interface for a family, nil if none is open.
func (a *Announcer) responder(ifname string, f family) *responder {
	if l := a.linkNamed(ifname); l != nil {
		return l.resp[f]
	}
	return nil
}

// linkNamed returns the open link of an interface, nil if none. a.mu must be held.
func (a *Announcer) linkNamed(ifname string) *link {
	for _, l := range a.links {
		if l.name == ifname {
			return l
		}
	}
	return nil
}

// guardKey is an owned address on an interface, by the interface's name: a conflict is about the
// interface the operator knows, and outlives the interface being replaced.
type guardKey struct {
	ip     netip.Addr
	ifname string
}

// entryKey is the announcement of a guarded address on the open link of its interface, false
// when the interface has no open link. a.mu must be held.
func (a *Announcer) entryKey(key guardKey) (announcement, bool) {
	l := a.linkNamed(key.ifname)
	if l == nil {
		return announcement{}, false
	}
	return announcement{ip: key.ip, ifindex: l.index}, true
}

// ownMAC reports whether mac (bytes as a string) is the hardware address of one of this node's
// open links: a frame this node sent on another interface of the same segment is no conflict.
func (a *Announcer) ownMAC(mac string) bool {
	for _, l := range a.links {
		for _, r := range l.resp {
			if r != nil && string(r.hw) == mac {
				return true
			}
		}
	}
	return false
}

// runGuards drives the guards until Close: claims, due steps and paced probes.
func (a *Announcer) runGuards() {
	gs := a.g
	defer close(gs.done)
	a.pace(a.guardsDue, gs.kick, gs.claims)
}

// guardClaim feeds a claim to its guard. a.mu must be held.
func (a *Announcer) guardClaim(c seenClaim, now time.Time) {
	gs := a.g
	key := guardKey{ip: c.IP, ifname: c.ifname}
	s := gs.slots[key]
	mac := string(c.MAC)
	if s == nil || a.closed || a.ownMAC(mac) || (gs.self != "" && gs.who(mac) == gs.self) {
		return
	}
	if s.g.phase == phaseClear {
		a.log.Info("another station claims an owned address; confirming", "ip", c.IP, "interface", c.ifname,
			"mac", c.MAC.String(), "speaker", gs.who(mac))
	}
	s.g.saw(now, mac)
	a.guardStep(key, s, now)
}

// guardsDue runs the guard steps that are due, then sends the probes that are due as far as the
// rate allows, urgent ones first, and returns when to come back (zero: on a kick or a claim only).
// a.mu must be held.
func (a *Announcer) guardsDue(now time.Time) time.Time {
	gs := a.g
	if a.closed {
		return time.Time{}
	}
	n := gs.t.clock.stamp(now)
	for {
		it, ok := gs.evalQ.due(n)
		if !ok {
			break
		}
		if s := it.s; s.evalGen == it.gen {
			s.evalAt = 0
			a.guardStep(s.key(), s, now)
		}
	}
	limited := false
	for _, q := range []*timerQueue[timerItem]{&gs.urgentQ, &gs.quietQ} {
		for {
			it, ok := q.peekDue(n)
			if !ok {
				break
			}
			s := it.s
			if s.probeGen != it.gen {
				q.pop()
				continue
			}
			if !gs.bucket.take(now) {
				limited = true
				break
			}
			q.pop()
			s.probeAt = 0
			a.guardProbe(s.key(), s, now)
		}
		if limited {
			break
		}
	}
	next := gs.evalQ.next()
	for _, q := range []*timerQueue[timerItem]{&gs.urgentQ, &gs.quietQ} {
		at := q.next()
		if at == 0 {
			continue
		}
		if limited && at < n.add(10*time.Millisecond) {
			at = gs.t.clock.stamp(gs.bucket.nextToken(now))
		}
		if next == 0 || at < next {
			next = at
		}
	}
	return gs.t.clock.time(next)
}

// guardStep steps a guard and carries out what it asks. a.mu must be held.
func (a *Announcer) guardStep(key guardKey, s *slot, now time.Time) {
	gs := a.g
	was := s.g.phase
	res := s.g.step(now, gs.self, gs.who)
	if res.probe {
		a.guardProbe(key, s, now)
	}
	r := a.responder(key.ifname, familyOf(key.ip))
	ek, linked := a.entryKey(key)
	switch {
	case res.stop:
		if r != nil {
			r.mute(key.ip, true)
		}
		if linked {
			delete(a.entries, ek)
		}
		a.log.Warn("stopped answering: another station claims the address", "ip", key.ip, "interface", key.ifname,
			"others", gs.describe(&s.g))
	case res.defend:
		if p, ok := a.entries[ek]; ok && linked && r != nil {
			a.log.Info("announcing again after a conflict", "ip", key.ip, "interface", key.ifname)
			p.takeover, p.sent = a.clock.stamp(now), 0
			a.announce(key.ifname, r, p, now)
			a.kickAnnouncements()
		}
	case res.start:
		if r != nil && linked {
			r.mute(key.ip, false)
			if _, ok := a.entries[ek]; !ok {
				why := "the other station is gone"
				switch {
				case was == phaseProbing:
					why = "nobody answered the probes"
				case s.g.inConflict():
					why = "the rule between speakers keeps it here"
				}
				a.log.Info("taking over", "ip", key.ip, "interface", key.ifname, "because", why)
				a.announce(key.ifname, r, a.newProgress(ek, now), now)
				a.kickAnnouncements()
			}
		}
	}
	gs.report(key, s)
	gs.reschedule(s)
}

// kickAnnouncements makes the announcement loop see a changed schedule.
func (a *Announcer) kickAnnouncements() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// guardProbe sends one probe for a guarded address. a.mu must be held.
func (a *Announcer) guardProbe(key guardKey, s *slot, now time.Time) {
	gs := a.g
	if r := a.responder(key.ifname, familyOf(key.ip)); r != nil {
		if err := r.probe(key.ip); err != nil {
			a.log.Error("probing", "ip", key.ip, "interface", key.ifname, "error", err)
		} else {
			gs.m.probes.WithLabelValues(s.metricLabels()).Inc()
		}
	}
	s.g.probed(now, gs.who)
	gs.reschedule(s)
}

// reschedule queues the guard's next step and probe where they changed.
func (gs *guards) reschedule(s *slot) {
	if at := s.g.evalAt(); at != s.evalAt {
		s.evalAt = at
		s.evalGen++
		if at != 0 {
			gs.evalQ.add(timerItem{at: at, s: s, gen: s.evalGen})
		}
	}
	if at := s.g.nextProbe; at != s.probeAt || s.g.urgent != s.probeUrgent {
		s.probeAt, s.probeUrgent = at, s.g.urgent
		s.probeGen++
		if at != 0 {
			q := &gs.quietQ
			if s.g.urgent {
				q = &gs.urgentQ
			}
			q.add(timerItem{at: at, s: s, gen: s.probeGen})
		}
	}
}

// report updates the metrics and tells the subscriber when what a report shows of the guard changed.
func (gs *guards) report(key guardKey, s *slot) {
	sig := s.g.signature(gs.who)
	if sig == s.signature {
		return
	}
	if s.signature == "" {
		gs.m.detected.WithLabelValues(s.metricLabels()).Inc()
		gs.log.Warn("address conflict", "ip", key.ip, "interface", key.ifname, "answering", s.g.answering, "others", gs.describe(&s.g))
	} else if sig == "" {
		gs.log.Info("address conflict over", "ip", key.ip, "interface", key.ifname)
	}
	s.signature = sig
	action := ""
	if s.g.inConflict() {
		action = conflictOf(key, &s.g, nil, "").Action()
		gs.conflicted[key] = s
	} else {
		delete(gs.conflicted, key)
	}
	gs.count(s, action)
	gs.notify()
}

// count moves the slot's conflict in the gauge from its old action to action ("": none).
func (gs *guards) count(s *slot, action string) {
	if s.action == action {
		return
	}
	ifname, fam := s.metricLabels()
	if s.action != "" {
		gs.m.conflicts.WithLabelValues(ifname, fam, s.action).Dec()
	}
	if action != "" {
		gs.m.conflicts.WithLabelValues(ifname, fam, action).Inc()
	}
	s.action = action
}

func (gs *guards) notify() {
	select {
	case gs.changes <- struct{}{}:
	default:
	}
}

// describe lists the stations claiming a guard's address, for logs.
func (gs *guards) describe(g *guard) string {
	var parts []string
	for mac := range g.stations {
		n := gs.who(mac)
		if n == "" {
			n = "not a Herald speaker"
		}
		parts = append(parts, net.HardwareAddr(mac).String()+" ("+n+")")
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func conflictOf(key guardKey, g *guard, mac net.HardwareAddr, node string) Conflict {
	return Conflict{IP: key.ip, Interface: key.ifname, MAC: mac, Node: node, Answering: g.answering,
		NeverAnnounced: !g.announced, Since: g.since}
}

// Conflicts returns the addresses in conflict, one entry per other station, sorted by address,
// interface and MAC. Without Config.Conflicts it returns nil.
func (a *Announcer) Conflicts() []Conflict {
	if a.g == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Conflict
	for key, s := range a.g.conflicted {
		for mac := range s.g.stations {
			out = append(out, conflictOf(key, &s.g, net.HardwareAddr(mac), a.g.who(mac)))
		}
	}
	slices.SortFunc(out, func(x, y Conflict) int {
		if c := x.IP.Compare(y.IP); c != 0 {
			return c
		}
		if c := strings.Compare(x.Interface, y.Interface); c != 0 {
			return c
		}
		return bytes.Compare(x.MAC, y.MAC)
	})
	return out
}

// ConflictChanges receives a value (coalesced) whenever what Conflicts returns has changed. Nil
// without Config.Conflicts.
func (a *Announcer) ConflictChanges() <-chan struct{} {
	if a.g == nil {
		return nil
	}
	return a.g.changes
}

// SetPeerMACs tells which hardware addresses ("aa:bb:cc:dd:ee:ff") belong to which Herald node's
// speaker, replacing what it was told before. A conflict with a MAC that is not among them is one
// with a host that is not a Herald speaker, which Herald yields to; conflicts in force are settled
// again with the new knowledge. Addresses that do not parse are ignored.
func (a *Announcer) SetPeerMACs(macs map[string]string) {
	if a.g == nil {
		return
	}
	peers := make(map[string]string, len(macs))
	for s, node := range macs {
		if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 && node != "" {
			peers[string(hw)] = node
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.g.peers = peers
	now := time.Now()
	for key, s := range a.g.conflicted {
		a.guardStep(key, s, now)
	}
}

// MACs returns the hardware address of each interface the Announcer has open, by name.
func (a *Announcer) MACs() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for _, l := range a.links {
		for _, r := range l.resp {
			if r != nil {
				out[l.name] = r.hw.String()
			}
		}
	}
	return out
}

// conflictMetrics are the collectors of duplicate address detection.
type conflictMetrics struct {
	conflicts *prometheus.GaugeVec
	detected  *prometheus.CounterVec
	probes    *prometheus.CounterVec
}

func newConflictMetrics(reg prometheus.Registerer) (*conflictMetrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "herald", Subsystem: "layer2", Name: name, Help: help}
	}
	m := &conflictMetrics{
		conflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("conflicts",
			"Owned addresses that another station claims too, by what this node does: kept (answers), yielded (stopped answering), not-announced (found taken before the first announcement).")),
			[]string{"interface", "family", "action"}),
		detected: prometheus.NewCounterVec(prometheus.CounterOpts(opts("conflicts_detected_total",
			"Address conflicts detected.")), metricLabels),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("probes_sent_total",
			"ARP probes and duplicate address detection solicitations sent for owned addresses.")), metricLabels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.conflicts, m.detected, m.probes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering layer2 conflict metrics: %w", err)
		}
	}
	return m, nil
}

// timerItem is a guard's timer in a queue; gen tells it from a later rescheduling (or the slot's
// removal).
type timerItem struct {
	at  stamp
	s   *slot
	gen uint64
}

func (it timerItem) when() stamp { return it.at }
