package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
)

// speakerCPULimit is the speaker's CPU limit in the DaemonSet (manifests/speaker.yaml), in
// millicores.
const speakerCPULimit = 500

// TestBenchSpeakerStorm runs every speaker under the DaemonSet's CPU limit (a CFS quota of its
// own process, in a cgroup) and sends a burst of EndpointSlice updates through the real API
// server, each one a change the speakers must read (an endpoint's readiness flips; which nodes
// serve each Service does not change, so no IP has a reason to move). It checks that no live
// speaker is declared dead ("member gone" in any speaker's log), that no layer-2 IP changes owner
// ("taking over" in any speaker's log) and that a client's requests to an IP are all answered,
// then that the speakers caught up (a last update moves a Local Service's only endpoint to another
// node: the time until that node answers for its IP). Then, during more bursts, it kills the
// owner of an IP with SIGKILL: the IP must fail over within the 0.5 s target (median).
//
// make test runs a small burst (300 updates, one kill); HERALD_BENCH=1 (make bench) runs 2,000
// updates and three kills and prints BENCHJSON lines.
func TestBenchSpeakerStorm(t *testing.T) {
	if err := lab.CgroupCPUAvailable(); err != nil {
		t.Skip(err)
	}
	l := requireHerald(t)
	bench := os.Getenv("HERALD_BENCH") == "1"
	// background EndpointSlices of other Services make each recomputation cost what it does in a
	// cluster with a few hundred Services.
	updates, kills, background := 300, 1, 500
	if bench {
		updates, kills, background = 2000, 3, 1500
	}
	ctx := deadline(t, 20*time.Minute)
	ns := newNamespace(t, l, "storm")

	// Six layer-2 Services (policy Cluster, endpoints on every node), their IPs spread over the
	// nodes, and one Local Service whose endpoint the last update moves.
	names := []string{"web", "s1", "s2", "s3", "s4", "s5"}
	var watched []netip.Addr
	for _, name := range names {
		watched = append(watched, service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: name, Pool: lab.L2PoolName}, 1)[0])
	}
	first, second := l.Nodes[0].Name, l.Nodes[1].Name
	marker := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "marker", Pool: lab.L2PoolName, Local: true,
		EndpointNodes: []string{first}}, 1)[0]
	owners := map[string]string{}
	for i, name := range names {
		owner, err := waitL2Owner(ctx, l, ns, name, "")
		must(t, err)
		_, err = l.WaitCurl(ctx, "l2client", watched[i], 80, func(b string) bool { return b == owner })
		must(t, err)
		owners[name] = owner
	}
	_, err := l.WaitCurl(ctx, "l2client", marker, 80, func(b string) bool { return b == first })
	must(t, err)
	t.Logf("owners before the storm: %v", owners)

	st := newStorm(t, ctx, l, ns, names, background)

	for _, n := range l.Nodes {
		must(t, l.LimitSpeakerCPU(n.Name, speakerCPULimit))
		t.Cleanup(func() {
			if err := l.LimitSpeakerCPU(n.Name, 0); err != nil {
				t.Errorf("removing the CPU limit of %s: %v", n.Name, err)
			}
		})
		in, err := l.SpeakerInCgroup(n.Name)
		must(t, err)
		if !in {
			t.Fatalf("the speaker of %s is not in its CPU-limit cgroup", n.Name)
		}
	}
	must(t, waitSpeakersConverged(ctx, l))

	t.Run("burst", func(t *testing.T) {
		logs := speakerLogOffsets(t, l)
		before := scrapeSpeakers(t, l)
		cpuBefore := speakerCPU(t, l)
		throttleBefore := throttledPeriods(t, l)
		stream := l.StartStream("l2client", lab.URL(watched[0], 80), 20*time.Millisecond, time.Second)

		begin := time.Now()
		done := st.run(updates)
		took := time.Since(begin)
		// The last update: the marker's only endpoint moves; its IP follows once the speakers
		// have read everything before it.
		lastWrite := time.Now()
		must(t, l.SetEndpoints(ctx, getService(t, ctx, l, ns, "marker"), []string{second}))
		converge := waitAnswer(t, ctx, l, marker, second)
		caughtUp := converge.Sub(lastWrite)

		// Memberlist gives a suspected member up to 1.3 s to refute: watch that long after the
		// burst before counting.
		watch := time.NewTimer(2 * time.Second)
		<-watch.C
		samples := stream.Stop()
		after := scrapeSpeakers(t, l)
		cpuUsed := speakerCPU(t, l)
		wall := time.Since(begin)

		deaths, moves := scanSpeakerLogs(t, l, logs, watched)
		failures, changes := lab.Failures(samples), ownerChanges(samples)
		syncs := after.sum("herald_speaker_syncs_total") - before.sum("herald_speaker_syncs_total")
		busy := after.sum("herald_speaker_sync_busy_seconds_total") - before.sum("herald_speaker_sync_busy_seconds_total")
		coalesced := after.sum("herald_speaker_sync_events_coalesced_total") - before.sum("herald_speaker_sync_events_coalesced_total")
		var cpuShare float64
		for n, used := range cpuUsed {
			cpuShare = max(cpuShare, (used-cpuBefore[n]).Seconds()/wall.Seconds())
		}
		throttled := throttledPeriods(t, l) - throttleBefore

		t.Logf("%d EndpointSlice updates in %s (%.0f/s); speakers caught up %s after the last one", done, took.Round(time.Millisecond),
			float64(done)/took.Seconds(), caughtUp.Round(time.Millisecond))
		t.Logf("speakers: %.0f recomputations (%.0f events coalesced), %.2f ms each on average; busiest speaker used %.2f CPU; %d throttled CFS periods",
			syncs, coalesced, 1000*busy/max(syncs, 1), cpuShare, throttled)
		t.Logf("%d requests to %s during the burst, %d failed, %d changes of the answering node", len(samples), watched[0], failures, changes)
		reportValue(t, "speaker_storm_updates_per_s", float64(done)/took.Seconds(), "updates/s")
		reportValue(t, "speaker_storm_false_deaths", float64(len(deaths)), "events")
		reportValue(t, "speaker_storm_ip_moves", float64(len(moves)+changes), "moves")
		report(t, "speaker_storm_converge_ms", caughtUp)
		reportValue(t, "speaker_storm_sync_mean_ms", 1000*busy/max(syncs, 1), "ms")
		reportValue(t, "speaker_storm_syncs_per_speaker", syncs/float64(len(l.Nodes)), "syncs")
		reportValue(t, "speaker_storm_speaker_cpu_max", cpuShare, "cores")
		reportValue(t, "speaker_storm_throttled_periods", float64(throttled), "periods")

		if done != updates {
			t.Errorf("the burst made %d updates, want %d", done, updates)
		}
		for _, d := range deaths {
			t.Errorf("live speaker declared dead during the burst: %s", d)
		}
		for _, m := range moves {
			t.Errorf("IP moved during the burst: %s", m)
		}
		if failures > 0 || changes > 0 {
			t.Errorf("requests to %s during the burst: %d failed, %d changes of the answering node; want none", watched[0], failures, changes)
		}
		for i, name := range names {
			if o, err := l.L2Owners(ctx, ns, name); err != nil || !slices.Equal(o, []string{owners[name]}) {
				t.Errorf("owner of %s (%s) after the burst: %v, %v; want %s", name, watched[i], o, err, owners[name])
			}
		}
	})

	t.Run("kill -9 during a burst", func(t *testing.T) {
		var gaps []time.Duration
		for range kills {
			owner, err := waitL2Owner(ctx, l, ns, "web", "")
			must(t, err)
			_, err = l.WaitCurl(ctx, "l2client", watched[0], 80, func(b string) bool { return b == owner })
			must(t, err)
			burst := make(chan int, 1)
			go func() { burst <- st.run(updates / 2) }()
			must(t, st.waitProgress(ctx, updates/8))
			gaps = append(gaps, l2Failover(t, ctx, l, ns, watched[0], owner, syscall.SIGKILL))
			<-burst
			in, err := l.SpeakerInCgroup(owner)
			must(t, err)
			if !in {
				t.Errorf("the restarted speaker of %s is not in its CPU-limit cgroup", owner)
			}
		}
		t.Logf("failover gaps after kill -9 during bursts: %v", gaps)
		report(t, "speaker_storm_kill_failover_median_ms", median(gaps))
		report(t, "speaker_storm_kill_failover_worst_ms", slices.Max(gaps))
		// The 500 ms goal is judged in bench/REPORT.md (bench/goals.tsv), over make bench's runs;
		// here a gap only has to show that failure detection worked (one sample, on a shared machine).
		if m := median(gaps); m > 2*time.Second {
			t.Errorf("median failover after kill -9 during a burst: %s; memberlist should see a killed speaker in about 0.5 s", m)
		}
	})
}

