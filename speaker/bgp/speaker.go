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

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
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
	// Logger receives the speaker's and GoBGP's logs (GoBGP's at Debug); nil discards them.
	Logger *slog.Logger
	// Registerer receives the speaker's metrics; nil registers none.
	Registerer prometheus.Registerer
	// PrefixLimitRestart is how long a session closed because the peer sent more than
	// Peer.MaxPrefixes stays closed before it is opened again; DefaultPrefixLimitRestart when 0.
	PrefixLimitRestart time.Duration
	// StopTimeout bounds the wait for a session's Cease NOTIFICATION to be sent when the
	// session is stopped; DefaultStopTimeout when 0.
	StopTimeout time.Duration
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
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
	// refused holds the peers of the last SetPeers that the speaker could not use, by name,
	// with the reason.
	refused map[string]refusal
	routes  []Route
	// idle holds stopped GoBGP servers for reuse: GoBGP v3's Serve loop cannot be ended, so a
	// server is kept and restarted rather than leaked.
	idle []pooled
	shut bool
}

// pooled is a GoBGP server with its logger.
type pooled struct {
	srv *server.BgpServer
	log *swapLogger
}

// session is one peer's GoBGP server and what was advertised on it.
type session struct {
	peer Peer
	pooled
	plog *sessionLog
	adv  map[netip.Prefix]attrs
	// stop ends the session's watch of GoBGP's peer events (and a pending restart after the
	// prefix limit).
	stop context.CancelFunc
}

// refusal is a peer SetPeers could not use and why.
type refusal struct {
	peer Peer
	err  error
}

// New returns a Speaker without peers or routes.
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
	s := &Speaker{cfg: cfg, log: l, sessions: map[string]*session{}, refused: map[string]refusal{}}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("registering BGP metrics: %w", err)
		}
	}
	return s, nil
}

// SetPeers makes the speaker's sessions those of peers, each peer on its own: new peers get a
// session; a peer whose configuration changed has its session (and only its session) restarted;
// removed peers are closed (routes withdrawn, then a Cease NOTIFICATION "Administrative
// Shutdown"). Sessions of unchanged peers are not touched. The routes last given to SetRoutes are
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
	// A refused peer keeps the session of its previous configuration, if it has one: bad input
	// never takes down a session that works.
	for name, r := range refused {
		if ss, ok := s.sessions[name]; ok {
			s.log.Warn("BGP peer configuration refused; keeping the session of its previous configuration", "peer", name, "err", r.err)
			usable = append(usable, ss.peer)
		} else {
			s.log.Warn("BGP peer configuration refused; no session for it, the other peers are not affected", "peer", name, "err", r.err)
		}
	}
	have := make(map[string]Peer, len(s.sessions))
	for n, ss := range s.sessions {
		have[n] = ss.peer
	}
	d := diffPeers(have, usable)
	for _, n := range d.stop {
		errs = append(errs, s.stopSession(ctx, s.sessions[n], commRemoved))
		delete(s.sessions, n)
	}
	for _, p := range d.restart {
		s.log.Info("restarting BGP session: peer configuration changed", "peer", p.Name)
		errs = append(errs, s.stopSession(ctx, s.sessions[p.Name], commChanged))
		delete(s.sessions, p.Name)
	}
	for _, p := range append(d.restart, d.start...) {
		ss, err := s.startSession(ctx, p)
		if err != nil {
			// Retried at the next SetPeers: the peer has no session, so it is new again.
			errs = append(errs, err)
			refused[p.Name] = refusal{peer: p, err: err}
			continue
		}
		s.sessions[p.Name] = ss
	}
	s.refused = refused
	errs = append(errs, s.syncRoutes(ctx))
	return errors.Join(errs...)
}

// SetRoutes makes routes the advertised routes. Only the difference to what is advertised is
// sent (UPDATEs with new attributes, or withdrawals); no session is reset.
func (s *Speaker) SetRoutes(ctx context.Context, routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return ErrShutdown
	}
	s.routes = slices.Clone(routes)
	return s.syncRoutes(ctx)
}

// syncRoutes brings every session's advertisements to what s.routes asks for. Callers hold mu.
func (s *Speaker) syncRoutes(ctx context.Context) error {
	names := make([]string, 0, len(s.sessions))
	for n := range s.sessions {
		names = append(names, n)
	}
	slices.Sort(names)
	want, err := desired(names, s.routes)
	errs := []error{err}
	for _, n := range names {
		ss := s.sessions[n]
		d := diffRoutes(ss.adv, want[n])
		if d.empty() {
			continue
		}
		errs = append(errs, ss.apply(ctx, d, s.cfg))
	}
	return errors.Join(errs...)
}

