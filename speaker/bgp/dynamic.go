package bgp

import (
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v4/api"
)

// A Peer with PeerASN 0 (BGPPeer dynamicASN external) accepts the router's AS number without
// pinning it. GoBGP runs such a neighbour with peer AS 0: it skips the AS check of the OPEN and
// takes whatever AS the router names, its own included, in which case the session would run as
// iBGP. dynamicASN external promises eBGP, so the speaker closes such a session as soon as GoBGP
// reports it Established, with a Cease NOTIFICATION saying why, reports it as the session's last
// error, and keeps it closed for Config.PrefixLimitRestart before it tries again (the router may
// be corrected meanwhile). GoBGP gives no hook between the OPEN and Established, so routes may be
// sent on the session for the moment it is up.
//
// dynamicASN internal needs no such check: config translates it to PeerASN = MyASN, which GoBGP
// enforces (a router in another AS is refused with an OPEN error Bad Peer AS).

// sameASRefused says why a session to p is closed when the router named remoteAS in its OPEN,
// or "" when the session may stay.
func sameASRefused(p Peer, remoteAS uint32) string {
	if p.PeerASN != 0 || remoteAS != p.MyASN {
		return ""
	}
	return fmt.Sprintf("the router answered with AS %d, the speaker's own (myASN), but the peer accepts only an external AS (dynamicASN external): the session was closed; set dynamicASN internal or peerASN %d for iBGP, or correct the router's AS; it is tried again in %%s", remoteAS, remoteAS)
}

// closeSameAS closes the Established session whose router turned out to be in the speaker's own
// AS (see sameASRefused) and opens it again after Config.PrefixLimitRestart. It runs on its own
// goroutine: it calls GoBGP, whose events it was started from.
func (ss *session) closeSameAS(why string) {
	if ss.ctx.Err() != nil {
		return
	}
	ss.log.Warn("closing a BGP session to a router in the speaker's own AS (dynamicASN external)", "reason", why)
	err := ss.srv.bgp.DisablePeer(ss.ctx, &api.DisablePeerRequest{Address: ss.peer.neighborAddress(),
		Communication: "Herald: dynamicASN external, but the router is in our AS (iBGP)"})
	if err != nil && ss.ctx.Err() == nil {
		ss.log.Warn("closing a BGP session to a router in the speaker's own AS", "error", err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.reopen != nil {
		return
	}
	ss.reopen = time.AfterFunc(ss.sp.cfg.PrefixLimitRestart, ss.reopenAfterPrefixLimit)
}