// storm updates EndpointSlices of the watched Services: four extra slices per Service, each with
// a ready endpoint on every node and one more endpoint whose readiness flips at every update.
// Which nodes serve each Service never changes.
type storm struct {
	t      *testing.T
	ctx    context.Context
	c      client.Client
	slices []*discoveryv1.EndpointSlice
	mu     sync.Mutex // one run at a time
	done   atomic.Int64
}

func newStorm(t *testing.T, ctx context.Context, l *lab.Lab, ns string, services []string, background int) *storm {
	t.Helper()
	cfg := rest.CopyConfig(l.Env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000 // the burst is limited by the API server, not by the client
	c, err := client.New(cfg, client.Options{Scheme: l.Client.Scheme()})
	must(t, err)
	s := &storm{t: t, ctx: ctx, c: c}
	// The lab has no garbage collector: remove what the storm made when the test ends.
	t.Cleanup(func() {
		err := c.DeleteAllOf(context.WithoutCancel(ctx), &discoveryv1.EndpointSlice{}, client.InNamespace(ns),
			client.MatchingLabels{discoveryv1.LabelManagedBy: "herald-e2e-storm"})
		if err != nil {
			t.Errorf("removing the storm's EndpointSlices: %v", err)
		}
	})
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 6 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= background || ctx.Err() != nil {
					return
				}
				es := &discoveryv1.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("bg-%d", i), Labels: map[string]string{
						discoveryv1.LabelServiceName: fmt.Sprintf("bg-%d", i/2), discoveryv1.LabelManagedBy: "herald-e2e-storm",
					}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
				}
				for k := range 5 {
					n := l.Nodes[(i+k)%len(l.Nodes)]
					es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
						Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+k, i/250, i%250+1)}, NodeName: ptr.To(n.Name),
						Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
					})
				}
				if err := c.Create(ctx, es); err != nil {
					t.Errorf("creating background EndpointSlice %s: %v", es.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, svc := range services {
		for j := range 4 {
			es := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-storm-%d", svc, j), Labels: map[string]string{
					discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "herald-e2e-storm",
				}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(l.Plan.BackendPort)}},
			}
			for _, n := range l.Nodes {
				es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
					Addresses: []string{n.V4.String()}, NodeName: ptr.To(n.Name),
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				})
			}
			flip := l.Nodes[(i+j)%len(l.Nodes)]
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{flip.V4.String()}, NodeName: ptr.To(flip.Name),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			})
			must(t, c.Create(ctx, es))
			s.slices = append(s.slices, es)
		}
	}
	return s
}

