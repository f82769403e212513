package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// failoverRuns is how many failovers each cluster failover figure is made of.
const failoverRuns = 5

// TestMeasureCluster measures the cluster lab for `make bench` (HERALD_BENCH=1; skipped
// otherwise): the bring-up time (without waiting for the machine lock), the idle cluster's CPU
// and memory (control plane and nodes, Herald and a backend Deployment included), layer-2
// failover as a client probing every 10 ms sees it when the owner's speaker pod is deleted, when
// its process is killed -9, when the owner's link goes down (median and worst of failoverRuns
// each) and when the whole owner node stops (3 runs), and the failed requests
// of a rolling update of the speaker DaemonSet under 100 requests a second through a layer-2 and
// a BGP Service IP. Each figure is printed as a BENCHJSON line.
func TestMeasureCluster(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("measurement: set HERALD_BENCH=1 (make bench)")
	}
	c := requireCluster(t)
	report(t, "cluster_bringup_ms", float64(c.BringUp().Microseconds())/1000, "ms")
	ctx := deadline(t, 20*time.Minute)
	ns := newNamespace(t, c, "m-cluster")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})

	t.Run("idle", func(t *testing.T) {
		must(t, c.WaitSpeakersConverged(ctx, time.Minute))
		const window = 30 * time.Second
		u1, err := c.Usage()
		must(t, err)
		select { // a measurement window, not a wait for a condition
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(window):
		}
		u2, err := c.Usage()
		must(t, err)
		report(t, "cluster_idle_cpu_percent", 100*float64(u2.CPU-u1.CPU)/float64(window), "%")
		report(t, "cluster_idle_memory_mib", float64(u2.RSS)/(1<<20), "MiB")
		t.Logf("%d processes; resident memory by program: %v", u2.Procs, u2.RSSByProgram)
	})

	for _, fc := range []struct {
		name, svc string
		act       func(owner string) error
	}{
		{"pod_delete", "l2-delete", func(owner string) error {
			pod, err := c.SpeakerPod(ctx, owner)
			if err != nil {
				return err
			}
			return c.Client.Delete(ctx, pod)
		}},
		{"kill", "l2-kill", func(owner string) error { return c.KillSpeaker(owner) }},
	} {
		t.Run("l2 failover "+fc.name, func(t *testing.T) {
			ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: fc.svc, App: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
			var gaps []time.Duration
			for range failoverRuns {
				owner := settledOwner(t, ctx, c, ns, fc.svc, ip)
				gap, _ := l2Failover(t, ctx, c, ns, fc.svc, ip, owner, fc.name, func() error { return fc.act(owner) })
				gaps = append(gaps, gap)
				if fc.name == "kill" {
					// A fresh pod: the kubelet would restart the killed container after a back-off
					// that doubles with every kill.
					must(t, c.WaitHerald(ctx, 2*time.Minute))
					pod, err := c.SpeakerPod(ctx, owner)
					must(t, err)
					must(t, c.Client.Delete(ctx, pod))
				}
			}
			t.Logf("%s: gaps %v", fc.name, gaps)
			report(t, "cluster_l2_failover_"+fc.name+"_median_ms", ms(median(gaps)), "ms")
			report(t, "cluster_l2_failover_"+fc.name+"_worst_ms", ms(slices.Max(gaps)), "ms")
		})
	}

	// The owner itself fails: a Local Service, so the nodes that stay up serve it with their own pod.
	for _, fc := range []struct {
		name, svc string
		runs      int
		fail      func(owner string) error
		restore   func(owner string) error
	}{
		{"link_down", "l2-link", failoverRuns,
			func(owner string) error { return c.SetLink(ctx, owner, false) },
			func(owner string) error {
				if err := c.SetLink(ctx, owner, true); err != nil {
					return err
				}
				return c.WaitHerald(ctx, 2*time.Minute)
			}},
		{"node_stop", "l2-stop", 3,
			func(owner string) error {
				if err := c.SetLink(ctx, owner, false); err != nil {
					return err
				}
				return c.StopNode(owner)
			},
			func(owner string) error {
				if err := c.SetLink(ctx, owner, true); err != nil {
					return err
				}
				if err := c.RestartNode(ctx, owner); err != nil {
					return err
				}
				_, err := c.WaitReadyPods(ctx, ns, "web", 3)
				return err
			}},
	} {
		t.Run("l2 failover "+fc.name, func(t *testing.T) {
			ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: fc.svc, App: "web", Pool: lab.L2PoolName, Local: true, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
			var gaps []time.Duration
			for range fc.runs {
				owner := settledOwner(t, ctx, c, ns, fc.svc, ip)
				gap, _ := l2Failover(t, ctx, c, ns, fc.svc, ip, owner, fc.name, func() error { return fc.fail(owner) })
				gaps = append(gaps, gap)
				must(t, fc.restore(owner))
			}
			t.Logf("%s: gaps %v", fc.name, gaps)
			report(t, "cluster_l2_failover_"+fc.name+"_median_ms", ms(median(gaps)), "ms")
			report(t, "cluster_l2_failover_"+fc.name+"_worst_ms", ms(slices.Max(gaps)), "ms")
		})
	}

	t.Run("rolling update", func(t *testing.T) {
		r := rollingUpdate(t, context.WithoutCancel(ctx), c, ns)
		for _, s := range r {
			report(t, "cluster_rolling_update_"+s.name+"_failed_requests", float64(s.failed), "requests")
			report(t, "cluster_rolling_update_"+s.name+"_requests", float64(s.total), "requests")
			report(t, "cluster_rolling_update_"+s.name+"_longest_outage_ms", ms(s.worst), "ms")
		}
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// report prints one figure for hack/benchreport.
func report(t *testing.T, name string, value float64, unit string) {
	t.Helper()
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, value, unit})
	fmt.Printf("BENCHJSON %s\n", line)
	t.Logf("%s = %.3f %s", name, value, unit)
}
