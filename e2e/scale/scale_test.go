package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// Sizes of a run other than the two standard ones, for looking into a figure (for example
// `go test ./e2e/scale -run TestBenchScaleLab -args -scale.nodes=20 -scale.ips=1000 -scale.services=0`).
var (
	flagNodes = flag.Int("scale.nodes", 0, "lab nodes (0: 5, or 20 with HERALD_BENCH=1)")
	flagIPs   = flag.Int("scale.ips", 0, "layer-2 IPs (0: 100, or 1,000 with HERALD_BENCH=1)")
	flagKills = flag.Int("scale.kills", 0, "speakers killed one after the other (0: 1, or 3 with HERALD_BENCH=1)")
	// A Linux client re-asks for a neighbour about once a second (RETRANS_TIMER); asking every 10ms
	// for each of the ~50 IPs of a victim is 5,000 multicast solicitations a second that every
	// node's speaker receives and parses, CPU the speakers then lack in the very window measured.
	// Gratuitous announcements are timed as they arrive whatever the interval.
	flagProbeInterval = flag.Duration("scale.probe-interval", 100*time.Millisecond, "time between the failover probe's rounds of solicitations")
	flagServices      = flag.Int("scale.services", -1, "Services for the memory figure (-1: 500, or 10,000 with HERALD_BENCH=1; 0: no memory figure)")
	flagLogLevel      = flag.String("scale.log-level", "info", "the speakers' log level (debug adds memberlist's suspicions to the failover timeline)")
)

// speakerCPULimit is the speaker's CPU limit in the DaemonSet (manifests/speaker.yaml), in
// millicores.
const speakerCPULimit = 500

// l2Range holds the layer-2 IPs of the scale Services: on the lab's segment (2001:db8:1::/64),
// apart from the default pool's range.
const l2Range = "2001:db8:1::1:0/112"

