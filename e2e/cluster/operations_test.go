package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// maxRollingFailures is the share of requests that may fail while every speaker is replaced one by
// one: a BGP request whose connection was routed to a node just withdrawn from the router's ECMP
// route can fail; a layer-2 handover is graceful.
const maxRollingFailures = 0.01

// TestSpeakerRollingUpdate rolls the speaker DaemonSet (`kubectl rollout restart`) while a client
// sends 100 requests a second through a layer-2 Service IP from the segment and another 100 a
// second through a BGP Service IP from behind the router; failed requests are counted and must stay
// under maxRollingFailures of each stream, and no stream may stop for longer than maxFailoverGap.
func TestSpeakerRollingUpdate(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 6*time.Minute)
	ns := newNamespace(t, c, "roll")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	for _, s := range rollingUpdate(t, ctx, c, ns) {
		if s.total < int(s.took/(20*time.Millisecond)) {
			t.Errorf("%s: only %d requests in %v: the client did not keep up 100 a second", s.name, s.total, s.took)
		}
		if float64(s.failed) > maxRollingFailures*float64(s.total) {
			t.Errorf("%s: %d of %d requests failed during the rolling update, want at most %.0f%%", s.name, s.failed, s.total, 100*maxRollingFailures)
		}
		if s.worst > maxFailoverGap {
			t.Errorf("%s: an outage of %v during the rolling update, want at most %v", s.name, s.worst, maxFailoverGap)
		}
	}
}

// streamResult is what a client saw during an operation.
type streamResult struct {
	name          string
	total, failed int
	worst, took   time.Duration
}

// rollingUpdate makes a layer-2 and a BGP Service for the Deployment "web" of ns, starts a client
// for each sending every 10 ms (from the segment client and from behind the router), rolls the
// speaker DaemonSet and waits for the rollout, and returns what each client saw.
func rollingUpdate(t *testing.T, ctx context.Context, c *cluster.Cluster, ns string) []streamResult {
	t.Helper()
	must(t, c.WaitBGPSessions(ctx, len(c.Nodes)*len(c.RouterAddrs())))
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	l2 := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "roll-l2", App: "web", Pool: lab.L2PoolName}, 1)[0]
	bgp := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "roll-bgp", App: "web", Pool: lab.BGPPoolName}, 1)[0]
	must(t, waitRoute(ctx, c, bgp, nodeAddrs(c, true, []string{"n1", "n2", "n3"})))
	_, err := c.WaitCurl(ctx, "l2client", l2, 80, nil)
	must(t, err)
	_, err = c.WaitCurl(ctx, "extclient", bgp, 80, nil)
	must(t, err)

	names := []string{"l2", "bgp"}
	streams := []*lab.Stream{
		c.StartStream("l2client", lab.URL(l2, 80), 10*time.Millisecond, time.Second),
		c.StartStream("extclient", lab.URL(bgp, 80), 10*time.Millisecond, time.Second),
	}
	defer func() {
		for _, s := range streams {
			s.Stop()
		}
	}()
	// Both paths steady before the rollout (a node back from an earlier test may still be syncing
	// its kube-proxy): what fails after start is the rollout's doing.
	for i, s := range streams {
		if err := s.WaitSteady(ctx, 2*time.Second); err != nil {
			t.Fatalf("%s client before the rolling update: %v", names[i], err)
		}
	}
	routes := watchNextHops(ctx, c, bgp)
	start := time.Now()
	_, err = c.Kubectl(ctx, "-n", cluster.Namespace, "rollout", "restart", "daemonset/"+cluster.SpeakerDaemonSet)
	must(t, err)
	_, err = c.Kubectl(ctx, "-n", cluster.Namespace, "rollout", "status", "daemonset/"+cluster.SpeakerDaemonSet, "--timeout=4m")
	must(t, err)
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	// Traffic a little longer: a speaker that just came back may still take IPs over.
	for _, s := range streams {
		_, err := s.WaitSuccessAfter(ctx, time.Now().Add(2*time.Second), nil)
		must(t, err)
	}
	took := time.Since(start)
	var out []streamResult
	hops := routes.stop(start)
	for i, s := range streams {
		samples := lab.From(s.Stop(), start)
		r := streamResult{name: names[i], total: len(samples), failed: lab.Failures(samples), worst: worstGap(samples), took: took}
		t.Logf("%s: rolling update of %v, %d requests, %d failed, longest outage %v%s", r.name, took.Round(time.Millisecond), r.total, r.failed, r.worst, failureWindows(samples, start))
		if r.name == "bgp" && r.failed > 0 {
			t.Logf("the router's next hops for %s:%s", bgp, hops)
		}
		out = append(out, r)
	}
	return out
}

