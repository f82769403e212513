package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// speakerMetric returns the value of the metric series (name with its labels, as exposed, such as
// `herald_speaker_config_invalid_objects{kind="BGPPeer"}`) on node's speaker.
func speakerMetric(ctx context.Context, l *lab.Lab, node, series string) (float64, error) {
	n, ok := l.Node(node)
	if !ok {
		return 0, fmt.Errorf("no lab node %q", node)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(n.V4.String(), "7472")+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading the metrics of %s's speaker: %w", node, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s's speaker does not expose %s", node, series)
}

// waitSpeakersApplied waits until every speaker exposes series with value want (such as
// herald_speaker_config_valid 0 once it has read a bad object), and then until each has completed
// a sync since: the state the test checks next is the one the speakers announce with that
// configuration, not the one before they read it.
func waitSpeakersApplied(ctx context.Context, l *lab.Lab, series string, want float64) error {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	for _, n := range l.Nodes {
		var last string
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			v, err := speakerMetric(ctx, l, n.Name, series)
			last = fmt.Sprintf("%v (%v)", v, err)
			return err == nil && v == want, nil
		})
		if err != nil {
			return withHerald(fmt.Errorf("speaker of %s: %s is %s, want %v: %w", n.Name, series, last, want, err), l)
		}
		before, err := speakerMetric(ctx, l, n.Name, "herald_speaker_sync_seconds_count")
		if err != nil {
			return err
		}
		// The speaker resyncs every 10 s without a change.
		err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			v, err := speakerMetric(ctx, l, n.Name, "herald_speaker_sync_seconds_count")
			return err == nil && v > before, nil
		})
		if err != nil {
			return withHerald(fmt.Errorf("speaker of %s: no sync after it exposed %s %v: %w", n.Name, series, want, err), l)
		}
	}
	return nil
}

// waitARP waits until ip answers ARP on the segment (from l2client), at most within d.
func waitARP(ctx context.Context, l *lab.Lab, ip netip.Addr, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		_, last = l.ARPReplies(ctx, "l2client", ip, 1)
		return last == nil, nil
	})
	if err != nil {
		return withHerald(fmt.Errorf("%s does not answer ARP within %v: %w (%w)", ip, d, err, last), l)
	}
	return nil
}

// TestScopedErrorsSurviveRestarts is the reviewer's scenario: with several layer-2 Services
// answered, the password Secret of an extra BGPPeer is deleted (Secrets pass no webhook), then
// every speaker is restarted, one at a time, and the controller too. Only that peer may be
// affected: every IP keeps answering ARP, the other BGP sessions stay up, and a new Service gets
// an address and is answered.
func TestScopedErrorsSurviveRestarts(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 6*time.Minute)
	waitSessions(t, ctx, l)
	ns := newNamespace(t, l, "scoped")
	var ips []netip.Addr
	for i := range 6 {
		ips = append(ips, service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: fmt.Sprintf("web%d", i), Pool: lab.L2PoolName}, 1)[0])
	}
	allAnswer := func(t *testing.T, when string) {
		t.Helper()
		for _, ip := range ips {
			if err := waitARP(ctx, l, ip, 5*time.Second); err != nil {
				t.Fatalf("%s: %v", when, err)
			}
		}
	}
	allAnswer(t, "before the change")

	// An extra peer with a password, working, then its Secret deleted.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "extra-password",
		Labels: map[string]string{v1beta1.LabelSpeakerSecret: "true"}},
		StringData: map[string]string{"password": "s3cret"}}
	peer := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "extra"},
		Spec: v1beta1.BGPPeerSpec{MyASN: l.Plan.NodeASN, PeerASN: l.Plan.RouterASN, PeerAddress: "198.51.100.3",
			PasswordSecret: &v1beta1.SecretKeyReference{Name: secret.Name}}}
	must(t, l.Client.Create(ctx, secret))
	t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), secret) })
	must(t, l.Client.Create(ctx, peer))
	t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), peer) })
	must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 1))
	must(t, l.Client.Delete(ctx, secret))
	must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 0))
	msg, err := waitProblem(ctx, l, "BGPPeer", lab.HeraldNamespace, []string{"extra"}, "extra-password")
	must(t, err)
	t.Logf("reported: %s", msg)
	allAnswer(t, "after the Secret was deleted")

	// Every speaker restarted while the Secret is missing, one at a time.
	for _, n := range l.Nodes {
		restartSpeakerAfter(t, l, n.Name)
		must(t, l.StopSpeaker(n.Name, syscall.SIGTERM))
		must(t, l.StartSpeaker(n.Name))
		must(t, waitSpeakersConverged(ctx, l))
		// It started with the bad object: it reports it, and has synced since.
		must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 0))
		allAnswer(t, "after restarting the speaker of "+n.Name)
	}
	waitSessions(t, ctx, l)
	for _, n := range l.Nodes {
		v, err := speakerMetric(ctx, l, n.Name, `herald_speaker_config_invalid_objects{kind="BGPPeer"}`)
		if err != nil || v != 1 {
			t.Errorf("speaker of %s counts %v invalid BGPPeers (%v), want 1", n.Name, v, err)
		}
	}

	// The controller restarted while the Secret is missing: it still assigns addresses.
	must(t, l.RestartController())
	newIP := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "after-restarts", Pool: lab.L2PoolName}, 1)[0]
	if err := waitARP(ctx, l, newIP, 10*time.Second); err != nil {
		t.Fatalf("the new Service: %v", err)
	}
	allAnswer(t, "after restarting the controller")
	for i, want := range ips {
		got, err := l.WaitIngress(ctx, ns, fmt.Sprintf("web%d", i), 1)
		must(t, err)
		if got[0] != want {
			t.Errorf("web%d has %v after the restarts, want %v", i, got, want)
		}
	}
}