// TestBenchScaleLab runs the lab with more nodes and layer-2 IPs than the three-node lab: real
// speakers in network namespaces (each under the DaemonSet's 500m CPU limit when this machine has
// cgroup v1 CPU control), the real API server and controller, IPv6 Services whose IPs are on the
// segment. It kills the speaker of a node with SIGKILL and measures, for every IP that node owned,
// the time from the kill until another node answers for it (its gratuitous Neighbor Advertisement,
// or an answer to the Solicitations the segment client sends every -scale.probe-interval), and
// checks that the node answering is the one its ServiceL2Status names, alone. It counts the live
// speakers declared dead in three phases (start, the burst of Services, the kills and restarts).
// Then it grows the Services and reads the speakers' resident memory. HERALD_SCALE_KEEP_LOGS=dir
// keeps the processes' logs.
//
// make test runs 5 nodes, 100 IPs, one kill and 500 Services for the memory; HERALD_BENCH=1 (make
// bench) runs 20 nodes, 1,000 IPs, three kills and 10,000 Services, and prints BENCHJSON lines.
func TestBenchScaleLab(t *testing.T) {
	lab.RequireMachine(t)
	bench := os.Getenv("HERALD_BENCH") == "1"
	nodes, ips, kills, services := 5, 100, 1, 500
	if bench {
		nodes, ips, kills, services = 20, 1000, 3, 10000
	}
	for _, f := range []struct {
		v   *int
		set int
	}{{&nodes, *flagNodes}, {&ips, *flagIPs}, {&kills, *flagKills}} {
		if f.set > 0 {
			*f.v = f.set
		}
	}
	if *flagServices >= 0 {
		services = *flagServices
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Minute)
	defer cancel()

	topo, err := lab.GenerateTopology(nodes)
	must(t, err)
	path := filepath.Join(t.TempDir(), "topology.clab.yaml")
	must(t, os.WriteFile(path, topo, 0o644))
	plan := lab.DefaultPlan()
	plan.L2Pool = append(plan.L2Pool, l2Range)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l, err := lab.Start(ctx, lab.Options{Topology: path, Plan: &plan, Log: log, LogLevel: *flagLogLevel})
	must(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab logs:\n%s", l.LogTails(20))
		}
		if d := os.Getenv("HERALD_SCALE_KEEP_LOGS"); d != "" {
			if err := keepLogs(l.RunDir, d); err != nil {
				t.Errorf("keeping the lab's logs: %v", err)
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("removing the lab: %v", err)
		}
	})
	must(t, l.ApplyConfig(ctx))
	if err := lab.CgroupCPUAvailable(); err == nil {
		for _, n := range l.Nodes {
			must(t, l.LimitSpeakerCPU(n.Name, speakerCPULimit))
		}
	} else {
		t.Logf("speakers run without a CPU limit: %v", err)
	}
	must(t, waitConverged(ctx, l))
	converged, cpuConverged := time.Now(), cpuNow(l, "")
	bulk := bulkClient(t, l)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}
	must(t, l.Client.Create(ctx, ns))

	begin := time.Now()
	must(t, createServices(ctx, l, bulk, 0, ips))
	must(t, waitAssigned(ctx, l, ips))
	owners, err := waitOwners(ctx, l, ips, "")
	must(t, err)
	t.Logf("%d nodes: %d layer-2 Services assigned and announced in %s", nodes, ips, time.Since(begin).Round(time.Millisecond))

	macs := map[string]string{}
	for _, n := range l.Nodes {
		mac, err := l.MAC(ctx, n.Name)
		must(t, err)
		macs[strings.ToLower(mac)] = n.Name
	}
	t.Logf("CPU from the speakers' convergence to the Services' announcement: %s", cpuNow(l, "").since(cpuConverged))
	probe := buildProbe(t, l)
	var gaps []time.Duration
	killedAt := map[string][]time.Time{}
	var firstKill time.Time
	for k := range kills {
		victim := l.Nodes[(1+k*(nodes/kills+1))%nodes].Name
		fo := failover(t, ctx, l, probe, owners, victim, macs)
		killedAt[victim] = append(killedAt[victim], fo.killed)
		if firstKill.IsZero() {
			firstKill = fo.killed
		}
		moved := fo.gaps()
		gaps = append(gaps, moved...)
		slices.Sort(moved)
		t.Logf("kill %d: %s owned %d IPs; each answered from its new owner after %s (median), %s (worst)",
			k+1, victim, len(moved), moved[len(moved)/2].Round(time.Millisecond), moved[len(moved)-1].Round(time.Millisecond))
		t.Logf("kill %d, timeline:\n%s", k+1, fo.timeline(l))
		must(t, l.StartSpeaker(victim))
		must(t, waitConverged(ctx, l))
		if owners, err = waitOwners(ctx, l, ips, ""); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(gaps)
	medianGap, worstGap := gaps[len(gaps)/2], gaps[len(gaps)-1]
	t.Logf("layer-2 failover at %d nodes and %d IPs: %d IPs moved, median %s, worst %s", nodes, ips, len(gaps), medianGap, worstGap)
	// A live speaker declared dead (its CPU starved past the suspicion timeout) moves IPs for
	// nothing, and a failover measured meanwhile measures that turmoil too: say how often it
	// happened (a count, not a goal asserted here; see the members package for that).
	// In three phases: the start of 20 speakers at once (with the API server and etcd), the burst
	// of Services after it, and the kills. Only the last is steady state; on a small machine the
	// first two saturate every core (see bench/NOTES.md).
	phases := []string{"start", "burst", "kills"}
	deaths := falseDeaths(l, killedAt, []time.Time{converged, firstKill})
	for i, d := range deaths {
		t.Logf("membership, %s: %d live speakers declared dead by another (false deaths) of %d declarations%s",
			phases[i], d.falseN, d.all, strings.Join(append([]string{""}, d.sample...), "\n  "))
	}
	// The goal (median at most 500ms) is judged in bench/REPORT.md, not asserted here: a timed
	// assertion fails on a loaded machine without telling anything about Herald.
	if bench {
		benchLine(fmt.Sprintf("scale_l2_failover_%d_nodes_median_ms", nodes), ms(medianGap), "ms")
		benchLine(fmt.Sprintf("scale_l2_failover_%d_nodes_worst_ms", nodes), ms(worstGap), "ms")
		for i, d := range deaths {
			benchLine(fmt.Sprintf("scale_%d_nodes_false_deaths_%s", nodes, phases[i]), float64(d.falseN), "events")
		}
	}

	if services <= ips {
		return
	}
	// Memory: every speaker caches every Service, EndpointSlice and ServiceL2Status.
	begin = time.Now()
	must(t, createServices(ctx, l, bulk, ips, services))
	must(t, waitAssigned(ctx, l, services))
	must(t, waitAnnounced(ctx, l, services))
	t.Logf("%d Services assigned and announced in %s", services, time.Since(begin).Round(time.Millisecond))
	var rss, hwm []float64
	for _, n := range l.Nodes {
		p := l.Proc("speaker-" + n.Name)
		r, h, err := memory(p.PID())
		must(t, err)
		rss, hwm = append(rss, r), append(hwm, h)
	}
	slices.Sort(rss)
	slices.Sort(hwm)
	t.Logf("speaker memory at %d Services: resident %.1f MiB (median), %.1f MiB (most); peak %.1f MiB (most)",
		services, rss[len(rss)/2], rss[len(rss)-1], hwm[len(hwm)-1])
	// The goal (at most 80 MiB, speaker_rss_N_mib) is measured on one speaker by
	// speaker/agent's TestBenchSpeakerRSS; these are the lab's, under other names.
	if bench {
		benchLine(fmt.Sprintf("scale_lab_speaker_rss_%d_mib", services), rss[len(rss)-1], "MiB")
		benchLine(fmt.Sprintf("scale_lab_speaker_rss_peak_%d_mib", services), hwm[len(hwm)-1], "MiB")
	}
}