// failureWindows describes the runs of failed requests: when they started (from start), how many,
// and their errors.
func failureWindows(samples []lab.Sample, start time.Time) string {
	var b strings.Builder
	windows := 0
	for i := 0; i < len(samples); {
		if samples[i].Err == nil {
			i++
			continue
		}
		if windows++; windows > 30 {
			fmt.Fprintf(&b, "\n  and more failures from +%v", samples[i].Start.Sub(start).Round(time.Millisecond))
			break
		}
		j := i
		errs := map[string]int{}
		for j < len(samples) && samples[j].Err != nil {
			e := samples[j].Err.Error()
			if k := strings.LastIndex(e, ": "); k >= 0 {
				e = e[k+2:]
			}
			errs[e]++
			j++
		}
		fmt.Fprintf(&b, "\n  from +%v: %d failed %v", samples[i].Start.Sub(start).Round(time.Millisecond), j-i, errs)
		i = j
	}
	return b.String()
}

// hopLog records the router's kernel next hops for a prefix every 20 ms.
type hopLog struct {
	mu     sync.Mutex
	at     []time.Time
	hops   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchNextHops(ctx context.Context, c *cluster.Cluster, ip netip.Addr) *hopLog {
	ctx, cancel := context.WithCancel(ctx)
	h := &hopLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			got, err := c.Router.KernelNextHops(ctx, lab.HostPrefix(ip))
			cur := fmt.Sprint(got)
			if err != nil {
				cur = "error: " + err.Error()
			}
			h.mu.Lock()
			if len(h.hops) == 0 || h.hops[len(h.hops)-1] != cur {
				h.at, h.hops = append(h.at, time.Now()), append(h.hops, cur)
			}
			h.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// stop ends the recording and describes the changes, times from start.
func (h *hopLog) stop(start time.Time) string {
	h.cancel()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for i := range h.hops {
		fmt.Fprintf(&b, "\n  +%v %s", h.at[i].Sub(start).Round(time.Millisecond), h.hops[i])
	}
	return b.String()
}

// worstGap is the longest time between two successful replies in which requests failed.
func worstGap(samples []lab.Sample) time.Duration {
	var worst time.Duration
	var lastOK time.Time
	failed := false
	for _, s := range samples {
		if s.Err != nil {
			failed = true
			continue
		}
		if failed && !lastOK.IsZero() && s.End.Sub(lastOK) > worst {
			worst = s.End.Sub(lastOK)
		}
		failed = false
		if s.End.After(lastOK) {
			lastOK = s.End
		}
	}
	return worst
}

// ownerLog records the owner of a Service's layer-2 IP every 20 ms (from ServiceL2Status) and
// returns the sequence of distinct owners seen ("" while none or several).
type ownerLog struct {
	mu     sync.Mutex
	owners []string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchOwner(ctx context.Context, c *cluster.Cluster, ns, name string) *ownerLog {
	ctx, cancel := context.WithCancel(ctx)
	o := &ownerLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			owners, err := c.L2Owners(ctx, ns, name)
			if err == nil {
				cur := ""
				if len(owners) == 1 {
					cur = owners[0]
				}
				o.mu.Lock()
				if len(o.owners) == 0 || o.owners[len(o.owners)-1] != cur {
					o.owners = append(o.owners, cur)
				}
				o.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return o
}

// stop ends the recording and returns the owners seen, gaps ("") removed.
func (o *ownerLog) stop() []string {
	o.cancel()
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, x := range o.owners {
		if x != "" && (len(out) == 0 || out[len(out)-1] != x) {
			out = append(out, x)
		}
	}
	return out
}

// flapped reports whether the sequence of owners comes back to a node it had left.
func flapped(owners []string) bool {
	for i, x := range owners {
		if slices.Contains(owners[:max(i-1, 0)], x) {
			return true
		}
	}
	return false
}

// TestExcludeLabelAndDrainMoveIPsWithoutFlapping: labelling the owner of a layer-2 IP with
// node.kubernetes.io/exclude-from-external-load-balancers moves the IP once to another node, and
// removing the label moves it at most once more; draining (kubectl drain) the owner of an
// externalTrafficPolicy Local IP moves the IP to a node with a ready pod and never back to the
// drained node; a cordon alone moves nothing. In each case the IP never returns to a node it left
// and the segment client reaches it at the end.
func TestExcludeLabelAndDrainMoveIPsWithoutFlapping(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 6*time.Minute)
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	ns := newNamespace(t, c, "drain")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "web", App: "web", Pool: lab.L2PoolName}, 1)[0]
	owner, err := waitL2Owner(ctx, c, ns, "web", "")
	must(t, err)

	const exclude = "node.kubernetes.io/exclude-from-external-load-balancers"
	label := func(node string, on bool) {
		t.Helper()
		arg := exclude + "="
		if !on {
			arg = exclude + "-"
		}
		_, err := c.Kubectl(ctx, "label", "node", node, arg)
		must(t, err)
	}
	t.Cleanup(func() { _, _ = c.Kubectl(context.Background(), "label", "node", owner, exclude+"-") })
	rec := watchOwner(ctx, c, ns, "web")
	label(owner, true)
	next, err := waitL2Owner(ctx, c, ns, "web", owner)
	must(t, err)
	// The excluded node's speaker deletes its ServiceL2Status while the new owner's speaker writes
	// its own: both can exist for a moment (CI saw [n2 n3] right after n2's appeared).
	must(t, waitOnlyOwner(ctx, c, ns, "web", next, 5*time.Second))
	steady(t, ctx, c, ns, "web", next, 3*time.Second)
	label(owner, false)
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	final := settledOwner(t, ctx, c, ns, "web", ip)
	steady(t, ctx, c, ns, "web", final, 3*time.Second)
	seen := rec.stop()
	t.Logf("exclude label on %s and off again: owners %v", owner, seen)
	// The IP leaves the excluded node once, and may come back to it once the label is gone
	// (it wins the election again), but moves nowhere else.
	if !slices.Equal(seen, []string{owner, next}) && !slices.Equal(seen, []string{owner, next, owner}) {
		t.Errorf("owners of %s while %s was excluded and back: %v; want [%s %s] or [%s %s %s]", ip, owner, seen, owner, next, owner, next, owner)
	}

	// Cordon and drain with externalTrafficPolicy Local: two pods, on two nodes.
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "loc", Replicas: 2, OnePerNode: true})
	local := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "loc", App: "loc", Pool: lab.L2PoolName, Local: true}, 1)[0]
	podNodes, err := c.ReadyPodNodes(ctx, ns, "loc")
	must(t, err)
	lowner := settledOwner(t, ctx, c, ns, "loc", local)
	if !slices.Contains(podNodes, lowner) {
		t.Fatalf("Local IP %s owned by %s, which runs no pod of it (pods on %v)", local, lowner, podNodes)
	}
	rec = watchOwner(ctx, c, ns, "loc")
	// A cordon alone moves nothing, as long as the pods stay where they are: a pod removed by
	// something outside the test (logged with its reason when the test fails) changes the
	// candidates of a Local IP, and then a move is right; the cordon is then tried again on the
	// new owner.
	for attempt := 0; ; attempt++ {
		cordoned := lowner
		t.Cleanup(func() { _ = setUnschedulable(context.Background(), c, cordoned, false) })
		must(t, setUnschedulable(ctx, c, cordoned, true))
		now := steadyWhilePodsStay(t, ctx, c, ns, "loc", cordoned, podNodes, 2*time.Second)
		if now == cordoned {
			break
		}
		if attempt == 2 {
			t.Fatalf("the pods of %s/loc kept moving under the test", ns)
		}
		must(t, setUnschedulable(ctx, c, cordoned, false))
		podNodes, err = c.WaitReadyPods(ctx, ns, "loc", 2)
		must(t, err)
		lowner = settledOwner(t, ctx, c, ns, "loc", local)
		rec.stop()
		rec = watchOwner(ctx, c, ns, "loc")
	}
	_, err = c.Kubectl(ctx, "drain", lowner, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=2m")
	must(t, err)
	after, err := c.WaitReadyPods(ctx, ns, "loc", 2)
	must(t, err)
	if slices.Contains(after, lowner) {
		t.Fatalf("a pod still runs on the drained node %s: %v", lowner, after)
	}
	// The owner follows the EndpointSlices, which lag the pods: it may pass through a node whose
	// pod was ready first before the election over every ready node settles.
	must(t, c.WaitEndpointNodes(ctx, ns, "loc", after))
	moved := settledOwner(t, ctx, c, ns, "loc", local)
	if !slices.Contains(after, moved) {
		t.Errorf("after the drain %s is owned by %s, which runs no pod of it (pods on %v)", local, moved, after)
	}
	_, err = c.WaitCurl(ctx, "l2client", local, 80, func(b string) bool { return slices.Contains(after, b) })
	must(t, err)
	steady(t, ctx, c, ns, "loc", moved, 3*time.Second)
	seen = rec.stop()
	t.Logf("drain of %s: pods %v -> %v, owners %v", lowner, podNodes, after, seen)
	if len(seen) < 2 || seen[0] != lowner || flapped(seen) || slices.Contains(seen[1:], lowner) {
		t.Errorf("owners of %s while %s was drained: %v; want %s first, then nodes with pods, never back", local, lowner, seen, lowner)
	}
}