// run makes n updates, as fast as the API server takes them, and returns how many succeeded.
func (s *storm) run(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done.Store(0)
	const workers = 6
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range min(workers, len(s.slices)) {
		wg.Go(func() {
			// Worker w owns the slices w, w+workers, ...: never two writers on one slice.
			mine := (len(s.slices) - w + workers - 1) / workers
			for c := 0; ; c++ {
				if int(next.Add(1)) > n || s.ctx.Err() != nil {
					return
				}
				es := s.slices[w+workers*(c%mine)]
				ep := &es.Endpoints[len(es.Endpoints)-1]
				ep.Conditions.Ready = ptr.To(!*ep.Conditions.Ready)
				ep.Conditions.Serving = ep.Conditions.Ready
				if err := s.c.Update(s.ctx, es); err != nil {
					s.t.Errorf("storm update of %s: %v", es.Name, err)
					return
				}
				s.done.Add(1)
			}
		})
	}
	wg.Wait()
	return int(s.done.Load())
}

// waitProgress waits until the running burst has made n updates.
func (s *storm) waitProgress(ctx context.Context, n int) error {
	return wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) { return s.done.Load() >= int64(n), nil })
}

func getService(t *testing.T, ctx context.Context, l *lab.Lab, ns, name string) *corev1.Service {
	t.Helper()
	var svc corev1.Service
	must(t, l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc))
	return &svc
}

