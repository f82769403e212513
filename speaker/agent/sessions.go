package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/status"
)

// Event reasons for BGP sessions, reported on the BGPPeer.
const (
	ReasonSessionUp   = v1beta1.EventReasonSessionEstablished
	ReasonSessionDown = v1beta1.EventReasonSessionDown
	// ReasonPeerRefused: the speaker cannot use the BGPPeer's configuration; the other peers'
	// sessions are not affected.
	ReasonPeerRefused = v1beta1.EventReasonPeerRefused
)

// StateRefused is the BGPSessionStatus state of a peer whose configuration the speaker refused
// and that has no session.
const StateRefused = "Refused"

// sessionEvent is one change worth telling an operator about.
type sessionEvent struct {
	Peer    string
	Type    string // corev1.EventTypeNormal or EventTypeWarning
	Reason  string
	Message string
}

// Timing of the session reports.
const (
	// sessionGrace is how long a session may stay down before it is reported (a session that
	// is connecting is not news).
	sessionGrace = 10 * time.Second
	// sessionRecheck is how often the sessions are read without a change notification from the
	// BGP speaker, as a safety net; state changes are reported as they happen.
	sessionRecheck = 30 * time.Second
)

// sessionTracker turns successive bgp.Status snapshots into events: a session coming up, going
// down, or staying down for longer than grace with a new reason (a connection attempt that fails
// the same way again is not news).
type sessionTracker struct {
	node  string
	grace time.Duration
	last  map[string]*sessionReport
	// due is the earliest time a session that is down becomes reportable, zero when none waits.
	due time.Time
}

type sessionReport struct {
	state    bgp.State
	reported string // last reason reported while down
	refused  string // last configuration error reported
	since    time.Time
}

func newSessionTracker(node string, grace time.Duration) *sessionTracker {
	return &sessionTracker{node: node, grace: grace, last: map[string]*sessionReport{}}
}

func (t *sessionTracker) update(now time.Time, statuses []bgp.PeerStatus) []sessionEvent {
	var out []sessionEvent
	t.due = time.Time{}
	seen := map[string]bool{}
	for _, st := range statuses {
		seen[st.Name] = true
		r := t.last[st.Name]
		if r == nil {
			r = &sessionReport{state: bgp.StateUnknown, since: now}
			t.last[st.Name] = r
		}
		if st.ConfigError != r.refused {
			r.refused = st.ConfigError
			if st.ConfigError != "" {
				out = append(out, sessionEvent{st.Name, corev1.EventTypeWarning, ReasonPeerRefused,
					fmt.Sprintf("node %s: cannot use this BGPPeer's configuration; the other sessions are not affected: %s", t.node, st.ConfigError)})
			}
		}
		if st.ConfigError != "" && st.State == bgp.StateUnknown {
			// No session: the refusal is the news, not the missing session.
			continue
		}
		up := st.State == bgp.StateEstablished
		switch {
		case up && r.state != bgp.StateEstablished:
			out = append(out, sessionEvent{st.Name, corev1.EventTypeNormal, ReasonSessionUp,
				fmt.Sprintf("node %s: session to %s established", t.node, st.Address)})
			*r = sessionReport{state: bgp.StateEstablished, since: now}
		case !up && r.state == bgp.StateEstablished:
			*r = sessionReport{state: st.State, since: now}
			reason := st.LastError
			if reason == "" {
				reason = "session closed"
			}
			out = append(out, sessionEvent{st.Name, corev1.EventTypeWarning, ReasonSessionDown,
				fmt.Sprintf("node %s: session to %s went down (%s): %s", t.node, st.Address, st.State, reason)})
			r.reported = st.LastError
		case !up:
			r.state = st.State
			if st.LastError == r.reported {
				continue
			}
			if at := r.since.Add(t.grace); now.Before(at) {
				if t.due.IsZero() || at.Before(t.due) {
					t.due = at
				}
				continue
			}
			r.reported = st.LastError
			reason := st.LastError
			if reason == "" {
				reason = "no answer from the peer yet"
			}
			out = append(out, sessionEvent{st.Name, corev1.EventTypeWarning, ReasonSessionDown,
				fmt.Sprintf("node %s: session to %s is not established after %s (%s): %s", t.node, st.Address, now.Sub(r.since).Round(time.Second), st.State, reason)})
		}
	}
	for name := range t.last {
		if !seen[name] {
			delete(t.last, name)
		}
	}
	return out
}

// watchSessions reports BGP session changes in BGPSessionStatus objects, in the log and as events
// on the BGPPeer, so an unreachable peer or a wrong password shows in `kubectl describe bgppeer`
// as well as in the herald_bgp_session_up metric. It reads the sessions when the BGP speaker
// signals a change (a session's FSM changed state), when a session that is down becomes
// reportable (grace), and every recheck as a safety net: a state change reaches the status
// writer at once, not at the next tick.
func (a *Agent) watchSessions(ctx context.Context, recheck, grace time.Duration) {
	tr := newSessionTracker(a.opts.NodeName, grace)
	safety := time.NewTicker(recheck)
	defer safety.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	for {
		statuses := a.opts.BGP.Status()
		a.status.SetSessions(sessionObjects(a.opts.NodeName, statuses))
		for _, ev := range tr.update(time.Now(), statuses) {
			if ev.Type == corev1.EventTypeWarning {
				a.log.Warn("BGP session", "peer", ev.Peer, "msg", ev.Message)
			} else {
				a.log.Info("BGP session", "peer", ev.Peer, "msg", ev.Message)
			}
			var p v1beta1.BGPPeer
			if err := a.opts.Cache.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: ev.Peer}, &p); err == nil {
				a.opts.Recorder.Event(&p, ev.Type, ev.Reason, ev.Message)
			}
		}
		due.Stop()
		if !tr.due.IsZero() {
			due.Reset(time.Until(tr.due))
		}
		select {
		case <-ctx.Done():
			return
		case <-a.opts.BGP.Changes():
		case <-due.C:
		case <-safety.C:
		}
	}
}

// sessionObjects turns the sessions' states into the BGPSessionStatus objects of this node, by name.
func sessionObjects(node string, statuses []bgp.PeerStatus) map[string]v1beta1.BGPSessionStatusStatus {
	out := make(map[string]v1beta1.BGPSessionStatusStatus, len(statuses))
	for _, st := range statuses {
		o := v1beta1.BGPSessionStatusStatus{
			Node: node, Peer: st.Name, PeerAddress: st.Address.String(), State: st.State.String(),
			LastError: st.LastError, PrefixesAdvertised: int32(st.PrefixesAdvertised), BFD: st.BFD,
		}
		if st.BFDError != "" {
			o.BFD = "Error"
			if o.LastError != "" {
				o.LastError += "; "
			}
			o.LastError += "BFD does not run: " + st.BFDError
		}
		if st.ConfigError != "" {
			o.LastError = "configuration refused: " + st.ConfigError
			if st.LastError != "" {
				o.LastError += "; session: " + st.LastError
			}
			if st.State == bgp.StateUnknown {
				o.State = StateRefused
			}
		}
		if !st.EstablishedSince.IsZero() {
			since := metav1.NewTime(st.EstablishedSince.Truncate(time.Second))
			o.EstablishedSince = &since
		}
		out[status.ObjectName(node, st.Name)] = o
	}
	return out
}
