package layer2

import (
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed is returned by SetOwned after Close.
var ErrClosed = errors.New("announcer closed")

// ErrInvalidIP is returned (wrapped) by SetOwned for an invalid address in the owned set.
var ErrInvalidIP = errors.New("invalid IP address")

// ErrNoSocket is returned (wrapped) by SetOwned when an address is owned on a Link that has no
// socket for its family.
var ErrNoSocket = errors.New("link has no socket for this address family")

// Config configures an Announcer. The zero value is usable: it opens real sockets with DialLink,
// discards logs and metrics, and uses DefaultBurst and DefaultRefresh.
type Config struct {
	Logger *slog.Logger
	// Registerer receives the herald_layer2_* metrics. Nil: metrics are not exported.
	Registerer prometheus.Registerer
	// Dial opens an interface's Link when an owned address first needs it. Nil: DialLink.
	Dial Dialer
	// Burst is when gratuitous announcements follow the one sent at once on takeover, as offsets
	// from the takeover; positive and strictly increasing. Nil: DefaultBurst. Empty: none.
	Burst []time.Duration
	// Refresh is how often an owned address is announced again after the burst. Zero: DefaultRefresh.
	Refresh time.Duration
	// AnnounceRate bounds the gratuitous announcements per second over every address and
	// interface (one announcement is two frames for IPv4, one for IPv6); AnnounceBurst of them
	// may go out at once. A mass takeover announces every address once before any follow-up of
	// the burst schedule, in the order taken over. Zero: DefaultAnnounceRate and
	// DefaultAnnounceBurst.
	AnnounceRate  float64
	AnnounceBurst int
	// Conflicts turns on duplicate address detection (see ConflictConfig). Nil: off; the
	// Announcer only answers and announces.
	Conflicts *ConflictConfig
	// Index returns the current index of the named interface (Netlink.Index does). The Announcer
	// keys its sockets by interface index and checks the index on every SetOwned and Prepare, so
	// an interface deleted and created again under the same name (netplan, a VLAN or bond being
	// re-applied, flannel.1) is reopened rather than served through a dead socket. Nil: with the
	// default Dial, net.InterfaceByName; with another Dial, the index a Link was opened with is
	// taken as current.
	Index func(name string) (int, error)
}

// Defaults of Config.AnnounceRate and Config.AnnounceBurst: 10,000 addresses taken over at once
// are all announced within 0.6s, and the segment never sees more than about 33,000 gratuitous
// frames a second from one node (two per IPv4 address: the rate plus the burst), however many
// addresses move.
const (
	DefaultAnnounceRate  = 15000
	DefaultAnnounceBurst = 1500
)

// Announcer answers ARP and NDP for the addresses this node owns, on the interfaces it owns them on,
// and announces takeovers. It is safe for concurrent use; the speaker drives it with SetOwned.
type Announcer struct {
	log   *slog.Logger
	dial  Dialer
	sched schedule
	m     *metrics
	g     *guards // duplicate address detection; nil when off

	index func(name string) (int, error) // nil: trust the index a Link was opened with

	mu       sync.Mutex
	closed   bool
	links    map[int]*link                                    // by interface index
	owned    map[string]*[numFamilies]map[netip.Addr]struct{} // by interface name (interfacesOf reads it by address)
	prepared []string
	entries  map[announcement]*progress
	// first are the takeovers waiting for their first announcement, in order; due the later
	// announcements by time; bucket paces both (first ones first).
	first  []*progress
	due    timerQueue[dueItem]
	clock  clock // stamps the schedules
	bucket tokenBucket

	kick     chan struct{}
	stop     chan struct{}
	loopDone chan struct{}
}

// link is an open Link and its responders, indexed by family (nil: no socket for that family).
type link struct {
	name  string
	index int
	resp  [numFamilies]*responder
}

// announcement is one owned address on one interface (by index: a recreated interface announces
// anew).
type announcement struct {
	ip      netip.Addr
	ifindex int
}

// progress is where an announcement is in its schedule.
type progress struct {
	an       announcement
	takeover stamp
	sent     int // announcements sent so far
	next     stamp
	gen      uint64 // tells the current entry in the due queue from earlier ones
}

// NewAnnouncer returns an Announcer that owns nothing yet. Close releases it.
func NewAnnouncer(cfg Config) (*Announcer, error) {
	sched, err := newSchedule(cfg.Burst, cfg.Refresh)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	rate, burst := cfg.AnnounceRate, cfg.AnnounceBurst
	if rate == 0 {
		rate = DefaultAnnounceRate
	}
	if burst == 0 {
		burst = DefaultAnnounceBurst
	}
	if rate < 0 || burst < 0 {
		return nil, fmt.Errorf("%w: announce rate %v, burst %d", ErrInvalidSchedule, rate, burst)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Announcer{
		log:      cfg.Logger,
		dial:     cfg.Dial,
		sched:    sched,
		m:        m,
		links:    map[int]*link{},
		owned:    map[string]*[numFamilies]map[netip.Addr]struct{}{},
		entries:  map[announcement]*progress{},
		clock:    newClock(time.Now()),
		bucket:   tokenBucket{rate: rate, burst: float64(max(burst, 1))},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	a.index = cfg.Index
	if a.dial == nil {
		a.dial = DialLink
		if a.index == nil {
			a.index = func(name string) (int, error) {
				ifi, err := net.InterfaceByName(name)
				if err != nil {
					return 0, fmt.Errorf("looking up interface %q: %w", name, err)
				}
				return ifi.Index, nil
			}
		}
	}
	if cfg.Conflicts != nil {
		if a.g, err = newGuards(cfg.Conflicts, a.clock, cfg.Registerer, cfg.Logger); err != nil {
			return nil, err
		}
		go a.runGuards()
	}
	go a.run()
	return a, nil
}

// SetOwned makes owned the complete desired state: each address this node owns, mapped to the
// names of the interfaces to answer on (see Select). When it returns, addresses no longer owned (or
// no longer on an interface) are not answered there any more, every newly owned address is
// answered, and has been announced once unless the announcements are paced (more than
// Config.AnnounceBurst at once): those go out in the background at Config.AnnounceRate, in order,
// before any follow-up announcement. Links are opened when
// first needed, and closed when no owned address uses them and Prepare did not ask for them. An
// interface whose index changed since its link was opened (deleted and created again) is reopened,
// and its addresses announced anew.
//
// Errors (an interface that cannot be opened, an invalid address) are joined and returned; the rest
// of the state is applied regardless, so the speaker can log and retry on its next reconcile.
func (a *Announcer) SetOwned(owned map[netip.Addr][]string) error {
	return a.setOwned(maps.All(owned), nil)
}

// SetOwnedSeq is SetOwnedFresh with the owned addresses given as a sequence (each address once),
// so that a caller that has them in another form (the speaker: its per-IP plans) need not keep
// or build a map of them. owned is read only while SetOwnedSeq runs.
func (a *Announcer) SetOwnedSeq(owned iter.Seq2[netip.Addr, []string], fresh map[netip.Addr]bool) error {
	return a.setOwned(owned, fresh)
}

func (a *Announcer) setOwned(owned iter.Seq2[netip.Addr, []string], fresh map[netip.Addr]bool) error {
	// The speaker hands over the whole owned set at every resync, and it has almost always not
	// changed: then the sets are kept rather than rebuilt (at 10,000 addresses, a few megabytes a
	// resync that the collector would otherwise count as live while they are being built).
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.ownedUnchanged(owned) {
		defer a.mu.Unlock()
		a.pruneOwned()
		return a.applyOwned(nil, fresh)
	}
	a.mu.Unlock()

	var errs []error
	want := map[string]*[numFamilies]map[netip.Addr]struct{}{}
	for ip, ifnames := range owned {
		if !validOwned(ip) {
			errs = append(errs, fmt.Errorf("owning %s: %w", ip, ErrInvalidIP))
			continue
		}
		ip = ip.Unmap().WithZone("")
		for _, name := range ifnames {
			fams := want[name]
			if fams == nil {
				fams = &[numFamilies]map[netip.Addr]struct{}{}
				want[name] = fams
			}
			f := familyOf(ip)
			if fams[f] == nil {
				fams[f] = map[netip.Addr]struct{}{}
			}
			fams[f][ip] = struct{}{}
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	a.owned = want
	return a.applyOwned(errs, fresh)
}

// applyOwned applies a.owned and returns errs with the errors of the interfaces it names. a.mu
// must be held.
func (a *Announcer) applyOwned(errs []error, fresh map[netip.Addr]bool) error {
	_, openErrs, err := a.apply(fresh)
	for name := range a.owned {
		errs = append(errs, openErrs[name])
	}
	return errors.Join(append(errs, err)...)
}

// ownedUnchanged reports whether owned is exactly the owned state: the same valid, normalized
// addresses on the same interfaces. Anything else (an invalid address, one without interfaces)
// takes SetOwned's full path, which reports it. It allocates nothing. a.mu must be held.
func (a *Announcer) ownedUnchanged(owned iter.Seq2[netip.Addr, []string]) bool {
	pairs := 0 // address and interface, each once
	for ip, names := range owned {
		if len(names) == 0 || !validOwned(ip) || ip.Unmap().WithZone("") != ip {
			return false
		}
		f := familyOf(ip)
		for i, name := range names {
			if slices.Contains(names[:i], name) {
				continue
			}
			if fams := a.owned[name]; fams == nil || !has(fams[f], ip) {
				return false
			}
			pairs++
		}
	}
	held := 0
	for _, fams := range a.owned {
		for _, set := range fams {
			held += len(set)
		}
	}
	return pairs == held
}

// interfacesOf returns the names of the interfaces ip is owned on, sorted. a.mu must be held.
func (a *Announcer) interfacesOf(ip netip.Addr) []string {
	var out []string
	f := familyOf(ip)
	for name, fams := range a.owned {
		if has(fams[f], ip) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// pruneOwned forgets the interfaces left without addresses by UpdateOwned, as a rebuilt state
// would not name them: their links close unless Prepare keeps them. a.mu must be held.
func (a *Announcer) pruneOwned() {
	for name, fams := range a.owned {
		empty := true
		for f := range fams {
			if len(fams[f]) > 0 {
				empty = false
			}
		}
		if empty {
			delete(a.owned, name)
		}
	}
}

// Prepare keeps the links of the named interfaces open, whether or not an owned address uses them
// yet, and returns the names whose links are open (with their current index): the interfaces this
// node can answer on now. The speaker calls it with the interfaces it selected, before it says it
// can answer, so that a takeover never waits for a socket and an interface that cannot be opened
// (missing, not Ethernet, no CAP_NET_RAW) is known before the node is elected. Each call replaces
// the previous set; errors name the interfaces that could not be opened.
func (a *Announcer) Prepare(names []string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	a.prepared = slices.Clone(names)
	open, openErrs, err := a.apply(nil)
	var ok []string
	errs := []error{err}
	for _, n := range names {
		if open[n] != nil && !slices.Contains(ok, n) {
			ok = append(ok, n)
		}
		errs = append(errs, openErrs[n])
	}
	slices.Sort(ok)
	return ok, errors.Join(errs...)
}

// apply brings the links, responders and announcements in line with a.owned and a.prepared. It
// returns the open link of every wanted name, the errors of the names that could not be opened,
// and the other errors. Addresses in fresh (newly owned, never announced by anyone) are probed
// before their first announcement when conflict detection is on. a.mu must be held.
func (a *Announcer) apply(fresh map[netip.Addr]bool) (map[string]*link, map[string]error, error) {
	var errs []error
	openErrs := map[string]error{}
	want := a.owned
	names := make([]string, 0, len(want)+len(a.prepared))
	for name := range want {
		names = append(names, name)
	}
	names = append(names, a.prepared...)
	slices.Sort(names)
	names = slices.Compact(names)

	// The open link of each wanted name, reopened when its interface has a new index.
	byName := map[string]*link{}
	for _, l := range a.links {
		byName[l.name] = l
	}
	open := map[string]*link{}
	for _, name := range names {
		l := byName[name]
		if a.index != nil {
			idx, err := a.index(name)
			if err != nil {
				openErrs[name] = fmt.Errorf("opening link %s: %w", name, err)
				continue
			}
			if l != nil && l.index != idx {
				a.log.Info("interface was replaced; reopening it", "interface", name, "oldIndex", l.index, "index", idx)
				l = nil
			}
		}
		if l == nil {
			var err error
			if l, err = a.openLink(name); err != nil {
				openErrs[name] = err
				continue
			}
			if old := a.links[l.index]; old != nil && old != byName[name] {
				// The index was reused by another interface: the old link is dead.
				errs = append(errs, a.closeLink(old))
			}
			a.links[l.index] = l
		}
		open[name] = l
	}

	a.g.syncGuards(a, want, fresh, time.Now())

	// Apply the new sets, dropping what is lost before anything else happens. A link that is not
	// the open one of its name (replaced, or not wanted) owns nothing.
	for _, l := range a.links {
		var fams *[numFamilies]map[netip.Addr]struct{}
		if open[l.name] == l {
			fams = want[l.name]
		}
		for f, r := range l.resp {
			var ips map[netip.Addr]struct{}
			if fams != nil {
				ips = fams[f]
			}
			if r == nil {
				if len(ips) > 0 {
					errs = append(errs, fmt.Errorf("answering for %d %s addresses on %s: %w", len(ips), family(f), l.name, ErrNoSocket))
				}
				continue
			}
			if err := r.setOwned(ips); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Forget announcements that are no longer wanted, announce new ones at once.
	for an := range a.entries {
		l := a.links[an.ifindex]
		if l == nil || open[l.name] != l || want[l.name] == nil || !has(want[l.name][familyOf(an.ip)], an.ip) {
			delete(a.entries, an)
		}
	}
	now := time.Now()
	for _, name := range names {
		l, fams := open[name], want[name]
		if l == nil || fams == nil {
			continue
		}
		for f, ips := range fams {
			r := l.resp[f]
			if r == nil {
				continue
			}
			// Only the addresses not announced yet are sorted (into the order they go out in):
			// at a resync that changed nothing, none.
			var start []netip.Addr
			for ip := range ips {
				an := announcement{ip: ip, ifindex: l.index}
				if _, ok := a.entries[an]; ok || a.g.silent(guardKey{ip: ip, ifname: name}) {
					continue
				}
				start = append(start, ip)
			}
			slices.SortFunc(start, netip.Addr.Compare)
			for _, ip := range start {
				an := announcement{ip: ip, ifindex: l.index}
				a.log.Info("taking over", "ip", ip, "interface", name)
				a.takeOver(an, now)
			}
		}
	}
	a.sendFirst(now)

	for idx, l := range a.links {
		if open[l.name] != l {
			errs = append(errs, a.closeLink(l))
			delete(a.links, idx)
		}
	}

	select {
	case a.kick <- struct{}{}:
	default:
	}
	return open, openErrs, errors.Join(errs...)
}

func (a *Announcer) closeLink(l *link) error {
	err := l.close()
	a.log.Info("closed link", "interface", l.name, "index", l.index)
	return err
}

// Close stops answering and announcing everywhere and closes every socket.
func (a *Announcer) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	var errs []error
	for idx, l := range a.links {
		errs = append(errs, l.close())
		delete(a.links, idx)
	}
	clear(a.entries)
	a.mu.Unlock()
	close(a.stop)
	<-a.loopDone
	if a.g != nil {
		<-a.g.done
	}
	return errors.Join(errs...)
}

func (a *Announcer) openLink(name string) (*link, error) {
	ln, err := a.dial(name)
	if err != nil {
		return nil, fmt.Errorf("opening link %s: %w", name, err)
	}
	ifi := ln.Interface
	ifi.Name = name
	if len(ifi.HardwareAddr) != 6 {
		errs := []error{fmt.Errorf("opening link %s: %w", name, ErrNoHardwareAddr)}
		for _, c := range []Conn{ln.ARP, ln.NDP} {
			if c != nil {
				errs = append(errs, c.Close())
			}
		}
		return nil, errors.Join(errs...)
	}
	l := &link{name: name, index: ifi.Index}
	if ln.ARP != nil {
		l.resp[familyIPv4] = newResponder(familyIPv4, &ifi, ln.ARP, a.m, a.log)
	}
	if ln.NDP != nil {
		l.resp[familyIPv6] = newResponder(familyIPv6, &ifi, ln.NDP, a.m, a.log)
	}
	if a.g != nil {
		for _, r := range l.resp {
			if r != nil {
				r.claims = a.g.claims
			}
		}
	}
	for _, r := range l.resp {
		if r != nil {
			go r.serve()
		}
	}
	a.log.Info("opened link", "interface", name, "index", ifi.Index, "mac", ifi.HardwareAddr.String())
	return l, nil
}

func (l *link) close() error {
	var errs []error
	for _, r := range l.resp {
		if r != nil {
			errs = append(errs, r.close())
		}
	}
	return errors.Join(errs...)
}

// run sends the scheduled announcements until Close.
func (a *Announcer) run() {
	defer close(a.loopDone)
	a.pace(a.announceDue, a.kick, nil)
}

// takeOver starts the announcements of an owned address: its first one is queued (sendFirst).
// a.mu must be held.
func (a *Announcer) takeOver(an announcement, now time.Time) {
	p := a.newProgress(an, now)
	a.first = append(a.first, p)
}

// newProgress makes the entry of an announcement taken over at now. a.mu must be held.
func (a *Announcer) newProgress(an announcement, now time.Time) *progress {
	p := &progress{an: an, takeover: a.clock.stamp(now)}
	a.entries[an] = p
	return p
}

// sendFirst sends the queued first announcements as far as the rate allows, and reports whether
// it sent them all. a.mu must be held.
func (a *Announcer) sendFirst(now time.Time) bool {
	for len(a.first) > 0 {
		p := a.first[0]
		l := a.links[p.an.ifindex]
		if a.entries[p.an] != p || p.sent > 0 || l == nil || l.resp[familyOf(p.an.ip)] == nil {
			a.first = a.first[1:] // gone, or announced meanwhile (a conflict's defence)
			continue
		}
		if !a.bucket.take(now) {
			return false
		}
		a.first = a.first[1:]
		p.takeover = a.clock.stamp(now) // the follow-ups count from the first announcement
		a.announce(l.name, l.resp[familyOf(p.an.ip)], p, now)
	}
	a.first = nil // let the backing array go
	return true
}

// announceDue sends what is due at now, first announcements first, as far as the rate allows,
// and returns when to come back (zero: nothing is scheduled). a.mu must be held.
func (a *Announcer) announceDue(now time.Time) time.Time {
	if !a.sendFirst(now) {
		return a.bucket.nextToken(now)
	}
	for {
		it, ok := a.due.peek()
		if !ok {
			break
		}
		an := it.p.an
		if a.entries[an] != it.p || it.p.gen != it.gen {
			a.due.pop() // dropped or rescheduled
			continue
		}
		if it.at > a.clock.stamp(now) {
			return a.clock.time(it.at)
		}
		l := a.links[an.ifindex]
		if l == nil || l.resp[familyOf(an.ip)] == nil {
			a.due.pop()
			continue
		}
		if !a.bucket.take(now) {
			return a.bucket.nextToken(now)
		}
		a.due.pop()
		a.announce(l.name, l.resp[familyOf(an.ip)], it.p, now)
	}
	return time.Time{}
}

// announce sends one announcement and moves p to the next one due after now (skipping any that a
// stalled process missed, rather than sending them in a burst).
func (a *Announcer) announce(ifname string, r *responder, p *progress, now time.Time) {
	ip := p.an.ip
	if err := r.announce(ip); err != nil {
		a.log.Error("announcing", "ip", ip, "interface", ifname, "error", err)
	} else {
		a.log.Debug("announced", "ip", ip, "interface", ifname, "n", p.sent)
	}
	n := a.clock.stamp(now)
	for p.sent++; ; p.sent++ {
		p.next = p.takeover.add(a.sched.at(p.sent))
		if p.next > n {
			break
		}
	}
	p.gen++
	a.due.add(dueItem{at: p.next, p: p, gen: p.gen})
}

// dueItem is a scheduled announcement; it is current while p is its address's entry and p.gen
// is gen.
type dueItem struct {
	at  stamp
	p   *progress
	gen uint64
}

func (it dueItem) when() stamp { return it.at }

func validOwned(ip netip.Addr) bool {
	return ip.IsValid() && !ip.Unmap().IsUnspecified() && !ip.IsMulticast()
}

func uniqueNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

func has(set map[netip.Addr]struct{}, ip netip.Addr) bool {
	_, ok := set[ip]
	return ok
}
