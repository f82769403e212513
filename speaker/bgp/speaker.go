package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/speaker/bfd"
)

// Config is the node-wide configuration of a Speaker.
type Config struct {
	// RouterID is the BGP identifier used for peers without their own; an IPv4 address,
	// usually the node's.
	RouterID netip.Addr
	// NodeIPv4 and NodeIPv6 are the node's addresses. They are the next hop of routes sent over a
	// session of the other family (IPv6 routes over an IPv4 session and vice versa); routes of
	// the session's own family use the session's local address.
	NodeIPv4, NodeIPv6 netip.Addr
	// Logger receives the speaker's logs, and GoBGP's at Debug; nil discards them.
	Logger *slog.Logger
	// Registerer receives the speaker's metrics; nil registers none.
	Registerer prometheus.Registerer
	// PrefixLimitRestart is how long a session closed because the peer sent more than
	// Peer.MaxPrefixes stays closed before it is opened again; DefaultPrefixLimitRestart when 0.
	PrefixLimitRestart time.Duration
	// StopTimeout bounds the wait for a session's withdrawals and Cease NOTIFICATION to be sent
	// when the session is stopped; DefaultStopTimeout when 0.
	StopTimeout time.Duration
	// ListenPort, when not 0, makes the speaker accept BGP connections from its peers on this
	// TCP port (179 for routers) on NodeIPv4 and NodeIPv6 only: a router that has the node as a
	// neighbour then opens a new session at its next attempt, where the speaker's own first
	// attempt comes 1.5-2 s after the peer is added (listen.go). 0 accepts none (the default).
	ListenPort int
}

// Defaults of Config.
const (
	DefaultPrefixLimitRestart = time.Minute
	DefaultStopTimeout        = 2 * time.Second
)

// Administrative Shutdown communications (RFC 9003) sent with the Cease NOTIFICATION that closes a
// session.
const (
	commShutdown = "Herald speaker stopping"
	commRemoved  = "BGPPeer removed from the Herald configuration"
	commChanged  = "BGPPeer configuration changed; reconnecting"
)

// Speaker keeps BGP sessions to a set of peers and advertises routes on them. It is safe for
// concurrent use.
type Speaker struct {
	cfg     Config
	log     *slog.Logger
	changes chan struct{}
	bfd     *bfdEndpoint

	// started is when the speaker was created: until a peer's restart time has passed since, the
	// router may still hold routes of the previous speaker process (see restarting).
	started time.Time

	// mu serialises the changes: SetPeers, SetRoutes, Shutdown, StopForRestart.
	mu sync.Mutex
	// hadSession names the peers that had a session since the speaker was created.
	hadSession map[string]bool
	servers    map[serverKey]*server
	want       map[string]table // route tables by peer name, from SetRoutes
	shut       bool

	// regMu guards the maps Status reads; changed only while mu is held.
	regMu    sync.RWMutex
	sessions map[string]*session
	// refused holds the peers of the last SetPeers that the speaker could not use, by name,
	// with the reason.
	refused map[string]refusal
	// waiting holds the interface peers whose router address is not learnt yet, by name.
	waiting map[string]Peer

	// configured is the last SetPeers input; watches the BGP unnumbered interfaces
	// (unnumbered.go). Both guarded by mu.
	configured []Peer
	watches    map[string]*ifaceWatch
}

// refusal is a peer SetPeers could not use and why.
type refusal struct {
	peer Peer
	err  error
}

