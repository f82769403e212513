package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/cluster"
)

func famName(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

func family(v4 bool) corev1.IPFamily {
	if v4 {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// newNamespace makes a Kubernetes namespace for one test, deleted when it ends.
func newNamespace(t *testing.T, c *cluster.Cluster, prefix string) string {
	t.Helper()
	ns, err := c.NewNamespace(t.Context(), prefix)
	must(t, err)
	gone := recordPodRemovals(t.Context(), c, ns)
	t.Cleanup(func() {
		if removed := gone(); t.Failed() && len(removed) > 0 {
			t.Logf("pods of %s removed while the test ran:\n%s", ns, strings.Join(removed, "\n"))
		}
		var n corev1.Namespace
		n.Name = ns
		_ = c.Client.Delete(context.Background(), &n)
	})
	return ns
}

// recordPodRemovals notes, until the returned function is called, every pod of ns that gets a
// deletion timestamp or a terminal phase: its node and why (the DisruptionTarget condition names
// the taint manager, the pod GC, preemption or the eviction API). A test that sees an IP move
// logs them, so a pod removed by something outside the test is named instead of guessed at.
func recordPodRemovals(ctx context.Context, c *cluster.Cluster, ns string) func() []string {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var out []string
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			var pods corev1.PodList
			if err := c.Client.List(ctx, &pods, client.InNamespace(ns)); err == nil {
				for _, p := range pods.Items {
					if seen[p.Name] || (p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded) {
						continue
					}
					seen[p.Name] = true
					why := "no DisruptionTarget condition"
					for _, cond := range p.Status.Conditions {
						if cond.Type == corev1.DisruptionTarget {
							why = cond.Reason + ": " + cond.Message
						}
					}
					mu.Lock()
					out = append(out, fmt.Sprintf("  %s %s on %s phase %s reason %q: %s", time.Now().Format("15:04:05.000"), p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Reason, why))
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// backend creates a Deployment of backends and waits until its pods are ready; it returns the
// nodes they run on.
func backend(t *testing.T, ctx context.Context, c *cluster.Cluster, b cluster.Backend) []string {
	t.Helper()
	_, err := c.CreateBackend(ctx, b)
	must(t, err)
	nodes, err := c.WaitReadyPods(ctx, b.Namespace, b.Name, int(b.Replicas))
	must(t, err)
	return nodes
}

// lbService creates a LoadBalancer Service and waits for its n IPs.
func lbService(t *testing.T, ctx context.Context, c *cluster.Cluster, s cluster.LBService, n int) []netip.Addr {
	t.Helper()
	svc, err := c.CreateLBService(ctx, s)
	must(t, err)
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), svc) })
	ips, err := c.WaitIngress(ctx, s.Namespace, s.Name, n)
	must(t, err)
	return ips
}

// waitL2Owner waits until exactly one ServiceL2Status names a node other than not for the
// Service (with not empty: exactly one status at all), and returns that node. The status of not
// itself may still be there: a speaker killed -9 cannot remove its own, and when it is back within
// a second (the kubelet restarts it at once) the sweep of dead speakers' objects never runs, so
// for a moment the new owner's status stands beside the old one. When it times out because no
// status names anyone while a node answers for the Service's IP, the error wraps errStatusLost.
func waitL2Owner(ctx context.Context, c *cluster.Cluster, ns, name, not string) (string, error) {
	var last, others []string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		owners, err := c.L2Owners(ctx, ns, name)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = owners
		others = slices.DeleteFunc(slices.Clone(owners), func(n string) bool { return n == not })
		return len(others) == 1, nil
	})
	if err != nil {
		bg := context.WithoutCancel(ctx)
		if len(last) == 0 {
			if who := answering(bg, c, ns, name); who != "" {
				err = fmt.Errorf("%w: %s answers for %s/%s: %w", errStatusLost, who, ns, name, err)
			}
		}
		return "", fmt.Errorf("waiting for one ServiceL2Status of %s/%s naming a node other than %q (have %v): %w\n%s", ns, name, not, last, err, c.HeraldLogs(bg, 30))
	}
	return others[0], nil
}

// waitOnlyOwner waits up to within for owner to be the only node a ServiceL2Status of ns/name
// names: the old owner's object may still be there when the new one's appears.
func waitOnlyOwner(ctx context.Context, c *cluster.Cluster, ns, name, owner string, within time.Duration) error {
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, within, true, func(context.Context) (bool, error) {
		owners, err := c.L2Owners(ctx, ns, name)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = owners
		return slices.Equal(owners, []string{owner}), nil
	})
	if err != nil {
		return fmt.Errorf("waiting %v for %s to be the only node a ServiceL2Status of %s/%s names (have %v): %w", within, owner, ns, name, last, err)
	}
	return nil
}

// errStatusLost names a symptom this suite once found: a node answers for the IP but no
// ServiceL2Status names it (a status deleted by another speaker's sweep while memberlist counted
// its speaker dead, and never written again). The speaker now rewrites its status at every resync
// (speaker/agent/status.go statusWriter.recheck), so this is a failure like any other.
var errStatusLost = errors.New("a node answers for the IP but no ServiceL2Status names it")

// answering returns the node whose MAC the segment client resolves the Service's first IP to, or "".
func answering(ctx context.Context, c *cluster.Cluster, ns, name string) string {
	ips, err := c.WaitIngress(ctx, ns, name, 1)
	if err != nil || len(ips) == 0 {
		return ""
	}
	c.FlushNeighbor(ctx, "l2client", ips[0])
	mac, err := c.NeighborMAC(ctx, "l2client", ips[0])
	if err != nil {
		return ""
	}
	who, _ := c.NodeByMAC(ctx, mac)
	return who
}

// waitRoute waits until the router's kernel route for addr goes exactly via hops.
func waitRoute(ctx context.Context, c *cluster.Cluster, addr netip.Addr, hops []netip.Addr) error {
	if _, err := c.Router.WaitKernelNextHops(ctx, netip.PrefixFrom(addr, addr.BitLen()), hops, 20*time.Millisecond); err != nil {
		return fmt.Errorf("%w\n%s", err, c.HeraldLogs(context.WithoutCancel(ctx), 30))
	}
	return nil
}

// nodeAddrs returns the v4 (or v6) addresses of the named nodes, sorted.
func nodeAddrs(c *cluster.Cluster, v4 bool, names []string) []netip.Addr {
	return c.NodeAddrs(v4, names...)
}

// setUnschedulable cordons or uncordons a node.
func setUnschedulable(ctx context.Context, c *cluster.Cluster, node string, on bool) error {
	var n corev1.Node
	if err := c.Client.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
		return err
	}
	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Unschedulable = on
	return c.Client.Patch(ctx, &n, patch)
}
