package cluster_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestLayer2NodeFailures: the owner of a layer-2 IP (externalTrafficPolicy Local, a pod on every
// node, so the nodes that stay up serve it locally) fails in two ways, and each time another node
// takes the IP over within maxFailoverGap as a client probing every 10 ms sees it: its link to the
// segment goes down (everything on the node still runs), and the whole node stops (kubelet,
// containerd, kube-proxy and the pods end at once, and the link goes down), after which the Node
// turns NotReady. The node comes back each time and the IP has one owner again, named by
// ServiceL2Status.
func TestLayer2NodeFailures(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 8*time.Minute)
	ns := newNamespace(t, c, "nodefail")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	v4 := []corev1.IPFamily{corev1.IPv4Protocol}

	t.Run("link down", func(t *testing.T) {
		ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "link", App: "web", Pool: lab.L2PoolName, Local: true, Families: v4}, 1)[0]
		owner := settledOwner(t, ctx, c, ns, "link", ip)
		t.Cleanup(func() { _ = c.SetLink(context.Background(), owner, true) })
		gap, next := l2Failover(t, ctx, c, ns, "link", ip, owner, "link down", func() error { return c.SetLink(ctx, owner, false) })
		t.Logf("link of %s down: %s moved to %s, client gap %v", owner, ip, next, gap)
		must(t, c.SetLink(ctx, owner, true))
		must(t, c.WaitSpeakersConverged(ctx, time.Minute))
		// The node back on the segment: exactly one node answers, and ServiceL2Status names it.
		settledOwner(t, ctx, c, ns, "link", ip)
	})

	t.Run("node stopped", func(t *testing.T) {
		ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "stop", App: "web", Pool: lab.L2PoolName, Local: true, Families: v4}, 1)[0]
		owner := settledOwner(t, ctx, c, ns, "stop", ip)
		t.Cleanup(func() {
			_ = c.SetLink(context.Background(), owner, true)
			if c.Node(owner).PID1() == 0 {
				_ = c.RestartNode(context.Background(), owner)
			}
		})
		gap, next := l2Failover(t, ctx, c, ns, "stop", ip, owner, "node stopped", func() error {
			if err := c.SetLink(ctx, owner, false); err != nil {
				return err
			}
			return c.StopNode(owner)
		})
		t.Logf("node %s stopped: %s moved to %s, client gap %v", owner, ip, next, gap)
		// The control plane notices too, and the IP stays with the new owner.
		err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
			var n corev1.Node
			if err := c.Client.Get(ctx, client.ObjectKey{Name: owner}, &n); err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					return cond.Status != corev1.ConditionTrue, nil
				}
			}
			return false, nil
		})
		must(t, err)
		if owners, err := c.L2Owners(ctx, ns, "stop"); err != nil || len(owners) != 1 || owners[0] != next {
			t.Errorf("with %s NotReady, %s is owned by %v (%v), want %s", owner, ip, owners, err, next)
		}
		must(t, c.SetLink(ctx, owner, true))
		must(t, c.RestartNode(ctx, owner))
		_, err = c.WaitReadyPods(ctx, ns, "web", 3)
		must(t, err)
		final := settledOwner(t, ctx, c, ns, "stop", ip)
		t.Logf("node %s back: %s owned by %s", owner, ip, final)
	})
}