// apply sends one session's route changes to its GoBGP server.
func (ss *session) apply(ctx context.Context, d routeDiff, cfg Config) error {
	var errs []error
	for _, p := range d.del {
		path, err := toAPIPath(p, ss.adv[p], ss.nextHop(p, cfg), ss.peer.ibgp())
		if err == nil {
			err = ss.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %v from peer %s: %w", p, ss.peer.Name, err))
			continue
		}
		delete(ss.adv, p)
	}
	prefixes := make([]netip.Prefix, 0, len(d.add))
	for p := range d.add {
		prefixes = append(prefixes, p)
	}
	slices.SortFunc(prefixes, comparePrefix)
	for _, p := range prefixes {
		a := d.add[p]
		nh, err := nextHopFor(p, ss.peer, cfg.NodeIPv4, cfg.NodeIPv6)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		path, err := toAPIPath(p, a, nh, ss.peer.ibgp())
		if err == nil {
			// A path for a prefix already advertised replaces it: the peer gets one UPDATE with
			// the new attributes.
			_, err = ss.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("advertising %v to peer %s: %w", p, ss.peer.Name, err))
			continue
		}
		ss.adv[p] = a
	}
	return errors.Join(errs...)
}

func (ss *session) nextHop(p netip.Prefix, cfg Config) netip.Addr {
	nh, _ := nextHopFor(p, ss.peer, cfg.NodeIPv4, cfg.NodeIPv6)
	return nh
}

// startSession starts (or restarts an idle) GoBGP server for p: no listener, imports rejected,
// and p as its only neighbor. Callers hold mu.
func (s *Speaker) startSession(ctx context.Context, p Peer) (*session, error) {
	lg := newSessionLog(s.log, p)
	var pl pooled
	if n := len(s.idle); n > 0 {
		pl, s.idle = s.idle[n-1], s.idle[:n-1]
	} else {
		pl.log = &swapLogger{}
		pl.log.cur.Store(lg)
		pl.srv = server.NewBgpServer(server.LoggerOption(pl.log))
		go pl.srv.Serve()
	}
	pl.log.cur.Store(lg)
	srv := pl.srv
	ss := &session{peer: p, pooled: pl, plog: lg, adv: map[netip.Prefix]attrs{}}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: toAPIGlobal(p, s.cfg.RouterID)}); err != nil {
		s.idle = append(s.idle, pl)
		return nil, fmt.Errorf("starting BGP for peer %s: %w", p.Name, err)
	}
	// The speaker is not a router: whatever peers send is never imported into its RIB.
	err := srv.SetPolicies(ctx, importPolicy())
	if err != nil {
		err = fmt.Errorf("rejecting imports from peer %s: %w", p.Name, err)
	} else if err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: toAPIPeer(p)}); err != nil {
		err = fmt.Errorf("adding peer %s (%v): %w", p.Name, p.Address, err)
	}
	if err != nil {
		_ = srv.StopBgp(context.WithoutCancel(ctx), &api.StopBgpRequest{})
		s.idle = append(s.idle, pl)
		return nil, err
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ss.stop = stop
	if err := s.watchPrefixLimit(wctx, ss); err != nil {
		s.log.Warn("watching the BGP session for its prefix limit; a session closed by the limit stays closed", "peer", p.Name, "err", err)
	}
	s.log.Info("BGP session configured", "peer", p.Name, "address", p.Address, "myASN", p.MyASN, "peerASN", p.PeerASN, "maxPrefixes", p.maxPrefixes())
	return ss, nil
}

// watchPrefixLimit follows GoBGP's peer events of ss until ctx ends. When GoBGP closed the session
// because the peer sent more than its prefix limit (GoBGP then keeps it administratively down), it
// records why and opens the session again after Config.PrefixLimitRestart.
func (s *Speaker) watchPrefixLimit(ctx context.Context, ss *session) error {
	var mu sync.Mutex
	var pending *time.Timer
	context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if pending != nil {
			pending.Stop()
		}
	})
	return ss.srv.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		pe := r.GetPeer()
		st := pe.GetPeer().GetState()
		if pe.GetType() != api.WatchEventResponse_PeerEvent_STATE || st.GetAdminState() != api.PeerState_PFX_CT {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || pending != nil {
			return
		}
		ss.plog.setLastError(fmt.Sprintf("the peer sent more than %d prefixes of one address family (maxPrefixes): session closed with a Cease NOTIFICATION (maximum number of prefixes reached); it opens again in %s",
			ss.peer.maxPrefixes(), s.cfg.PrefixLimitRestart))
		ss.plog.log.Warn("BGP peer exceeded its prefix limit; session closed", "maxPrefixes", ss.peer.maxPrefixes(), "reopenIn", s.cfg.PrefixLimitRestart)
		pending = time.AfterFunc(s.cfg.PrefixLimitRestart, func() {
			mu.Lock()
			pending = nil
			mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			if err := ss.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: ss.peer.Address.Unmap().String()}); err != nil && ctx.Err() == nil {
				ss.plog.log.Warn("opening the BGP session again after its prefix limit", "err", err)
			}
		})
	})
}

// stopSession closes one session as Shutdown closes them all: withdraw, Cease, close. Callers
// hold mu.
func (s *Speaker) stopSession(ctx context.Context, ss *session, why string) error {
	err := errors.Join(s.withdrawAll(ctx, ss), s.cease(ctx, ss, why))
	ss.waitClosed(ctx, s.cfg.StopTimeout)
	return errors.Join(err, s.release(ctx, ss))
}