// failover kills the speaker of victim while the segment client asks for every IP it owns, and
// returns, for each, when after the kill another node answered for it, with what the speakers'
// CPU did meanwhile. It checks that this is the node the Service's ServiceL2Status then names, and
// that no other node answered.
func failover(t *testing.T, ctx context.Context, l *lab.Lab, probe string, owners map[string]string, victim string, macs map[string]string) *failoverRun {
	t.Helper()
	var ipsOf []string
	svcOf := map[string]string{}
	for svc, ip := range ipsByService(t, ctx, l) {
		if owners[svc] == victim {
			ipsOf = append(ipsOf, ip)
			svcOf[ip] = svc
		}
	}
	if len(ipsOf) == 0 {
		t.Fatalf("%s owns no IP", victim)
	}
	var victimMAC string
	for mac, n := range macs {
		if n == victim {
			victimMAC = mac
		}
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS("l2client"), probe, "-i", l.Plan.SegmentIface,
		"-interval", flagProbeInterval.String(), "-timeout", "30s", "-old", victimMAC}, ipsOf...)...)
	out, err := cmd.StdoutPipe()
	must(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	answers := make(chan answer, 1<<16)
	go func() {
		defer close(answers)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := parseAnswer(sc.Text()); ok {
				answers <- a
			}
		}
	}()
	// The victim answers for all of its IPs before it is killed: the probe works and they are its.
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < len(ipsOf) {
		select {
		case a, ok := <-answers:
			if !ok {
				t.Fatalf("the probe ended before the kill: %v: %s", cmd.Wait(), stderr.String())
			}
			if a.mac != victimMAC {
				t.Fatalf("%s was answered by %s (%s) before %s was killed", a.ip, a.mac, macs[a.mac], victim)
			}
			seen[a.ip] = true
		case <-deadline:
			t.Fatalf("%s did not answer for all of its %d IPs within 30s (%d did)", victim, len(ipsOf), len(seen))
		}
	}
	cpuBefore := cpuNow(l, victim)
	killed := time.Now()
	must(t, l.StopSpeaker(victim, syscall.SIGKILL))
	first := map[string]answer{}
	macsOf := map[string]map[string]bool{}
	for a := range answers {
		if a.mac == victimMAC {
			// Answers read up to 100ms late may have been sent before the kill.
			if a.at.After(killed.Add(100 * time.Millisecond)) {
				t.Errorf("%s answered for %s %s after its speaker was killed", victim, a.ip, a.at.Sub(killed))
			}
			continue
		}
		if _, ok := first[a.ip]; !ok {
			first[a.ip] = a
		}
		if macsOf[a.ip] == nil {
			macsOf[a.ip] = map[string]bool{}
		}
		macsOf[a.ip][a.mac] = true
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probing the IPs of %s: %v: %s", victim, err, stderr.String())
	}
	run := &failoverRun{victim: victim, killed: killed, cpu: cpuNow(l, victim).since(cpuBefore), macs: macs}
	// The new owners the status objects name (the dead node's own are left until swept).
	now, err := waitOwners(ctx, l, len(owners), victim)
	must(t, err)
	// Then each moved IP is answered by one node only, for a while.
	check := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS("l2client"), probe, "-i", l.Plan.SegmentIface,
		"-interval", "50ms", "-for", "1s"}, ipsOf...)...)
	lines, err := check.Output()
	if err != nil {
		t.Fatalf("probing the moved IPs: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		if a, ok := parseAnswer(line); ok {
			if macsOf[a.ip] == nil {
				macsOf[a.ip] = map[string]bool{}
			}
			macsOf[a.ip][a.mac] = true
		}
	}
	for _, ip := range ipsOf {
		a, ok := first[ip]
		if !ok {
			t.Errorf("nobody answered for %s after %s was killed", ip, victim)
			continue
		}
		if len(macsOf[ip]) != 1 {
			t.Errorf("%s was answered by several nodes after %s was killed: %v", ip, victim, macsOf[ip])
		}
		if want := now[svcOf[ip]]; macs[a.mac] != want {
			t.Errorf("%s is answered by %s (%s), but its ServiceL2Status names %s", ip, macs[a.mac], a.mac, want)
		}
		run.answers = append(run.answers, a)
	}
	return run
}

