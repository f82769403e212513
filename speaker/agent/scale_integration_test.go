package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/layer2"
)

// TestBenchSpeakerScale measures what one API event costs the speaker as the number of Services
// grows, and how long it takes to catch up after a burst, against the real API server.
//
// Three nodes, all alive; the speaker under test is n1 and owns about a third of the IPs. Each
// Service has one IP and one EndpointSlice with one ready endpoint. One event is an EndpointSlice
// update that flips that endpoint's readiness, so the Service's IP is withdrawn or announced
// again: a change the speaker must read, recompute and apply. The events are sent one at a time,
// each after the previous one was applied, and the cost of an event is the time the speaker spent
// recomputing and applying (herald_speaker_sync_busy_seconds_total) divided by the events; the
// process CPU per event (the test's own client and the informers' decoding included) is reported
// too. Then a burst of updates (5,000 at 10,000 Services) takes the endpoint of that many Services
// away, and the time from the last update accepted by the API server to the speaker announcing
// exactly the remaining IPs is the convergence time.
//
// make test runs 100 and 1,000 Services with a burst of 500; HERALD_BENCH=1 (make bench) runs 100,
// 1,000 and 10,000 Services with a burst of 5,000 and prints BENCHJSON lines.
func TestBenchSpeakerScale(t *testing.T) {
	testenv.Require(t, env)
	if testing.Short() {
		t.Skip("creates thousands of objects")
	}
	bench := os.Getenv("HERALD_BENCH") == "1"
	sizes, events, burst := []int{100, 1000}, 20, 500
	if bench {
		sizes, events, burst = []int{100, 1000, 10000}, 40, 5000
	}
	sc := newScaleCluster(t)
	costs, nodeCosts := map[int]float64{}, map[int]float64{}
	for _, n := range sizes {
		sc.grow(t, n)
		last := n == sizes[len(sizes)-1]
		t.Run(fmt.Sprintf("%d services", n), func(t *testing.T) {
			run := sc.startAgent(t)
			median, mean, cpu := run.eventCost(t, sc, events)
			costs[n] = median
			t.Logf("%d Services: recomputing and applying took %.0f µs per event (median; mean %.0f µs); %.0f µs of process CPU per event",
				n, median, mean, cpu)
			if bench {
				benchLine(fmt.Sprintf("speaker_event_cost_us_%d", n), median, "us")
				benchLine(fmt.Sprintf("speaker_event_cost_mean_us_%d", n), mean, "us")
				benchLine(fmt.Sprintf("speaker_event_cpu_us_%d", n), cpu, "us")
			}
			nodeMedian := run.nodeEventCost(t, sc, events)
			nodeCosts[n] = nodeMedian
			t.Logf("%d Services: a Node change no advertisement reads took %.0f µs to recompute and apply (median)", n, nodeMedian)
			if bench {
				benchLine(fmt.Sprintf("speaker_node_event_cost_us_%d", n), nodeMedian, "us")
			}
			if !last {
				return
			}
			conv, took := run.burst(t, sc, burst)
			t.Logf("burst of %d EndpointSlice updates at %d Services: sent in %s (%.0f/s); the speaker converged %s after the last one",
				burst, n, took.Round(time.Millisecond), float64(burst)/took.Seconds(), conv.Round(time.Millisecond))
			if bench {
				benchLine(fmt.Sprintf("speaker_burst_converge_ms_%d", n), float64(conv.Microseconds())/1000, "ms")
			}
			if conv > 2*time.Second {
				t.Errorf("converged %s after a burst of %d updates at %d Services, want at most 2s", conv, burst, n)
			}
		})
	}
	small, large := sizes[0], sizes[len(sizes)-1]
	// Flat: the cost of an event (median) must not grow with the Services. A factor of 3 leaves
	// room for the noise of a shared machine; a cost that grows with N is 10 or 100 times larger.
	if costs[large] > 3*costs[small] {
		t.Errorf("an event costs %.0f µs at %d Services and %.0f µs at %d: want it flat (at most 3 times)", costs[large], large, costs[small], small)
	}
	if nodeCosts[large] > 3*nodeCosts[small] {
		t.Errorf("a Node event costs %.0f µs at %d Services and %.0f µs at %d: want it flat (at most 3 times)", nodeCosts[large], large, nodeCosts[small], small)
	}
}

