package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// maxFailoverGap bounds the outage a client probing every 10 ms may see when an owner's speaker
// goes away. The goal in `make bench` is a median of 0.5 s, as in the process lab; this bound is
// for one run on a loaded machine.
const maxFailoverGap = 3 * time.Second

// TestLayer2 covers layer 2 on the real cluster for each family, with backends of a real
// Deployment behind kube-proxy: the Service gets an IP from the layer-2 pool, exactly one node
// answers ARP/NDP for it and it is the node ServiceL2Status names; when the owner's speaker pod is
// deleted, and when its process is killed -9, another node takes the IP over, which a client
// sending a request every 10 ms sees as a gap of at most maxFailoverGap; then the speaker is back
// (DaemonSet, kubelet restart) and there is again exactly one owner.
func TestLayer2(t *testing.T) {
	c := requireCluster(t)
	for _, v4 := range []bool{true, false} {
		t.Run(famName(v4), func(t *testing.T) {
			ctx := deadline(t, 5*time.Minute)
			ns := newNamespace(t, c, "l2")
			backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
			ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "web", App: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{family(v4)}}, 1)[0]
			if ip.Is4() != v4 {
				t.Fatalf("Service got %v, want an %s address", ip, famName(v4))
			}
			owner := settledOwner(t, ctx, c, ns, "web", ip)
			t.Logf("%s owned by %s", ip, owner)

			gap, next := l2Failover(t, ctx, c, ns, "web", ip, owner, "speaker pod deleted", func() error {
				pod, err := c.SpeakerPod(ctx, owner)
				if err != nil {
					return err
				}
				return c.Client.Delete(ctx, pod)
			})
			t.Logf("speaker pod of %s deleted: %s moved to %s, client gap %v", owner, ip, next, gap)

			owner = settledOwner(t, ctx, c, ns, "web", ip)
			gap, next = l2Failover(t, ctx, c, ns, "web", ip, owner, "speaker killed -9", func() error { return c.KillSpeaker(owner) })
			t.Logf("speaker of %s killed -9: %s moved to %s, client gap %v", owner, ip, next, gap)
			settledOwner(t, ctx, c, ns, "web", ip)
		})
	}
}

// settledOwner waits until every speaker runs, the Service has one owner that stays the owner
// while the segment client checks who answers ARP/NDP for ip, and only the owner answers; it
// returns that owner. A returning speaker may win the IP back meanwhile: then it checks again,
// until the deadline.
func settledOwner(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, name string, ip netip.Addr) string {
	t.Helper()
	must(t, c.WaitHerald(ctx, 2*time.Minute))
	var last error
	for ctx.Err() == nil {
		must(t, c.WaitSpeakersConverged(ctx, time.Minute))
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		owner, err := waitL2Owner(wctx, c, ns, name, "")
		cancel()
		must(t, err)
		_, err = c.WaitCurl(ctx, "l2client", ip, 80, nil)
		must(t, err)
		if last = onlyOwnerAnswers(ctx, c, ip, owner); last != nil {
			continue
		}
		// The client's neighbour entry names the owner, so its next requests depend on the owner.
		if last = clientUsesOwner(ctx, c, ip, owner); last != nil {
			continue
		}
		if now, err := waitL2Owner(ctx, c, ns, name, ""); err != nil || now != owner {
			last = fmt.Errorf("the owner changed from %s to %s (%w) while checking who answers", owner, now, err)
			continue
		}
		return owner
	}
	t.Fatalf("no settled owner of %s: %v", ip, last)
	return ""
}

// onlyOwnerAnswers checks that only owner answers ARP (three requests) or NDP for ip.
func onlyOwnerAnswers(ctx context.Context, c *cluster.Cluster, ip netip.Addr, owner string) error {
	mac, err := c.MAC(ctx, owner)
	if err != nil {
		return err
	}
	if ip.Is4() {
		replies, err := c.ARPReplies(ctx, "l2client", ip, 3)
		if err != nil {
			return err
		}
		for _, m := range replies {
			if m != mac {
				who, _ := c.NodeByMAC(ctx, m)
				return fmt.Errorf("ARP reply for %s from %s (%s): want replies only from the owner %s (%s)", ip, m, who, owner, mac)
			}
		}
		if len(replies) < 3 {
			return fmt.Errorf("%d ARP replies for %s to 3 requests", len(replies), ip)
		}
		return nil
	}
	return clientUsesOwner(ctx, c, ip, owner)
}

// clientUsesOwner flushes the segment client's neighbour entry for ip, resolves it again (ARP or
// NDP) and checks that it names owner's MAC.
func clientUsesOwner(ctx context.Context, c *cluster.Cluster, ip netip.Addr, owner string) error {
	mac, err := c.MAC(ctx, owner)
	if err != nil {
		return err
	}
	c.FlushNeighbor(ctx, "l2client", ip)
	got, err := c.NeighborMAC(ctx, "l2client", ip)
	if err != nil {
		return err
	}
	if got != mac {
		who, _ := c.NodeByMAC(ctx, got)
		return fmt.Errorf("l2client resolved %s to %s (%s), want the owner %s (%s)", ip, got, who, owner, mac)
	}
	return nil
}

// l2Failover streams requests every 10 ms from the segment client to ip, makes owner stop
// serving ip (as a failed node would: otherwise its kube-proxy keeps serving the client's cached
// ARP/NDP entry and no gap shows) and runs act; it waits until ServiceL2Status names another node
// and a request succeeds, and returns the gap the client saw and the new owner.
func l2Failover(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, name string, ip netip.Addr, owner, what string, act func() error) (time.Duration, string) {
	t.Helper()
	const timeout = 300 * time.Millisecond
	s := c.StartStream("l2client", lab.URL(ip, 80), 10*time.Millisecond, timeout)
	defer s.Stop()
	if _, err := s.WaitSuccessAfter(ctx, time.Now(), nil); err != nil {
		t.Fatalf("before %s: %v", what, err)
	}
	t0 := time.Now()
	must(t, c.BlockTraffic(ctx, owner, ip))
	unblock := func() { _ = c.UnblockTraffic(context.WithoutCancel(ctx), owner) }
	defer unblock()
	must(t, act())
	next, err := waitL2Owner(ctx, c, ns, name, owner)
	must(t, err)
	ok, err := s.WaitSuccessAfter(ctx, t0, nil)
	if err != nil {
		t.Fatalf("after %s no request to %s succeeded: %v", what, ip, err)
	}
	unblock()
	// Requests still in flight when the first one got through (sent to the old owner) fail only at
	// their timeout: wait for them, or Stop would drop them and hide the gap.
	if _, err := s.WaitSuccessAfter(ctx, ok.End.Add(timeout), nil); err != nil {
		t.Fatalf("after %s requests to %s stopped succeeding: %v", what, ip, err)
	}
	samples := s.Stop()
	gap := lab.Gap(samples, t0)
	t.Logf("%s: %d requests, %d failed, gap %v%s", what, len(samples), lab.Failures(samples), gap, failureWindows(samples, t0))
	if gap < 0 || gap > maxFailoverGap {
		t.Errorf("%s: the client saw a gap of %v (-1: never recovered), want at most %v\n%s", what, gap, maxFailoverGap, c.HeraldLogs(ctx, 30))
	}
	return gap, next
}