// buildProbe builds e2e/cmd/ndpprobe for the test.
func buildProbe(t *testing.T, l *lab.Lab) string {
	t.Helper()
	return testenv.Build(t, "ndpprobe", "./e2e/cmd/ndpprobe")
}

// keepLogs copies the lab's process logs from its run folder to dir (HERALD_SCALE_KEEP_LOGS=dir),
// for reading a run's membership events after the lab is gone.
func keepLogs(runDir, dir string) error {
	logs, err := filepath.Glob(filepath.Join(runDir, "*.log"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// bulkClient is a client for creating thousands of objects quickly.
func bulkClient(t *testing.T, l *lab.Lab) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(l.Env.Config)
	cfg.QPS, cfg.Burst = 2000, 2000
	c, err := client.New(cfg, client.Options{Scheme: l.Env.Scheme})
	must(t, err)
	return c
}

func serviceName(i int) string { return fmt.Sprintf("s%05d", i) }

// createServices creates Services from..to-1 in namespace scale: IPv6, from the layer-2 pool,
// without node ports (the lab's stand-in for kube-proxy has nothing to do), each with one ready
// endpoint on the first node, so every node may announce it.
func createServices(ctx context.Context, l *lab.Lab, c client.Client, from, to int) error {
	first := l.Nodes[0]
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				name := serviceName(i)
				single := corev1.IPFamilyPolicySingleStack
				s := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: "scale", Name: name, Annotations: map[string]string{v1beta1.AnnotationAddressPool: lab.L2PoolName}},
					Spec: corev1.ServiceSpec{
						Type: corev1.ServiceTypeLoadBalancer, IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}, IPFamilyPolicy: &single,
						AllocateLoadBalancerNodePorts: ptr.To(false), Selector: map[string]string{"app": name},
						Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(l.Plan.BackendPort)}},
					},
				}
				if err := create(ctx, c, s); err != nil {
					errs <- fmt.Errorf("creating Service %s: %w", name, err)
					return
				}
				es := &discoveryv1.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Namespace: "scale", Name: name + "-ipv6", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
					AddressType: discoveryv1.AddressTypeIPv6,
					Endpoints: []discoveryv1.Endpoint{{Addresses: []string{first.V6.String()}, NodeName: ptr.To(first.Name),
						Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
				}
				if err := create(ctx, c, es); err != nil {
					errs <- fmt.Errorf("creating EndpointSlice %s: %w", es.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// create creates obj, again when the API server answers that it timed out (a loaded machine): an
// object that was created after all is then found to exist.
func create(ctx context.Context, c client.Client, obj client.Object) error {
	for try := 0; ; try++ {
		err := c.Create(ctx, obj)
		switch {
		case err == nil:
			return nil
		case try > 0 && apierrors.IsAlreadyExists(err):
			return nil
		case try < 5 && (apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err)):
			obj.SetResourceVersion("")
			continue
		default:
			return err
		}
	}
}

// ipsByService returns the IP of every scale Service that has one.
func ipsByService(t *testing.T, ctx context.Context, l *lab.Lab) map[string]string {
	t.Helper()
	var list corev1.ServiceList
	must(t, l.Client.List(ctx, &list, client.InNamespace("scale")))
	out := map[string]string{}
	for _, s := range list.Items {
		if ips := lab.IngressIPs(&s); len(ips) > 0 {
			out[s.Name] = ips[0].String()
		}
	}
	return out
}

// waitAssigned waits until n scale Services have an IP.
func waitAssigned(ctx context.Context, l *lab.Lab, n int) error {
	var have int
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		var list corev1.ServiceList
		if err := l.Client.List(ctx, &list, client.InNamespace("scale")); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		have = 0
		for _, s := range list.Items {
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				have++
			}
		}
		return have >= n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d Services to get an IP (%d have): %w", n, have, err)
	}
	return nil
}