// New returns a Speaker without peers or routes. It starts nothing: GoBGP servers start with the
// first session that needs them and stop with the last.
func New(cfg Config) (*Speaker, error) {
	if cfg.RouterID.IsValid() && !cfg.RouterID.Unmap().Is4() {
		return nil, fmt.Errorf("%w: router ID %v is not an IPv4 address", ErrInvalidPeer, cfg.RouterID)
	}
	if cfg.NodeIPv4.IsValid() && !cfg.NodeIPv4.Unmap().Is4() {
		return nil, fmt.Errorf("node IPv4 address %v is not IPv4", cfg.NodeIPv4)
	}
	if cfg.NodeIPv6.IsValid() && (!cfg.NodeIPv6.Is6() || cfg.NodeIPv6.Is4In6()) {
		return nil, fmt.Errorf("node IPv6 address %v is not IPv6", cfg.NodeIPv6)
	}
	if err := validListenPort(cfg.ListenPort); err != nil {
		return nil, err
	}
	cfg.NodeIPv4 = cfg.NodeIPv4.Unmap()
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if cfg.PrefixLimitRestart <= 0 {
		cfg.PrefixLimitRestart = DefaultPrefixLimitRestart
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	s := &Speaker{cfg: cfg, log: l, changes: make(chan struct{}, 1), servers: map[serverKey]*server{}, bfd: newBFDEndpoint(l),
		started: time.Now(), hadSession: map[string]bool{},
		want: map[string]table{}, sessions: map[string]*session{}, refused: map[string]refusal{}, watches: map[string]*ifaceWatch{}}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("registering BGP metrics: %w", err)
		}
	}
	return s, nil
}

// Changes delivers a value soon after anything Status reports may have changed: a session's
// state (from GoBGP's peer events, as they happen), its last error, its configuration or its
// routes. Several changes may come as one value; the channel is never closed.
func (s *Speaker) Changes() <-chan struct{} { return s.changes }

func (s *Speaker) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// SetPeers makes the speaker's sessions those of peers, each peer on its own: new peers get a
// session; a peer whose configuration changed has its session (and only its session) restarted;
// removed peers are closed (routes withdrawn, then a Cease NOTIFICATION "Administrative
// Shutdown"). Sessions of unchanged peers are not touched, nor those of peers of which only the
// graceful shutdown time changed. The routes last given to SetRoutes are
// advertised on new sessions.
//
// A peer the speaker cannot use (ValidatePeer refuses it, or GoBGP refuses to start its session)
// is skipped and never stops the others: it has no session, or keeps the session of its previous
// configuration, and Status reports it with its ConfigError. The error returned names every such
// peer (it wraps ErrInvalidPeer for a refused configuration).
func (s *Speaker) SetPeers(ctx context.Context, peers []Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return ErrShutdown
	}
	s.configured = slices.Clone(peers)
	return s.setPeers(ctx, peers)
}

// setPeers is SetPeers. Callers hold mu.
func (s *Speaker) setPeers(ctx context.Context, peers []Peer) error {
	defer s.notify()
	refused := map[string]refusal{}
	var errs []error
	usable := make([]Peer, 0, len(peers))
	seen := make(map[string]bool, len(peers))
	for _, p := range peers {
		err := ValidatePeer(p, s.cfg.RouterID)
		if err == nil && seen[p.Name] {
			err = fmt.Errorf("%w: peer %q: duplicate name; only the first peer of that name is used", ErrInvalidPeer, p.Name)
		}
		if err != nil {
			errs = append(errs, err)
			if _, first := refused[p.Name]; !first && !seen[p.Name] {
				refused[p.Name] = refusal{peer: p, err: err}
			}
			seen[p.Name] = true
			continue
		}
		seen[p.Name] = true
		usable = append(usable, p)
	}
	usable, waiting := s.resolveUnnumbered(usable)
	// A refused peer keeps the session of its previous configuration, if it has one: bad input
	// never takes down a session that works.
	for _, name := range sortedNames(refused) {
		r := refused[name]
		if ss, ok := s.sessions[name]; ok {
			s.log.Warn("BGP peer configuration refused; keeping the session of its previous configuration", "peer", name, "error", r.err)
			usable = append(usable, ss.config())
		} else {
			s.log.Warn("BGP peer configuration refused; no session for it, the other peers are not affected", "peer", name, "error", r.err)
		}
	}
	have := make(map[string]Peer, len(s.sessions))
	for n, ss := range s.sessions {
		have[n] = ss.config()
	}
	d := diffPeers(have, usable)
	for _, n := range d.stop {
		errs = append(errs, s.stopSession(ctx, s.sessions[n], commRemoved))
	}
	for _, p := range d.restart {
		s.log.Info("restarting BGP session: peer configuration changed", "peer", p.Name)
		errs = append(errs, s.stopSession(ctx, s.sessions[p.Name], commChanged))
	}
	for _, p := range d.update {
		s.log.Info("BGP graceful shutdown time changed; the session goes on", "peer", p.Name, "gracefulShutdown", p.GracefulShutdown)
		s.sessions[p.Name].gshut = p.GracefulShutdown
	}
	for _, p := range append(d.restart, d.start...) {
		if err := s.startSession(ctx, p); err != nil {
			// Retried at the next SetPeers: the peer has no session, so it is new again.
			errs = append(errs, err)
			refused[p.Name] = refusal{peer: p, err: err}
		}
	}
	s.regMu.Lock()
	s.refused = refused
	s.waiting = waiting
	s.regMu.Unlock()
	return errors.Join(errs...)
}