// nodeEventCost changes, one at a time, a label of another node that no advertisement reads (an
// operator labelling nodes), waits for each computation, and returns the median time the speaker
// took to recompute and apply, in microseconds. Such a change must recompute no IP: not one full
// computation, not one IP decided again.
func (r *scaleRun) nodeEventCost(t *testing.T, sc *scaleCluster, events int) float64 {
	t.Helper()
	scope := func(s string) float64 { return counterValue(t, r.a.pace.scope.WithLabelValues(s)) }
	r.mu.Lock()
	r.took = nil
	r.mu.Unlock()
	full0, ips0 := scope(scopeAll), counterValue(t, r.a.pace.ips)
	name := sc.nodes[2]
	for k := range events {
		before := scope(scopeNodes)
		var n corev1.Node
		if err := sc.client.Get(t.Context(), client.ObjectKey{Name: name}, &n); err != nil {
			t.Fatal(err)
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["herald.test/tick"] = strconv.Itoa(k)
		if err := sc.client.Update(t.Context(), &n); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("the computation of Node event %d", k), func() bool { return scope(scopeNodes) > before })
	}
	if full := scope(scopeAll) - full0; full != 0 {
		t.Errorf("%d Node changes no advertisement reads caused %v full computations, want none", events, full)
	}
	if ips := counterValue(t, r.a.pace.ips) - ips0; ips != 0 {
		t.Errorf("%d Node changes no advertisement reads recomputed %v IPs, want none", events, ips)
	}
	return r.medianTook(t)
}

// medianTook returns the median duration of the computations caused by API events since the
// last reset of r.took, in microseconds.
func (r *scaleRun) medianTook(t *testing.T) float64 {
	t.Helper()
	r.mu.Lock()
	took := slices.Clone(r.took)
	r.mu.Unlock()
	if len(took) == 0 {
		t.Fatal("no computation was observed")
	}
	slices.Sort(took)
	return float64(took[len(took)/2].Nanoseconds()) / 1e3
}

// scaleClass is the load-balancer class of the scale test's Services: the agents of the other tests
// (class "") leave them alone.
const scaleClass = "herald.dev/scale-test"

// scaleCluster is the API side of the scale test: nodes, a pool and Services with their slices.
type scaleCluster struct {
	hns, app string
	nodes    []string
	client   client.Client // with a high QPS, for the bulk work
	ips      []netip.Addr
	slices   []*discoveryv1.EndpointSlice
	ready    []bool
}

func newScaleCluster(t *testing.T) *scaleCluster {
	ctx := t.Context()
	c := env.Client
	sc := &scaleCluster{hns: env.NewNamespace(t, "herald"), app: env.NewNamespace(t, "app")}
	for _, n := range []string{"n1", "n2", "n3"} {
		name := n + "-" + sc.hns
		sc.nodes = append(sc.nodes, name)
		createReadyNode(t, c, name)
	}
	for _, o := range []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: sc.hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8:100::/112"}}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: sc.hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	var err error
	if sc.client, err = client.New(cfg, client.Options{Scheme: env.Scheme}); err != nil {
		t.Fatal(err)
	}
	return sc
}