// waitOwners waits until each of n scale Services has exactly one ServiceL2Status naming a node
// other than dead, and returns that node by Service.
func waitOwners(ctx context.Context, l *lab.Lab, n int, dead string) (map[string]string, error) {
	var owners map[string]string
	bad := 0
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		var list v1beta1.ServiceL2StatusList
		if err := l.Client.List(ctx, &list, client.InNamespace(lab.HeraldNamespace)); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		nodes := map[string][]string{}
		for _, st := range list.Items {
			if st.Status.ServiceNamespace == "scale" && st.Status.Node != dead {
				nodes[st.Status.ServiceName] = append(nodes[st.Status.ServiceName], st.Status.Node)
			}
		}
		owners, bad = map[string]string{}, 0
		for svc, ns := range nodes {
			if len(ns) == 1 {
				owners[svc] = ns[0]
			} else {
				bad++
			}
		}
		return len(owners) == n && bad == 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for one owner for each of %d Services (%d have one, %d several): %w", n, len(owners), bad, err)
	}
	return owners, nil
}

// waitAnnounced waits until the speakers answer, between them, for n layer-2 IPv6 addresses
// (herald_layer2_owned_ips on their metrics endpoints).
func waitAnnounced(ctx context.Context, l *lab.Lab, n int) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	var sum float64
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		sum = 0
		for _, node := range l.Nodes {
			v, err := metric(hc, node, `herald_layer2_owned_ips{family="ipv6",interface="eth0"}`)
			if err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			sum += v
		}
		return int(sum) >= n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the speakers to answer for %d IPv6 addresses (%v do): %w", n, sum, err)
	}
	return nil
}

// waitConverged waits until every speaker counts all of them alive and says it is ready.
func waitConverged(ctx context.Context, l *lab.Lab) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	var last string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, node := range l.Nodes {
			members, err := metric(hc, node, "herald_speaker_members")
			if err != nil {
				last = err.Error()
				return false, nil
			}
			ready, _ := metric(hc, node, "herald_speaker_ready")
			if int(members) != len(l.Nodes) || ready != 1 {
				last = fmt.Sprintf("%s counts %v members, ready %v", node.Name, members, ready)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("speakers did not converge: %s: %w", last, err)
	}
	return nil
}

// metric reads one series from a speaker's metrics endpoint.
func metric(hc *http.Client, node lab.NodeInfo, series string) (float64, error) {
	resp, err := hc.Get("http://" + net.JoinHostPort(node.V4.String(), "7472") + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s does not report %s", node.Name, series)
}

// memory returns the resident and peak resident memory of a process, in MiB.
func memory(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	name := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Name:":
			name = f[1]
		case "VmRSS:", "VmHWM:":
			kb, _ := strconv.ParseFloat(f[1], 64)
			if f[0] == "VmRSS:" {
				rss = kb / 1024
			} else {
				hwm = kb / 1024
			}
		}
	}
	if name != "herald-speaker" {
		return 0, 0, fmt.Errorf("process %d is %q, not herald-speaker", pid, name)
	}
	return rss, hwm, nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchLine prints one figure for hack/benchreport.
func benchLine(name string, v float64, unit string) {
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, math.Round(v*10) / 10, unit})
	fmt.Printf("BENCHJSON %s\n", line)
}