// SetRoutes makes routes the advertised routes: each configured peer is sent exactly the routes
// of its table. Only the difference to what is advertised is sent (UPDATEs with new attributes,
// or withdrawals); no session is reset. Routes that cannot be sent are reported in the error
// (wrapping ErrInvalidRoute or ErrNoNextHop) and the others are applied.
func (s *Speaker) SetRoutes(ctx context.Context, routes Routes) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return ErrShutdown
	}
	defer s.notify()
	want, err := tablesFrom(routes)
	s.want = want
	errs := []error{err}
	for _, k := range s.serverKeys() {
		errs = append(errs, s.applyServer(ctx, s.servers[k], nil))
	}
	return errors.Join(errs...)
}

func (s *Speaker) serverKeys() []serverKey {
	keys := slices.Collect(maps.Keys(s.servers))
	slices.SortFunc(keys, func(a, b serverKey) int {
		if c := a.routerID.Compare(b.routerID); c != 0 {
			return c
		}
		if a.asn != b.asn {
			return int(a.asn) - int(b.asn)
		}
		return a.slot - b.slot
	})
	return keys
}

// applyServer brings one server to the routes its sessions want; override replaces the tables
// of the sessions it names. Callers hold mu.
func (s *Speaker) applyServer(ctx context.Context, sv *server, override map[string]table) error {
	want := make(map[string]table, len(sv.sessions))
	var errs []error
	for _, name := range sortedNames(sv.sessions) {
		t, ok := override[name]
		if !ok {
			t = s.want[name]
		}
		t, err := sendable(t, sv.sessions[name].peer, s.cfg.NodeIPv4, s.cfg.NodeIPv6)
		errs = append(errs, err)
		want[name] = t
	}
	if err := sv.apply(ctx, want, s.cfg.NodeIPv4, s.cfg.NodeIPv6); err != nil {
		errs = append(errs, fmt.Errorf("BGP server (%v): %w", sv.key, err))
	}
	return errors.Join(errs...)
}

// serverFor returns the server that is to carry a session to p, starting it when needed.
// Callers hold mu.
func (s *Speaker) serverFor(ctx context.Context, p Peer) (*server, error) {
	k := serverKey{asn: p.MyASN, routerID: p.routerID(s.cfg.RouterID)}
	for ; ; k.slot++ {
		sv, ok := s.servers[k]
		if !ok {
			break
		}
		if !sv.hasAddress(p.Address) {
			return sv, nil
		}
	}
	l := s.listenFor()
	sv, err := startServer(ctx, k, l, s.log)
	if err != nil && l.port != 0 {
		// The port may be another daemon's: connect only, as without ListenPort.
		s.log.Warn("cannot accept BGP connections; the sessions of this server are opened by the speaker only", "server", k.String(), "port", l.port, "addresses", l.addrs, "error", err)
		sv, err = startServer(ctx, k, listen{}, s.log)
	}
	if err != nil {
		return nil, err
	}
	s.servers[k] = sv
	s.log.Debug("GoBGP server started", "server", k.String())
	return sv, nil
}

// stopServerIfIdle stops sv when it carries no session any more: there is no pool of idle
// servers. Callers hold mu.
func (s *Speaker) stopServerIfIdle(sv *server) {
	if len(sv.sessions) > 0 {
		return
	}
	sv.stop()
	delete(s.servers, sv.key)
	s.log.Debug("GoBGP server stopped", "server", sv.key.String())
}