// steadyWhilePodsStay checks that owner stays the owner of the layer-2 IP of ns/name for d, unless
// the nodes with ready pods of app name change from podNodes meanwhile: then it logs the change,
// waits for the new owner to be one of the new pod nodes and returns it.
func steadyWhilePodsStay(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, name, owner string, podNodes []string, d time.Duration) string {
	t.Helper()
	owners, changed := ownerChange(t, ctx, c, ns, name, owner, d)
	if !changed {
		return owner
	}
	now, err := c.ReadyPodNodes(ctx, ns, name)
	must(t, err)
	if slices.Equal(slices.Sorted(slices.Values(now)), slices.Sorted(slices.Values(podNodes))) {
		t.Fatalf("%s/%s: owners %v, want %s to stay the owner (its pods stayed on %v)", ns, name, owners, owner, podNodes)
	}
	t.Logf("%s/%s: the pods moved from %v to %v under the test (not by it); the owner follows them", ns, name, podNodes, now)
	next, err := waitL2Owner(ctx, c, ns, name, owner)
	must(t, err)
	return next
}

// steady checks that the owner stays owner for d.
func steady(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, name, owner string, d time.Duration) {
	t.Helper()
	if owners, changed := ownerChange(t, ctx, c, ns, name, owner, d); changed {
		t.Fatalf("%s/%s: owners %v, want %s to stay the owner", ns, name, owners, owner)
	}
}

