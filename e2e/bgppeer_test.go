package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/speaker/agent"
)

// TestBGPPeerNeverStopsOthers (issue 10): a BGPPeer the API accepts never stops the other
// sessions. A peer with holdTime 10s (whose keepalive config.Parse used to derive as 3.333s, which
// the speakers then refused together with every other peer) is applied beside the working ones:
// every speaker runs it, the sessions to the router and the route stay, and a speaker restarted
// afterwards comes back with its session and next hop. The values the speakers cannot use are
// refused at the door.
func TestBGPPeerNeverStopsOthers(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 3*time.Minute)
	waitSessions(t, ctx, l)
	ns := newNamespace(t, l, "peers")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.BGPPoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
	all := l.NodeAddrs(true)
	must(t, waitRoute(ctx, l, ip, all))

	meta := metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "slow"}
	spec := func(f func(*v1beta1.BGPPeerSpec)) v1beta1.BGPPeerSpec {
		// 198.51.100.60 is on the segment and unused: the session never comes up, harmlessly.
		s := v1beta1.BGPPeerSpec{MyASN: l.Plan.NodeASN, PeerASN: l.Plan.RouterASN, PeerAddress: "198.51.100.60"}
		f(&s)
		return s
	}
	t.Run("refused at the door", func(t *testing.T) {
		for name, f := range map[string]func(*v1beta1.BGPPeerSpec){
			"keepaliveTime 2.5s":    func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = &metav1.Duration{Duration: 2500 * time.Millisecond} },
			"connectTime 1500ms":    func(s *v1beta1.BGPPeerSpec) { s.ConnectTime = &metav1.Duration{Duration: 1500 * time.Millisecond} },
			"peerAddress 0.0.0.0":   func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "0.0.0.0" },
			"holdTime 0s":           func(s *v1beta1.BGPPeerSpec) { s.HoldTime = &metav1.Duration{} },
			"peerAddress 127.0.0.1": func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "127.0.0.1" },
		} {
			err := l.Client.Create(ctx, &v1beta1.BGPPeer{ObjectMeta: meta, Spec: spec(f)}, client.DryRunAll)
			if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
				t.Errorf("BGPPeer with %s: %v, want refused", name, err)
			} else {
				t.Logf("BGPPeer with %s refused: %v", name, err)
			}
		}
	})

	peer := &v1beta1.BGPPeer{ObjectMeta: meta, Spec: spec(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 10 * time.Second} })}
	must(t, l.Client.Create(ctx, peer))
	t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), peer) })

	// Every speaker runs the new peer (it reports a session for it, not a refusal)...
	var last []string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		var list v1beta1.BGPSessionStatusList
		if err := l.Client.List(ctx, &list, client.InNamespace(lab.HeraldNamespace), client.MatchingLabels{agent.LabelPeer: "slow"}); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = last[:0]
		for _, s := range list.Items {
			if s.Status.State == agent.StateRefused {
				t.Fatalf("speaker of %s refused the peer: %s", s.Status.Node, s.Status.LastError)
			}
			last = append(last, s.Status.Node+"="+s.Status.State)
		}
		return len(list.Items) == len(l.Nodes), nil
	})
	if err != nil {
		t.Fatalf("not every speaker reports a session for the new peer (seen %s): %v", strings.Join(last, ", "), withHerald(err, l))
	}
	// ...and keeps its working sessions and the route.
	waitSessions(t, ctx, l)
	must(t, waitRoute(ctx, l, ip, all))

	// A speaker restarted with the peer in the configuration comes back with BGP. (With graceful
	// restart, the default, the router keeps n3's route, stale, while n3's session is down.)
	restartSpeakerAfter(t, l, "n3")
	must(t, l.StopSpeaker("n3", syscall.SIGKILL))
	n3 := l.NodeAddrs(true, "n3")[0]
	err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		nbs, err := l.Router.Neighbors(ctx)
		return err == nil && !nbs[n3].Established(), nil
	})
	if err != nil {
		t.Fatalf("the router still has an established session with the killed speaker of n3: %v", err)
	}
	must(t, l.StartSpeaker("n3"))
	waitSessions(t, ctx, l)
	must(t, waitRoute(ctx, l, ip, all))
}