// withdrawAll withdraws every route the session advertised. GoBGP queues the withdrawals on the
// session before anything sent after them, such as the Cease NOTIFICATION.
func (s *Speaker) withdrawAll(ctx context.Context, ss *session) error {
	del := make([]netip.Prefix, 0, len(ss.adv))
	for p := range ss.adv {
		del = append(del, p)
	}
	if len(del) == 0 {
		return nil
	}
	slices.SortFunc(del, comparePrefix)
	return ss.apply(ctx, routeDiff{del: del}, s.cfg)
}

// cease asks GoBGP to close the session with a Cease NOTIFICATION "Administrative Shutdown"
// carrying why (RFC 9003), after what is queued on it (the withdrawals), and to keep it closed.
func (s *Speaker) cease(ctx context.Context, ss *session, why string) error {
	if err := ss.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: ss.peer.Address.Unmap().String(), Communication: why}); err != nil {
		return fmt.Errorf("closing the BGP session to %s: %w", ss.peer.Name, err)
	}
	return nil
}

// waitClosed waits, at most timeout, until the session is no longer Established, that is until
// GoBGP has sent the NOTIFICATION and closed the connection.
func (ss *session) waitClosed(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		established := false
		err := ss.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			established = p.GetState().GetSessionState() == api.PeerState_ESTABLISHED
		})
		if err != nil || !established {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// release stops the session's GoBGP server and keeps it for reuse. Callers hold mu.
func (s *Speaker) release(ctx context.Context, ss *session) error {
	ss.stop()
	var err error
	// StopBgp deletes the neighbor (a session still up would get a Cease "Peer De-configured")
	// and waits for the session's goroutines; it must run to the end even when ctx is done.
	if e := ss.srv.StopBgp(context.WithoutCancel(ctx), &api.StopBgpRequest{}); e != nil {
		err = fmt.Errorf("stopping BGP session to %s: %w", ss.peer.Name, e)
	}
	s.idle = append(s.idle, ss.pooled)
	s.log.Info("BGP session stopped", "peer", ss.peer.Name)
	return err
}

// Status returns the state of every session, sorted by peer name.
func (s *Speaker) Status() []PeerStatus {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	refused := maps.Clone(s.refused)
	s.mu.Unlock()
	out := make([]PeerStatus, 0, len(sessions)+len(refused))
	for _, ss := range sessions {
		st := ss.status()
		if r, ok := refused[st.Name]; ok {
			st.ConfigError = r.err.Error() + "; the session of the previous configuration goes on"
			delete(refused, st.Name)
		}
		out = append(out, st)
	}
	for name, r := range refused {
		out = append(out, PeerStatus{Name: name, Address: r.peer.Address, State: StateUnknown, ConfigError: r.err.Error()})
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (ss *session) status() PeerStatus {
	st := PeerStatus{Name: ss.peer.Name, Address: ss.peer.Address, LastError: ss.plog.lastError()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := ss.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		st.State = fromAPIState(p.State.SessionState)
		if m := p.State.Messages; m != nil && m.Sent != nil {
			st.UpdatesSent = m.Sent.Update
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				st.PrefixesAdvertised += int(af.State.Advertised)
			}
		}
		if st.State == StateEstablished && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			st.EstablishedSince = p.Timers.State.Uptime.AsTime()
		}
	})
	if err != nil && st.LastError == "" {
		st.LastError = fmt.Sprintf("reading session state: %v", err)
	}
	if st.State == StateEstablished {
		st.LastError = ""
	}
	return st
}

// Shutdown withdraws every route and then closes every session with a Cease NOTIFICATION
// "Administrative Shutdown" (communication "Herald speaker stopping"), so peers stop forwarding to
// this node before it exits. It returns when all sessions are closed; later calls return
// ErrShutdown.
func (s *Speaker) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return ErrShutdown
	}
	s.shut = true
	names := make([]string, 0, len(s.sessions))
	for n := range s.sessions {
		names = append(names, n)
	}
	slices.Sort(names)
	// Withdraw first everywhere, then close: the withdrawals reach every peer at about the
	// same time, and a peer with graceful restart does not keep the routes as stale.
	var errs []error
	for _, n := range names {
		errs = append(errs, s.withdrawAll(ctx, s.sessions[n]))
	}
	for _, n := range names {
		errs = append(errs, s.cease(ctx, s.sessions[n], commShutdown))
	}
	var wg sync.WaitGroup
	for _, n := range names {
		ss := s.sessions[n]
		wg.Go(func() { ss.waitClosed(ctx, s.cfg.StopTimeout) })
	}
	wg.Wait()
	stopErrs := make([]error, len(names))
	for i, n := range names {
		ss := s.sessions[n]
		ss.stop()
		wg.Go(func() {
			if err := ss.srv.StopBgp(context.WithoutCancel(ctx), &api.StopBgpRequest{}); err != nil {
				stopErrs[i] = fmt.Errorf("stopping BGP session to %s: %w", n, err)
			}
		})
	}
	wg.Wait()
	s.sessions = map[string]*session{}
	s.refused = map[string]refusal{}
	s.log.Info("BGP speaker shut down", "sessions", len(names))
	return errors.Join(append(errs, stopErrs...)...)
}