// waitAnswer sends a request to ip from the segment client every 10ms until node answers, and
// returns when that reply came.
func waitAnswer(t *testing.T, ctx context.Context, l *lab.Lab, ip netip.Addr, node string) time.Time {
	t.Helper()
	hc := l.HTTPClient("l2client", 200*time.Millisecond)
	var at time.Time
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		body, err := lab.Get(ctx, hc, lab.URL(ip, 80))
		at = time.Now()
		return err == nil && body == node, nil
	})
	if err != nil {
		t.Fatal(withHerald(fmt.Errorf("%s never answered from %s: %w", ip, node, err), l))
	}
	return at
}

// ownerChanges counts the changes of the answering node between successful requests.
func ownerChanges(samples []lab.Sample) int {
	n, last := 0, ""
	for _, s := range samples {
		if s.Err != nil {
			continue
		}
		if last != "" && s.Body != last {
			n++
		}
		last = s.Body
	}
	return n
}

// speakerLogOffsets returns the current size of every speaker's log.
func speakerLogOffsets(t *testing.T, l *lab.Lab) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, n := range l.Nodes {
		fi, err := os.Stat(l.Proc("speaker-" + n.Name).LogPath)
		must(t, err)
		out[n.Name] = fi.Size()
	}
	return out
}

// scanSpeakerLogs returns the "member gone" lines and the "taking over" lines for one of ips that
// the speakers logged after the offsets.
func scanSpeakerLogs(t *testing.T, l *lab.Lab, offsets map[string]int64, ips []netip.Addr) (deaths, moves []string) {
	t.Helper()
	var alts []string
	for _, ip := range ips {
		alts = append(alts, regexp.QuoteMeta(ip.String()))
	}
	ipRE := regexp.MustCompile(`\b(` + strings.Join(alts, "|") + `)\b`)
	for _, n := range l.Nodes {
		f, err := os.Open(l.Proc("speaker-" + n.Name).LogPath)
		must(t, err)
		_, err = f.Seek(offsets[n.Name], io.SeekStart)
		must(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.Contains(line, "member gone"):
				deaths = append(deaths, n.Name+": "+line)
			case strings.Contains(line, "taking over") && ipRE.MatchString(line):
				moves = append(moves, n.Name+": "+line)
			}
		}
		f.Close()
		must(t, sc.Err())
	}
	return deaths, moves
}

// metricSet is one scrape of every speaker: metric line (name and labels) -> value, summed over
// the speakers.
type metricSet map[string]float64

// sum adds the values of every series of the metric name.
func (m metricSet) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// scrapeSpeakers scrapes every speaker's metrics and sums them.
func scrapeSpeakers(t *testing.T, l *lab.Lab) metricSet {
	t.Helper()
	out := metricSet{}
	for _, n := range l.Nodes {
		m, err := scrapeSpeaker(l, n.Name)
		must(t, err)
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

// scrapeSpeaker reads one speaker's metrics.
func scrapeSpeaker(l *lab.Lab, node string) (metricSet, error) {
	n, ok := l.Node(node)
	if !ok {
		return nil, fmt.Errorf("no lab node %q", node)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort(n.V4.String(), "7472") + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scraping the speaker of %s: %w", node, err)
	}
	defer resp.Body.Close()
	out := metricSet{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] += v
		}
	}
	return out, sc.Err()
}

func speakerCPU(t *testing.T, l *lab.Lab) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for _, n := range l.Nodes {
		d, err := lab.ProcCPUTime(l.Proc("speaker-" + n.Name).PID())
		must(t, err)
		out[n.Name] = d
	}
	return out
}

func throttledPeriods(t *testing.T, l *lab.Lab) int64 {
	t.Helper()
	var n int64
	for _, node := range l.Nodes {
		st, err := l.SpeakerCPUStat(node.Name)
		must(t, err)
		n += st.Throttled
	}
	return n
}

// reportValue prints one figure that is not a duration for hack/benchreport.
func reportValue(t *testing.T, name string, v float64, unit string) {
	t.Helper()
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, float64(int64(v*1000+0.5)) / 1000, unit})
	fmt.Printf("BENCHJSON %s\n", line)
	t.Logf("%s = %v %s", name, v, unit)
}