// startSession adds a session to p on its server, with its routes in the export policy before
// the neighbour exists, so that it is sent them as soon as it is established. Callers hold mu.
func (s *Speaker) startSession(ctx context.Context, p Peer) error {
	sv, err := s.serverFor(ctx, p)
	if err != nil {
		return fmt.Errorf("%w: peer %q: %w", ErrInvalidPeer, p.Name, err)
	}
	ss := newSession(s, sv, p)
	sv.register(ss)
	err = s.applyServer(ctx, sv, nil)
	if err != nil {
		s.log.Warn("advertising on a new BGP session", "peer", p.Name, "error", err)
	}
	restarting := s.restarting(p, time.Now())
	if err := sv.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: toAPIPeer(p, restarting)}); err != nil {
		ss.close()
		sv.unregister(ss)
		if err := s.applyServer(ctx, sv, nil); err != nil {
			s.log.Warn("removing the routes of a BGP peer GoBGP refused", "peer", p.Name, "error", err)
		}
		s.stopServerIfIdle(sv)
		return fmt.Errorf("%w: peer %q: GoBGP refused it: %w", ErrInvalidPeer, p.Name, err)
	}
	ss.added = true
	s.hadSession[p.Name] = true
	ss.startChecks()
	ss.startBFD(s.bfd)
	s.regMu.Lock()
	s.sessions[p.Name] = ss
	s.regMu.Unlock()
	s.log.Info("BGP session configured", "peer", p.Name, "address", p.Address, "myASN", p.MyASN, "peerASN", p.PeerASN,
		"maxPrefixes", p.maxPrefixes(), "bfd", p.BFD.Enabled, "gracefulRestart", p.GracefulRestart, "restarting", restarting, "server", sv.key.String())
	return nil
}

// stopSession closes one session gracefully, as Shutdown closes them all: its routes are
// withdrawn, then a Cease NOTIFICATION "Administrative Shutdown" carrying why is sent once the
// withdrawals are on the wire, then the neighbour is deleted; the other sessions of the server
// are not touched. Callers hold mu.
func (s *Speaker) stopSession(ctx context.Context, ss *session, why string) error {
	sv := ss.srv
	errs := []error{s.withdraw(ctx, sv, []*session{ss})}
	errs = append(errs, s.cease(ctx, sv, []*session{ss}, why))
	ss.close()
	if err := sv.bgp.DeletePeer(context.WithoutCancel(ctx), &api.DeletePeerRequest{Address: ss.peer.neighborAddress()}); err != nil {
		errs = append(errs, fmt.Errorf("deleting BGP peer %s: %w", ss.peer.Name, err))
	}
	sv.unregister(ss)
	s.regMu.Lock()
	delete(s.sessions, ss.peer.Name)
	s.regMu.Unlock()
	s.stopServerIfIdle(sv)
	s.log.Info("BGP session stopped", "peer", ss.peer.Name, "why", why)
	return errors.Join(errs...)
}

// withdraw withdraws every route of the given sessions of sv and waits, at most StopTimeout,
// until GoBGP has written the withdrawals to the Established ones. Callers hold mu.
func (s *Speaker) withdraw(ctx context.Context, sv *server, sessions []*session) error {
	before, _ := sv.counters(ctx, false)
	override := map[string]table{}
	var sent []*session
	for _, ss := range sessions {
		override[ss.peer.Name] = nil
		if len(ss.adv) > 0 && ss.established() {
			sent = append(sent, ss)
		}
	}
	err := s.applyServer(ctx, sv, override)
	if len(sent) > 0 {
		sv.waitWritten(ctx, sent, before, s.cfg.StopTimeout)
	}
	return err
}

// cease closes the given sessions of sv with a Cease NOTIFICATION "Administrative Shutdown"
// carrying why (RFC 9003) and waits, at most StopTimeout, until they are no longer Established.
func (s *Speaker) cease(ctx context.Context, sv *server, sessions []*session, why string) error {
	var errs []error
	for _, ss := range sessions {
		if err := sv.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: ss.peer.neighborAddress(), Communication: why}); err != nil {
			errs = append(errs, fmt.Errorf("closing the BGP session to %s: %w", ss.peer.Name, err))
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopTimeout)
	defer cancel()
	for _, ss := range sessions {
		ss.waitDown(wctx)
	}
	return errors.Join(errs...)
}

