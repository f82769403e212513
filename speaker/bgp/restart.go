package bgp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// Graceful restart (RFC 4724), the speaker's side of it:
//
//   - A session to a peer with GracefulRestart advertises the capability with the peer's restart
//     time. When the session ends without a NOTIFICATION (the process was killed, or
//     StopForRestart), the router keeps this node's routes, marked stale, for that time.
//   - The first session of a peer in a new speaker process, opened within the peer's restart time
//     of the process's start, sets the Restart State bit and the Forwarding State bits (restarting):
//     the router keeps the stale routes through the new session until its End-of-RIB, which
//     GoBGP sends right after the routes; stale routes the new speaker did not send again are
//     removed then. Without the Forwarding State bits, FRR drops the stale routes as soon as the
//     new session comes up, before the new speaker has sent them again.
//   - A speaker that does not come back: the router removes the routes when the restart time
//     expires.
//
// Shutdown is the other way to stop: for good (the node goes away), routes withdrawn first, then
// a Cease NOTIFICATION, so the router keeps nothing stale and moves the traffic at once.

// restarting reports whether a session to p opened at now is the first of a restarted speaker
// whose predecessor's routes the router may still hold. Callers hold mu.
func (s *Speaker) restarting(p Peer, now time.Time) bool {
	return p.GracefulRestart && !s.hadSession[p.Name] && now.Sub(s.started) < p.restartTime()
}

// StopForRestart stops the speaker for a restart (the DaemonSet's rolling update): sessions with
// graceful restart end without withdrawing anything and without a NOTIFICATION (the TCP
// connection is closed, as when the process dies), so the router keeps forwarding to this node for
// their restart time while the next speaker process starts; sessions without graceful restart
// are closed as Shutdown closes them (routes withdrawn, then a Cease). BFD sessions end with
// AdminDown, which the router does not take for a failure. Every GoBGP server is stopped; later
// calls return ErrShutdown.
func (s *Speaker) StopForRestart(ctx context.Context) error {
	var kept atomic.Int64
	_, stopped, err := s.stopAll(func(sv *server, sessions []*session) error {
		var plain []*session
		for _, ss := range sessions {
			if ss.peer.GracefulRestart {
				kept.Add(1)
			} else {
				plain = append(plain, ss)
			}
		}
		var e []error
		if len(plain) > 0 {
			e = append(e, s.withdraw(ctx, sv, plain), s.cease(ctx, sv, plain, commShutdown))
		}
		e = append(e, sv.stopKeepingRoutes(ctx))
		for _, ss := range sessions {
			ss.close()
		}
		return errors.Join(e...)
	})
	if stopped {
		s.log.Info("BGP speaker stopped for a restart; routers keep this node's routes for the restart time", "sessionsKept", kept.Load())
	}
	return err
}

// stopKeepingRoutes stops the server as stop does, except that sessions that negotiated graceful
// restart end without a NOTIFICATION, so the peers keep their routes.
func (sv *server) stopKeepingRoutes(ctx context.Context) error {
	defer sv.stopWatch()
	if err := sv.bgp.StopBgp(context.WithoutCancel(ctx), &api.StopBgpRequest{AllowGracefulRestart: true}); err != nil {
		return fmt.Errorf("stopping the GoBGP server (%v) for a restart: %w", sv.key, err)
	}
	return nil
}
