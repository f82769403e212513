package bgp

import (
	"fmt"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// peerEvent is what the speaker takes from one of GoBGP's peer state events.
type peerEvent struct {
	state  State
	admin  api.PeerState_AdminState
	reason api.PeerState_DisconnectReason
	// message is GoBGP's text for the reason, such as
	// "notification-received cease/administrative shutdown".
	message string
	at      time.Time
	// peerASN is the AS the peer named in its OPEN (on Established).
	peerASN uint32
}

func fromAPIEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) peerEvent {
	st := ev.Peer.State
	return peerEvent{state: fromFSMState(st.SessionState), admin: st.AdminState, reason: st.DisconnectReason, message: st.DisconnectMessage, at: at, peerASN: st.PeerASN}
}

// explain says how an event changes a session's LastError: the new text and true, or false when
// the event says nothing new about why the session is down (GoBGP reports connection attempts,
// which fail without a state change, in no event; diagnose.go finds those). prev is the state
// before the event.
func explain(prev State, ev peerEvent, p Peer, prefixLimitRestart time.Duration) (string, bool) {
	switch {
	case ev.state == StateEstablished:
		return "", true
	case ev.admin == api.PeerState_ADMIN_STATE_PFX_CT:
		return fmt.Sprintf("the peer sent more than %d prefixes of one address family (maxPrefixes): session closed with a Cease NOTIFICATION (maximum number of prefixes reached); it opens again in %s",
			p.maxPrefixes(), prefixLimitRestart), true
	case prev == StateEstablished:
		return "session went down: " + disconnectReason(ev, p), true
	case (prev == StateOpenSent || prev == StateOpenConfirm) && ev.state == StateIdle:
		return fmt.Sprintf("session failed in %s: %s", prev, disconnectReason(ev, p)), true
	}
	return "", false
}

// disconnectReason turns GoBGP's reason for leaving a state into a sentence.
func disconnectReason(ev peerEvent, p Peer) string {
	detail := func(prefix string) string {
		return strings.TrimSpace(strings.TrimPrefix(ev.message, prefix))
	}
	switch ev.reason {
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED:
		return "the peer sent a NOTIFICATION: " + detail("notification-received")
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT:
		return "the speaker sent a NOTIFICATION: " + detail("notification-sent")
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		return "hold timer expired: nothing came from the peer within the hold time (it stopped, or the path to it is broken)"
	case api.PeerState_DISCONNECT_REASON_READ_FAILED:
		return "the TCP connection was closed or reset by the peer"
	case api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		return "sending to the peer failed: the TCP connection is broken"
	case api.PeerState_DISCONNECT_REASON_ADMIN_DOWN:
		return "closed by the speaker (administrative shutdown)"
	case api.PeerState_DISCONNECT_REASON_GRACEFUL_RESTART:
		return "the TCP connection failed; the peer keeps the routes for the graceful restart time"
	case api.PeerState_DISCONNECT_REASON_BAD_PEER_AS:
		return fmt.Sprintf("the peer's OPEN names another AS than peerASN %d", p.PeerASN)
	case api.PeerState_DISCONNECT_REASON_INVALID_MSG:
		return "invalid message from the peer (" + ev.message + ")"
	case api.PeerState_DISCONNECT_REASON_HARD_RESET:
		return "the peer sent a hard reset (" + ev.message + ")"
	case api.PeerState_DISCONNECT_REASON_DECONFIGURED:
		return "the peer was removed from the speaker's configuration"
	}
	if ev.message != "" {
		return ev.message
	}
	return "no reason given"
}