// waitWritten waits until GoBGP has written what is queued for the given sessions: each has sent
// an UPDATE since before, and no more for a moment. GoBGP writes a NOTIFICATION directly on the
// connection, past its queue of UPDATEs, so a Cease sent before would overtake the withdrawals.
func (sv *server) waitWritten(ctx context.Context, sessions []*session, before map[netip.Addr]counters, timeout time.Duration) {
	const quiet = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	last := map[netip.Addr]uint64{}
	lastChange := time.Now()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		now, err := sv.counters(ctx, false)
		if err != nil {
			return
		}
		done := true
		for _, ss := range sessions {
			a := ss.peer.Address.Unmap()
			n := now[a].updatesSent
			if n != last[a] {
				last[a], lastChange = n, time.Now()
			}
			if n <= before[a].updatesSent {
				done = false
			}
		}
		if done && time.Since(lastChange) >= quiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status returns the state of every session, sorted by peer name.
func (s *Speaker) Status() []PeerStatus {
	s.regMu.RLock()
	sessions := slices.Collect(maps.Values(s.sessions))
	refused := maps.Clone(s.refused)
	waiting := maps.Clone(s.waiting)
	s.regMu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byServer := map[*server]map[netip.Addr]counters{}
	out := make([]PeerStatus, 0, len(sessions)+len(refused))
	for _, ss := range sessions {
		st := ss.status()
		c, ok := byServer[ss.srv]
		if !ok {
			var err error
			c, err = ss.srv.counters(ctx, true)
			if err != nil && st.LastError == "" && st.State != StateEstablished {
				st.LastError = fmt.Sprintf("reading session state: %v", err)
			}
			byServer[ss.srv] = c
		}
		st.UpdatesSent = c[ss.peer.Address.Unmap()].updatesSent
		st.PrefixesAdvertised = c[ss.peer.Address.Unmap()].advertised
		if r, ok := refused[st.Name]; ok {
			st.ConfigError = r.err.Error() + "; the session of the previous configuration goes on"
			delete(refused, st.Name)
		}
		out = append(out, st)
	}
	for name, r := range refused {
		st := PeerStatus{Name: name, Address: r.peer.Address, State: StateUnknown, ConfigError: r.err.Error()}
		if r.peer.BFD.Enabled {
			st.BFD = bfd.StateDown.String() // asked for, not running
		}
		out = append(out, st)
	}
	for name, p := range waiting {
		out = append(out, PeerStatus{Name: name, State: StateIdle, LastError: waitingError(p.Interface)})
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Shutdown withdraws every route and then closes every session with a Cease NOTIFICATION
// "Administrative Shutdown" (communication "Herald speaker stopping"), so peers stop forwarding to
// this node before it exits, and stops every GoBGP server. It returns when all sessions are
// closed; later calls return ErrShutdown.
func (s *Speaker) Shutdown(ctx context.Context) error {
	// Withdraw first everywhere, then close: the withdrawals reach every peer at about the
	// same time, and a peer with graceful restart does not keep the routes as stale. Peers
	// with graceful shutdown get their routes with the GRACEFUL_SHUTDOWN community first.
	wait := s.gracefulShutdownWait(ctx)
	count, stopped, err := s.stopAll(func(sv *server, sessions []*session) error {
		err := s.shutdownServer(ctx, sv, sessions, wait)
		for _, ss := range sessions {
			ss.close()
		}
		sv.stop()
		return err
	})
	if stopped {
		s.log.Info("BGP speaker shut down", "sessions", count)
	}
	return err
}

// stopAll marks the speaker shut and runs stop on every GoBGP server at once, with the server's
// sessions; then it forgets every server and session. It returns how many sessions there were,
// whether it stopped anything, and the errors of stop joined; ErrShutdown when the speaker was
// already shut.
func (s *Speaker) stopAll(stop func(sv *server, sessions []*session) error) (int, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return 0, false, ErrShutdown
	}
	s.shut = true
	defer s.notify()
	s.stopWatches()
	var wg sync.WaitGroup
	errs := make([]error, len(s.servers))
	for i, k := range s.serverKeys() {
		sv := s.servers[k]
		sessions := slices.Collect(maps.Values(sv.sessions))
		wg.Go(func() { errs[i] = stop(sv, sessions) })
	}
	wg.Wait()
	count := len(s.sessions)
	s.servers = map[serverKey]*server{}
	s.regMu.Lock()
	s.sessions = map[string]*session{}
	s.refused = map[string]refusal{}
	s.waiting = nil
	s.regMu.Unlock()
	return count, true, errors.Join(errs...)
}

// gracefulShutdownWait is how long Shutdown keeps the routes of a session with GracefulShutdown
// advertised with the GRACEFUL_SHUTDOWN community: the session's GracefulShutdown, but never so
// long that ctx ends before the withdrawals and the Cease (StopTimeout each) are sent. It reads
// only the speaker's fixed configuration.
func (s *Speaker) gracefulShutdownWait(ctx context.Context) func(Peer) time.Duration {
	limit := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		limit = max(time.Until(dl)-2*s.cfg.StopTimeout, 0)
	}
	return func(p Peer) time.Duration {
		if limit >= 0 && p.GracefulShutdown > limit {
			s.log.Warn("shortening the BGP graceful shutdown time to stop in time", "peer", p.Name, "gracefulShutdown", p.GracefulShutdown, "shortenedTo", limit)
			return limit
		}
		return p.GracefulShutdown
	}
}

// shutdownServer stops the given sessions of sv for good (RFC 8326 where a peer asks for it):
//  1. sessions with GracefulShutdown that are Established and advertise routes are sent them again
//     with the GRACEFUL_SHUTDOWN community (gracefulShutdownTable); the routes of the others are
//     withdrawn, and those sessions closed, at the same time;
//  2. after the longest graceful shutdown time of the first (wait), their routes are withdrawn
//     and they are closed.
//
// Callers hold mu.
func (s *Speaker) shutdownServer(ctx context.Context, sv *server, sessions []*session, wait func(Peer) time.Duration) error {
	var gshut, now []*session
	var longest time.Duration
	for _, ss := range sessions {
		if p := ss.config(); p.GracefulShutdown > 0 && len(ss.adv) > 0 && ss.established() {
			gshut = append(gshut, ss)
			longest = max(longest, wait(p))
			continue
		}
		now = append(now, ss)
	}
	if len(gshut) == 0 {
		return errors.Join(s.withdraw(ctx, sv, sessions), s.cease(ctx, sv, sessions, commShutdown))
	}
	before, _ := sv.counters(ctx, false)
	override := map[string]table{}
	for _, ss := range gshut {
		override[ss.peer.Name] = gracefulShutdownTable(ss.adv, ss.peer.ibgp())
	}
	var sent []*session
	for _, ss := range now {
		override[ss.peer.Name] = nil
		if len(ss.adv) > 0 && ss.established() {
			sent = append(sent, ss)
		}
	}
	errs := []error{s.applyServer(ctx, sv, override)}
	sv.waitWritten(ctx, append(sent, gshut...), before, s.cfg.StopTimeout)
	since := time.Now()
	names := make([]string, 0, len(gshut))
	for _, ss := range gshut {
		names = append(names, ss.peer.Name)
	}
	s.log.Info("BGP graceful shutdown: routes sent with the GRACEFUL_SHUTDOWN community; withdrawing them after the graceful shutdown time",
		"peers", names, "gracefulShutdown", longest)
	if len(now) > 0 {
		errs = append(errs, s.cease(ctx, sv, now, commShutdown))
	}
	if d := longest - time.Since(since); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	// Withdraw for all sessions: those of the others stay withdrawn, only the first have any.
	errs = append(errs, s.withdraw(ctx, sv, sessions), s.cease(ctx, sv, gshut, commShutdown))
	return errors.Join(errs...)
}
