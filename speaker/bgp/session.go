package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/herald-lb/herald/speaker/bfd"
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
	// gshut is the peer's graceful shutdown time, which may change while the session goes on
	// (peer.GracefulShutdown is the one it started with); owned by Speaker.mu.
	gshut time.Duration
	// added is set once GoBGP has the neighbour (AddPeer succeeded); owned by Speaker.mu. Before,
	// there is nothing to send it: it gets what the export policy gives it when it comes up.
	added bool

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

	// bfd is the session's BFD, nil without BFD (or when its sockets could not be opened:
	// bfdErr says why). bfdDown is true from BFD declaring the path down until the BGP session
	// is Established again; bfdMsg says so, and stays its last error meanwhile.
	bfd     *bfdLink
	bfdErr  string
	bfdDown bool
	bfdMsg  string
	// sameAS says why the session was closed after it came up with a router in the speaker's
	// own AS (dynamic.go); it stays its last error until it is Established again.
	sameAS string
}

func newSession(s *Speaker, sv *server, p Peer) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{peer: p, gshut: p.GracefulShutdown, srv: sv, sp: s, log: s.log.With("peer", p.Name, "address", p.Address.String()),
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
		ss.bfdDown = false
	} else {
		ss.since = time.Time{}
	}
	if msg, ok := explain(prev, ev, ss.peer, ss.sp.cfg.PrefixLimitRestart); ok {
		if ss.bfdDown && ev.state != StateEstablished {
			msg = ss.bfdMsg
		}
		ss.lastErr = msg
	}
	if why := sameASRefused(ss.peer, ev.peerASN); ev.state == StateEstablished && why != "" {
		ss.sameAS = fmt.Sprintf(why, ss.sp.cfg.PrefixLimitRestart)
		go ss.closeSameAS(ss.sameAS)
	} else if ev.state == StateEstablished {
		ss.sameAS = ""
	} else if ss.sameAS != "" {
		ss.lastErr = ss.sameAS
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
		ss.log.Warn("opening the BGP session again after its prefix limit", "error", err)
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
	if !ss.bfdDown && (msg != connectOK || ss.lastErr == "" || strings.HasPrefix(ss.lastErr, "no TCP connection")) {
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

// startBFD starts the session's BFD when its peer asks for it. A BFD that cannot run (its
// socket) leaves the BGP session running without it and is reported in Status.
func (ss *session) startBFD(ep *bfdEndpoint) {
	if !ss.peer.BFD.Enabled {
		return
	}
	link, err := ep.open(ss.peer, ss.log, ss.onBFD)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err != nil {
		ss.bfdErr = err.Error()
		ss.log.Warn("BFD cannot run; the BGP session runs without it", "error", err)
		return
	}
	ss.bfd = link
}

// onBFD acts on a change of the session's BFD state (on the BFD session's goroutine): when BFD
// declares the path down, the BGP session is closed at once with a Cease NOTIFICATION
// (Administrative Reset, "BFD: path to the peer down"); it reconnects as BGP does after a reset
// (after the connect time), and BFD goes on trying meanwhile. It is not held down until BFD is
// Up: a router with dynamic neighbours (FRR's `bgp listen range`) runs BFD with the node only
// while the BGP session exists, so holding BGP until BFD is Up would never end. A peer that
// takes BFD administratively down is no failure (RFC 5882).
func (ss *session) onBFD(_ bfd.State, failure bool, diag bfd.Diag) {
	if !failure {
		ss.sp.notify()
		return
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	up := ss.state == StateEstablished
	if !up {
		// Nothing to close; GoBGP would keep the NOTIFICATION for the next session and close
		// that one as soon as it is established.
		ss.mu.Unlock()
		ss.sp.notify()
		return
	}
	ss.bfdDown = true
	ss.bfdMsg = fmt.Sprintf("BFD declared the path to the peer down (%s); the BGP session was closed at once", diag)
	ss.mu.Unlock()
	ss.log.Warn("BFD declared the path down; closing the BGP session", "diagnostic", diag)
	ctx, cancel := bfdContext()
	defer cancel()
	err := ss.srv.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: ss.peer.neighborAddress(), Communication: "BFD: path to the peer down"})
	if err != nil {
		ss.log.Warn("closing the BGP session after BFD declared the path down", "error", err)
	}
	ss.sp.notify()
}

// close stops what the session runs of its own (checks, reopening, BFD, which tells the peer it
// goes AdminDown) and ignores later events.
func (ss *session) close() {
	ss.cancel()
	ss.mu.Lock()
	ss.closed = true
	link := ss.bfd
	ss.mu.Unlock()
	if link != nil {
		link.close() // its goroutine may be waiting for ss.mu in onBFD
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
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
	if ss.bfd != nil {
		st.BFD = ss.bfd.State().String()
	}
	st.BFDError = ss.bfdErr
	return st
}

// config is the session's peer as last configured, with its current graceful shutdown time.
// Callers hold Speaker.mu.
func (ss *session) config() Peer {
	p := ss.peer
	p.GracefulShutdown = ss.gshut
	return p
}