// ownerChange reads the layer-2 owners of ns/name every 50 ms for d and returns the first that
// are not exactly owner, and true; false when owner stayed the only owner.
func ownerChange(t *testing.T, ctx context.Context, c *cluster.Cluster, ns, name, owner string, d time.Duration) ([]string, bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		owners, err := c.L2Owners(ctx, ns, name)
		must(t, err)
		if len(owners) != 1 || owners[0] != owner {
			return owners, true
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, false
}

// TestManyRoutedVethsPerNode gives every node 300 pods' worth of routed veths (made by the CNI ptp
// plugin, each with its host end in the node and the pod end in a namespace of the node, on top
// of the real pods') and checks Herald keeps working: the speakers stay members of one cluster,
// a new layer-2 Service gets exactly one responder, its IP fails over when the owner's speaker is
// killed, and comes back to it once the speaker, restarted among all those veths, is eligible again.
func TestManyRoutedVethsPerNode(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 8*time.Minute)
	const perNode = 300
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.AddRoutedVeths(ctx, perNode)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			_ = n.RemoveRoutedVeths(context.Background())
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	for _, n := range c.Nodes {
		out, err := c.Exec(ctx, n.Name, "ip", "-o", "link", "show", "type", "veth")
		must(t, err)
		if got := strings.Count(out, "\n"); got < perNode {
			t.Fatalf("node %s has %d veths, want at least %d", n.Name, got, perNode)
		}
	}
	must(t, c.WaitSpeakersConverged(ctx, 2*time.Minute))
	ns := newNamespace(t, c, "veths")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	for _, v4 := range []bool{true, false} {
		ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "web-" + strings.ToLower(famName(v4)), App: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{family(v4)}}, 1)[0]
		owner := settledOwner(t, ctx, c, ns, "web-"+strings.ToLower(famName(v4)), ip)
		gap, next := l2Failover(t, ctx, c, ns, "web-"+strings.ToLower(famName(v4)), ip, owner, "speaker killed -9", func() error { return c.KillSpeaker(owner) })
		t.Logf("%d veths per node: %s owned by %s, after kill -9 by %s (gap %v)", perNode, ip, owner, next, gap)
		// The election is deterministic: once the restarted speaker, which started on a node with
		// all those veths, is eligible again, it wins the IP back.
		if final := settledOwner(t, ctx, c, ns, "web-"+strings.ToLower(famName(v4)), ip); final != owner {
			pod, err := c.SpeakerPod(ctx, owner)
			must(t, err)
			logs, _ := c.Kubectl(ctx, "logs", "-n", cluster.Namespace, pod.Name, "--tail", "300")
			var why []string
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, "interfaces") || strings.Contains(line, "metadata") {
					why = append(why, line)
				}
			}
			t.Errorf("after the speaker of %s restarted among %d veths, %s stays on %s: the restarted speaker is not eligible for layer 2; the speaker says:\n%s",
				owner, perNode, ip, final, strings.Join(why[max(0, len(why)-5):], "\n"))
		}
	}
}

