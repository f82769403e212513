package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestBadInput feeds the live system an overlapping pool, a malformed annotation and a BGPPeer whose
// password Secret does not exist. Each problem must be reported (a Warning event on the object, or
// a False condition in its status), and the Services already running must keep their addresses and
// keep being served over layer 2 and BGP.
func TestBadInput(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 3*time.Minute)
	waitSessions(t, ctx, l)
	ns := newNamespace(t, l, "bad")
	l2ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "l2", Pool: lab.L2PoolName}, 1)[0]
	bgpip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "bgp", Pool: lab.BGPPoolName}, 1)[0]
	_, err := l.WaitCurl(ctx, "l2client", l2ip, 80, nil)
	must(t, err)
	must(t, waitRoute(ctx, l, bgpip, l.NodeAddrs(true)))
	stillServing := func(t *testing.T) {
		t.Helper()
		for name, want := range map[string]netip.Addr{"l2": l2ip, "bgp": bgpip} {
			got, err := l.WaitIngress(ctx, ns, name, 1)
			must(t, err)
			if got[0] != want {
				t.Errorf("%s has %v, want %v unchanged", name, got, want)
			}
		}
		if _, err := l.Curl(ctx, "l2client", l2ip, 80); err != nil {
			t.Errorf("layer-2 Service no longer served: %v", err)
		}
		if _, err := l.Curl(ctx, "extclient", bgpip, 80); err != nil {
			t.Errorf("BGP Service no longer served: %v", err)
		}
		if err := waitRoute(ctx, l, bgpip, l.NodeAddrs(true)); err != nil {
			t.Error(err)
		}
	}

	// Each problem is checked once every speaker has read it and synced since (and the controller
	// has finished the reconcile that reported it): checked earlier, a claim could not fail.
	t.Run("overlapping pool", func(t *testing.T) {
		must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 1))
		pool := &v1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "overlap"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.115-198.51.100.125"}},
		}
		must(t, l.Client.Create(ctx, pool))
		t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), pool) })
		msg, err := waitProblem(ctx, l, "IPAddressPool", lab.HeraldNamespace, []string{"overlap", lab.L2PoolName}, "overlap")
		must(t, err)
		t.Logf("reported: %s", msg)
		must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 0))
		stillServing(t)
	})

	t.Run("malformed annotation", func(t *testing.T) {
		service(t, ctx, l, lab.ServiceSpec{
			Namespace: ns, Name: "malformed", Pool: lab.L2PoolName,
			Annotations: map[string]string{v1beta1.AnnotationLoadBalancerIPs: "198.51.100.300"},
		}, 0)
		msg, err := waitProblem(ctx, l, "Service", ns, []string{"malformed"}, "loadBalancerIPs")
		must(t, err)
		t.Logf("reported: %s", msg)
		// The event comes before the reconcile writes the status: make the controller reconcile
		// the Service again and wait for that reconcile's event, so the first one has ended.
		must(t, waitReconciledAgain(ctx, l, ns, "malformed", "loadBalancerIPs"))
		var svc corev1.Service
		must(t, l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "malformed"}, &svc))
		if ips := lab.IngressIPs(&svc); len(ips) > 0 {
			t.Errorf("Service with a malformed annotation got %v", ips)
		}
		stillServing(t)
	})

	t.Run("BGPPeer with a missing Secret", func(t *testing.T) {
		must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 1))
		peer := &v1beta1.BGPPeer{
			ObjectMeta: metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "no-secret"},
			Spec: v1beta1.BGPPeerSpec{
				MyASN: l.Plan.NodeASN, PeerASN: l.Plan.RouterASN, PeerAddress: "198.51.100.3",
				PasswordSecret: &v1beta1.SecretKeyReference{Name: "missing-secret"},
			},
		}
		must(t, l.Client.Create(ctx, peer))
		t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), peer) })
		msg, err := waitProblem(ctx, l, "BGPPeer", lab.HeraldNamespace, []string{"no-secret"}, "missing-secret")
		must(t, err)
		t.Logf("reported: %s", msg)
		must(t, waitSpeakersApplied(ctx, l, "herald_speaker_config_valid", 0))
		stillServing(t)
	})
}

// waitReconciledAgain makes the controller reconcile the Service once more (a label change) and
// waits until the Warning event whose message contains want has been counted once more: that
// reconcile reached its report, so the one before it has written everything it writes.
func waitReconciledAgain(ctx context.Context, l *lab.Lab, ns, name, want string) error {
	count := func() int32 {
		evs, err := l.WarningEvents(ctx, "Service", ns, name)
		if err != nil {
			return -1
		}
		var n int32
		for _, e := range evs {
			if strings.Contains(e.Message, want) {
				n += max(e.Count, 1)
			}
		}
		return n
	}
	before := count()
	var svc corev1.Service
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		return err
	}
	patch := client.MergeFrom(svc.DeepCopy())
	if svc.Labels == nil {
		svc.Labels = map[string]string{}
	}
	svc.Labels["e2e-reconcile"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := l.Client.Patch(ctx, &svc, patch); err != nil {
		return fmt.Errorf("touching Service %s/%s: %w", ns, name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) { return count() > before, nil })
	if err != nil {
		return fmt.Errorf("no new event about %q on Service %s/%s after it changed (had %d): %w", want, ns, name, before, err)
	}
	return nil
}

// waitProblem waits until one of the named objects of kind has a Warning event, or (for pools) a
// status condition that is False, whose message contains want, and returns that message.
func waitProblem(ctx context.Context, l *lab.Lab, kind, ns string, names []string, want string) (string, error) {
	var found string
	var seen []string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		seen = seen[:0]
		for _, name := range names {
			evs, err := l.WarningEvents(ctx, kind, ns, name)
			if err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			for _, e := range evs {
				seen = append(seen, e.Message)
				if strings.Contains(strings.ToLower(e.Message), strings.ToLower(want)) {
					found = fmt.Sprintf("event %s on %s %s/%s: %s", e.Reason, kind, ns, name, e.Message)
					return true, nil
				}
			}
			if kind == "IPAddressPool" {
				var p v1beta1.IPAddressPool
				if err := l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err == nil {
					for _, c := range p.Status.Conditions {
						seen = append(seen, c.Message)
						if c.Status == metav1.ConditionFalse && strings.Contains(strings.ToLower(c.Message), want) {
							found = fmt.Sprintf("condition %s=False on pool %s: %s", c.Type, name, c.Message)
							return true, nil
						}
					}
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("no report mentioning %q on %s %v (Warning events/conditions seen: %q): %w", want, kind, names, seen, err)
	}
	return found, nil
}
