package bgp

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// session is one peer's neighbour on its server and what the speaker knows of it. Its state and
// last error come from GoBGP's peer events (onEvent) and, while it cannot connect, from the
// connection check (diagnose.go).
type session struct {
	peer    Peer
	srv     *server
	sp      *Speaker
	log     *slog.Logger
	created time.Time
	// adv is what the export policy gives the peer; owned by Speaker.mu.
	adv table

	// ctx ends when the session is closed; it stops the connection check and the reopening
	// after the prefix limit.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	state   State
	since   time.Time // when it was established; zero unless Established
	lastErr string
	// changed is closed and replaced at every state change.
	changed chan struct{}
	check   *time.Timer // next connection check
	reopen  *time.Timer // reopening after the prefix limit
	closed  bool
}

func newSession(s *Speaker, sv *server, p Peer) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{peer: p, srv: sv, sp: s, log: s.log.With("peer", p.Name, "address", p.Address.String()),
		created: time.Now(), adv: table{}, ctx: ctx, cancel: cancel, state: StateIdle, changed: make(chan struct{})}
}

// onEvent applies one of GoBGP's state events of the neighbour.
func (ss *session) onEvent(ev peerEvent) {
	ss.mu.Lock()
	// An event from before the session was configured belongs to an earlier neighbour of the
	// same address (a restarted session).
	if ss.closed || ev.at.Before(ss.created) {
		ss.mu.Unlock()
		return
	}
	prev := ss.state
	ss.state = ev.state
	if ev.state == StateEstablished {
		if prev != StateEstablished {
			ss.since = ev.at
		}
	} else {
		ss.since = time.Time{}
	}
	if msg, ok := explain(prev, ev, ss.peer, ss.sp.cfg.PrefixLimitRestart); ok {
		ss.lastErr = msg
	}
	switch {
	case ev.state == StateEstablished && prev != StateEstablished:
		ss.log.Info("BGP session established")
		if ss.check != nil {
			ss.check.Stop()
			ss.check = nil
		}
	case prev == StateEstablished && ev.state != StateEstablished:
		ss.log.Warn("BGP session down", "state", ev.state, "reason", ss.lastErr)
		ss.scheduleCheck(checkDelay)
	}
	if ev.admin == api.PeerState_ADMIN_STATE_PFX_CT && ss.reopen == nil {
		ss.log.Warn("BGP peer exceeded its prefix limit; session closed", "maxPrefixes", ss.peer.maxPrefixes(), "reopenIn", ss.sp.cfg.PrefixLimitRestart)
		ss.reopen = time.AfterFunc(ss.sp.cfg.PrefixLimitRestart, ss.reopenAfterPrefixLimit)
	}
	if prev != ev.state {
		close(ss.changed)
		ss.changed = make(chan struct{})
	}
	ss.mu.Unlock()
	ss.sp.notify()
}

// reopenAfterPrefixLimit opens the session again: GoBGP keeps a session it closed at the prefix
// limit administratively down.
func (ss *session) reopenAfterPrefixLimit() {
	ss.mu.Lock()
	ss.reopen = nil
	ss.mu.Unlock()
	if ss.ctx.Err() != nil {
		return
	}
	if err := ss.srv.bgp.EnablePeer(ss.ctx, &api.EnablePeerRequest{Address: ss.peer.neighborAddress()}); err != nil && ss.ctx.Err() == nil {
		ss.log.Warn("opening the BGP session again after its prefix limit", "err", err)
	}
}

// startChecks schedules the first connection check.
func (ss *session) startChecks() {
	ss.mu.Lock()
	ss.scheduleCheck(checkDelay)
	ss.mu.Unlock()
}

// scheduleCheck runs the connection check after d. Callers hold ss.mu.
func (ss *session) scheduleCheck(d time.Duration) {
	if ss.closed {
		return
	}
	if ss.check != nil {
		ss.check.Stop()
	}
	ss.check = time.AfterFunc(d, ss.runCheck)
}

// runCheck checks the connection of a session that is not Established and reports the outcome
// as its last error, unless GoBGP's events already said more (a connection that works while the
// session failed for a reason an event named).
func (ss *session) runCheck() {
	ss.mu.Lock()
	skip := ss.closed || ss.state == StateEstablished
	ss.mu.Unlock()
	if skip {
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, checkTimeout)
	msg := checkConnect(ctx, ss.peer, checkTimeout)
	cancel()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.state == StateEstablished {
		return
	}
	if msg != connectOK || ss.lastErr == "" || strings.HasPrefix(ss.lastErr, "no TCP connection") {
		if msg != ss.lastErr {
			ss.lastErr = msg
			ss.log.Debug("BGP session cannot connect", "reason", msg)
			ss.sp.notify()
		}
	}
	ss.scheduleCheck(checkInterval)
}

// established reports whether the session is Established.
func (ss *session) established() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.state == StateEstablished
}

// waitDown waits until the session is not Established, or ctx ends.
func (ss *session) waitDown(ctx context.Context) {
	for {
		ss.mu.Lock()
		up, ch := ss.state == StateEstablished, ss.changed
		ss.mu.Unlock()
		if !up {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// close stops what the session runs of its own (checks, reopening) and ignores later events.
func (ss *session) close() {
	ss.cancel()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for _, t := range []*time.Timer{ss.check, ss.reopen} {
		if t != nil {
			t.Stop()
		}
	}
}

func (ss *session) status() PeerStatus {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := PeerStatus{Name: ss.peer.Name, Address: ss.peer.Address, State: ss.state, EstablishedSince: ss.since, LastError: ss.lastErr}
	if st.State == StateEstablished {
		st.LastError = ""
	}
	return st
}