// TestSpeakerUnderCPULimitDuringEndpointStorm: while EndpointSlices of 20 Services change 2000
// times in about half a minute, the speakers, under the CPU limit of the shipped manifests, keep
// the layer-2 IP of another Service answered (a client sending every 10 ms sees no outage longer
// than maxFailoverGap), stay one memberlist cluster, are not restarted, and give a Service made
// right after the storm its IP within 10 s.
func TestSpeakerUnderCPULimitDuringEndpointStorm(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 6*time.Minute)
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	restarts := func() int32 {
		var pods corev1.PodList
		must(t, c.Client.List(ctx, &pods, client.InNamespace(cluster.Namespace), client.MatchingLabels{"app.kubernetes.io/component": "speaker"}))
		var n int32
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				n += s.RestartCount
			}
			if lim := p.Spec.Containers[0].Resources.Limits.Cpu(); lim.IsZero() {
				t.Fatalf("speaker pod %s has no CPU limit", p.Name)
			}
		}
		return n
	}
	before := restarts()
	ns := newNamespace(t, c, "storm")
	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	ip := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "web", App: "web", Pool: lab.L2PoolName}, 1)[0]
	settledOwner(t, ctx, c, ns, "web", ip)
	throttledBefore, err := c.SpeakerThrottling()
	must(t, err)

	s := c.StartStream("l2client", lab.URL(ip, 80), 10*time.Millisecond, time.Second)
	defer s.Stop()
	start := time.Now()
	updates, err := c.EndpointStorm(ctx, ns, 20, 2000)
	must(t, err)
	took := time.Since(start)
	must(t, c.WaitSpeakersConverged(ctx, time.Minute))
	samples := s.Stop()
	throttledAfter, err := c.SpeakerThrottling()
	must(t, err)
	t.Logf("%d EndpointSlice writes in %v; client: %d requests, %d failed, longest outage %v; speakers throttled %v during the storm",
		updates, took.Round(time.Millisecond), len(samples), lab.Failures(samples), worstGap(samples), throttledAfter-throttledBefore)
	if g := worstGap(samples); g > maxFailoverGap {
		t.Errorf("an outage of %v of %s during the storm, want at most %v", g, ip, maxFailoverGap)
	}
	if after := restarts(); after != before {
		t.Errorf("speaker containers restarted %d times during the storm", after-before)
	}
	newStart := time.Now()
	ctx10, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ip2 := lbService(t, ctx10, c, cluster.LBService{Namespace: ns, Name: "after", App: "web", Pool: lab.L2PoolName}, 1)[0]
	if _, err := waitL2Owner(ctx10, c, ns, "after", ""); err != nil {
		t.Fatalf("no owner for a new Service's %s within 10 s of the storm: %v", ip2, err)
	}
	if _, err := c.WaitCurl(ctx10, "l2client", ip2, 80, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("a new Service answered %v after the storm", time.Since(newStart).Round(time.Millisecond))
}