// parallel runs f(i) for i in [from, to) on 32 workers, failing the test on the first error.
func parallel(t *testing.T, from, to int, f func(i int) error) {
	t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to || t.Context().Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// grow creates Services (with their IP in status) and EndpointSlices up to n.
func (sc *scaleCluster) grow(t *testing.T, n int) {
	from := len(sc.ips)
	if n <= from {
		return
	}
	begin := time.Now()
	base := netip.MustParseAddr("2001:db8:100::").As16()
	sc.ips = append(sc.ips, make([]netip.Addr, n-from)...)
	sc.slices = append(sc.slices, make([]*discoveryv1.EndpointSlice, n-from)...)
	sc.ready = append(sc.ready, make([]bool, n-from)...)
	ctx := t.Context()
	parallel(t, from, n, func(i int) error {
		a := base
		a[14], a[15] = byte((i+1)>>8), byte(i+1)
		ip := netip.AddrFrom16(a)
		name := fmt.Sprintf("s%05d", i)
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sc.app}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, AllocateLoadBalancerNodePorts: ptr.To(false), LoadBalancerClass: ptr.To(scaleClass),
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if err := createRetrying(ctx, sc.client, s); err != nil {
			return fmt.Errorf("creating Service %s: %w", name, err)
		}
		if err := setIngressRetrying(ctx, sc.client, s, ip.String()); err != nil {
			return fmt.Errorf("setting the IP of Service %s: %w", name, err)
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-x", Namespace: sc.app, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv6,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"2001:db8:200::1"}, NodeName: ptr.To(sc.nodes[i%3]),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}
		if err := createRetrying(ctx, sc.client, es); err != nil {
			return fmt.Errorf("creating EndpointSlice %s: %w", es.Name, err)
		}
		sc.ips[i], sc.slices[i], sc.ready[i] = ip, es, true
		return nil
	})
	t.Logf("created %d Services with their EndpointSlices in %s", n-from, time.Since(begin).Round(time.Millisecond))
}

// expected returns the IPs n1 announces: those it wins among the live nodes, of Services with a
// ready endpoint.
func (sc *scaleCluster) expected() map[netip.Addr]bool {
	want := map[netip.Addr]bool{}
	for i, ip := range sc.ips {
		if o, _ := election.Owner(ip, sc.nodes); o == sc.nodes[0] && sc.ready[i] {
			want[ip] = true
		}
	}
	return want
}

// setReady updates Service i's EndpointSlice so that its endpoint is ready or not.
func (sc *scaleCluster) setReady(ctx context.Context, i int, ready bool) error {
	es := sc.slices[i]
	es.Endpoints[0].Conditions.Ready = ptr.To(ready)
	if err := sc.client.Update(ctx, es); err != nil {
		return fmt.Errorf("updating EndpointSlice %s: %w", es.Name, err)
	}
	sc.ready[i] = ready
	return nil
}

// scaleRun is one agent started on the scale cluster, with a layer-2 double that reports every
// change of what it announces.
type scaleRun struct {
	a  *Agent
	l2 *notifyL2

	mu   sync.Mutex
	took []time.Duration // durations of the computations caused by API events
}

func (sc *scaleCluster) startAgent(t *testing.T) *scaleRun {
	t.Helper()
	// The cache as the speaker makes it (trimmed objects).
	opts := CacheOptions(sc.hns, sc.nodes[0])
	ch, err := cache.New(testWatcher(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{members: sc.nodes}
	fm := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	l2 := newNotifyL2()
	a, err := New(Options{
		NodeName: sc.nodes[0], Namespace: sc.hns, LBClass: scaleClass, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: record.NewFakeRecorder(100000),
		Members: fm, L2: l2, BGP: fakeBGP{j}, Links: newFakeLinks(oneInterface), Resync: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &scaleRun{a: a, l2: l2}
	a.observeSync = func(cause string, took time.Duration) {
		if cause == syncAPI {
			r.mu.Lock()
			r.took = append(r.took, took)
			r.mu.Unlock()
		}
	}
	actx, stop := context.WithCancel(t.Context())
	go func() { _ = ch.Start(actx) }()
	done := make(chan error, 1)
	go func() { done <- a.Start(actx) }()
	t.Cleanup(func() { stop(); <-done })
	begin := time.Now()
	want := sc.expected()
	l2.wait(t, fmt.Sprintf("n1 to announce its %d IPs", len(want)), 3*time.Minute, func(owned map[netip.Addr][]string) bool {
		return sameKeys(owned, want)
	})
	t.Logf("the speaker announced its %d IPs %s after it started", len(want), time.Since(begin).Round(time.Millisecond))
	r.settle(t)
	return r
}

// settle waits until the speaker has written its status objects and made its start-up
// computations, so that the measurements that follow do not share the machine with them.
func (r *scaleRun) settle(t *testing.T) {
	t.Helper()
	w := r.a.status
	deadline := time.After(3 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	computations := func() float64 { return counterVecSum(t, r.a.pace.scope) }
	last, quiet := computations(), 0
	for {
		idle := w.Idle()
		// Settled: nothing left to write, and no computation for a few ticks (the start-up ones,
		// after this node published that it is ready, are done).
		if n := computations(); idle && n == last {
			if quiet++; quiet >= 6 {
				return
			}
		} else {
			last, quiet = n, 0
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the speaker did not finish writing its status objects within 3 minutes")
		}
	}
}

// eventCost sends events one at a time and returns the speaker's recompute-and-apply time per
// event (the median of its computations, and the mean: the busy time over the events) and the
// process CPU per event, in microseconds.
func (r *scaleRun) eventCost(t *testing.T, sc *scaleCluster, events int) (median, mean, cpu float64) {
	t.Helper()
	var mine []int
	for i, ip := range sc.ips {
		if o, _ := election.Owner(ip, sc.nodes); o == sc.nodes[0] {
			mine = append(mine, i)
		}
	}
	r.mu.Lock()
	r.took = nil
	r.mu.Unlock()
	busy0, cpu0 := counterValue(t, r.a.pace.busy), processCPU(t)
	full0 := counterValue(t, r.a.pace.scope.WithLabelValues(scopeAll))
	syncs0 := map[string]float64{}
	for _, c := range []string{syncAPI, syncMembers, syncResync, syncStart, syncConflicts} {
		syncs0[c] = counterValue(t, r.a.pace.syncs.WithLabelValues(c))
	}
	defer func() {
		t.Logf("%v full computations", counterValue(t, r.a.pace.scope.WithLabelValues(scopeAll))-full0)
		for _, c := range []string{syncAPI, syncMembers, syncResync, syncStart, syncConflicts} {
			if n := counterValue(t, r.a.pace.syncs.WithLabelValues(c)) - syncs0[c]; n > 0 {
				t.Logf("%v computations caused by %s", n, c)
			}
		}
	}()
	for k := range events {
		i := mine[k%len(mine)]
		ready := !sc.ready[i]
		if err := sc.setReady(t.Context(), i, ready); err != nil {
			t.Fatal(err)
		}
		ip := sc.ips[i]
		r.l2.wait(t, fmt.Sprintf("event %d applied", k), 30*time.Second, func(owned map[netip.Addr][]string) bool {
			_, ok := owned[ip]
			return ok == ready
		})
	}
	busy, used := counterValue(t, r.a.pace.busy)-busy0, processCPU(t)-cpu0
	return r.medianTook(t), 1e6 * busy / float64(events), float64(used.Microseconds()) / float64(events)
}

// burst takes the endpoint of n Services away as fast as the API server takes it and returns how
// long after the last update the speaker announced exactly what remains, and how long sending
// took.
func (r *scaleRun) burst(t *testing.T, sc *scaleCluster, n int) (converge, took time.Duration) {
	t.Helper()
	var targets []int
	for i := range sc.ips {
		if sc.ready[i] && len(targets) < n {
			targets = append(targets, i)
		}
	}
	if len(targets) < n {
		t.Fatalf("only %d Services have a ready endpoint, want %d for the burst", len(targets), n)
	}
	// Decide the expected state before sending: the workers flip sc.ready concurrently.
	for _, i := range targets {
		sc.ready[i] = false
	}
	want := sc.expected()
	for _, i := range targets {
		sc.ready[i] = true
	}
	begin := time.Now()
	var mu sync.Mutex
	parallel(t, 0, len(targets), func(k int) error {
		i := targets[k]
		es := sc.slices[i]
		es.Endpoints[0].Conditions.Ready = ptr.To(false)
		if err := sc.client.Update(t.Context(), es); err != nil {
			return fmt.Errorf("updating EndpointSlice %s: %w", es.Name, err)
		}
		mu.Lock()
		sc.ready[i] = false
		mu.Unlock()
		return nil
	})
	end := time.Now()
	at := r.l2.wait(t, "the speaker to converge after the burst", time.Minute, func(owned map[netip.Addr][]string) bool {
		return sameKeys(owned, want)
	})
	return max(0, at.Sub(end)), end.Sub(begin)
}

func sameKeys(owned map[netip.Addr][]string, want map[netip.Addr]bool) bool {
	if len(owned) != len(want) {
		return false
	}
	for ip := range owned {
		if !want[ip] {
			return false
		}
	}
	return true
}

func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// notifyL2 is a layer-2 double that keeps what the agent announces and records when it changed.
type notifyL2 struct {
	mu      sync.Mutex
	owned   map[netip.Addr][]string
	changed time.Time
	kick    chan struct{}
}

func newNotifyL2() *notifyL2 {
	return &notifyL2{owned: map[netip.Addr][]string{}, kick: make(chan struct{}, 1)}
}

func (f *notifyL2) Prepare(names []string) ([]string, error) { return names, nil }

func (f *notifyL2) SetOwned(o map[netip.Addr][]string) error {
	f.mu.Lock()
	f.owned = make(map[netip.Addr][]string, len(o))
	for ip, ifs := range o {
		f.owned[ip] = ifs
	}
	f.changed = time.Now()
	f.mu.Unlock()
	f.notify()
	return nil
}

// UpdateOwned implements Layer2Updater, as package layer2's Announcer does.
func (f *notifyL2) UpdateOwned(changed map[netip.Addr][]string, _ map[netip.Addr]bool) error {
	f.mu.Lock()
	for ip, ifs := range changed {
		if len(ifs) == 0 {
			delete(f.owned, ip)
		} else {
			f.owned[ip] = ifs
		}
	}
	f.changed = time.Now()
	f.mu.Unlock()
	f.notify()
	return nil
}

// The conflict detection of package layer2's Announcer (Layer2Guard), without conflicts, so that
// the agent runs the code it runs with the default --l2-conflict-detection.

func (f *notifyL2) SetOwnedFresh(o map[netip.Addr][]string, _ map[netip.Addr]bool) error {
	return f.SetOwned(o)
}
func (f *notifyL2) Conflicts() []layer2.Conflict     { return nil }
func (f *notifyL2) ConflictChanges() <-chan struct{} { return nil }
func (f *notifyL2) SetPeerMACs(map[string]string)    {}
func (f *notifyL2) MACs() map[string]string          { return map[string]string{"eth0": "02:00:00:00:00:01"} }

func (f *notifyL2) notify() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// wait waits until cond holds for what is announced, and returns when that state was applied.
func (f *notifyL2) wait(t *testing.T, what string, timeout time.Duration, cond func(map[netip.Addr][]string) bool) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ok, at := cond(f.owned), f.changed
		f.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-f.kick:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// benchLine prints one figure for hack/benchreport.
func benchLine(name string, v float64, unit string) {
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, math.Round(v*10) / 10, unit})
	fmt.Printf("BENCHJSON %s\n", line)
}
