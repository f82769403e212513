package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
)

// TestAgentPacesEventStorm sends a storm of EndpointSlice updates through the API server, each one
// a change the speaker must read, and checks that recomputing takes a bounded share of the
// speaker's time (so memberlist keeps its CPU under a quota), that the storm's last state is
// applied soon after it ends, and that a membership change in the middle of the storm is
// re-elected at once rather than queued behind the storm.
func TestAgentPacesEventStorm(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	var nodes []string
	for _, n := range []string{"n1", "n2", "n3"} {
		name := n + "-" + hns
		nodes = append(nodes, name)
		createReadyNode(t, c, name)
	}
	for _, o := range []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/24"}}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// 150 Services, each with an EndpointSlice holding a ready endpoint on every node and one
	// more whose readiness the storm flips (which nodes serve a Service never changes).
	const services = 150
	var slices []*discoveryv1.EndpointSlice
	for i := range services {
		name := fmt.Sprintf("s%d", i)
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: fmt.Sprintf("198.51.100.%d", i+1)}}
		if err := c.Status().Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-x", Namespace: app, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for j, n := range append(nodes, nodes[i%3]) {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.0.%d.%d", i, j+1)},
				NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
		if err := c.Create(ctx, es); err != nil {
			t.Fatal(err)
		}
		slices = append(slices, es)
	}

	ch, err := cache.New(testWatcher(t), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{members: nodes}
	fm := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	a, err := New(Options{
		NodeName: nodes[0], Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: record.NewFakeRecorder(1000), Members: fm,
		L2: fakeL2{j}, BGP: fakeBGP{j}, Links: newFakeLinks(oneInterface),
		Resync: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = ch.Start(actx) }()
	done := make(chan error, 1)
	go func() { done <- a.Start(actx) }()
	defer func() { stop(); <-done }()
	owned := func() int {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned)
	}
	eventually(t, "n1 to own its share of the IPs", func() bool { return owned() > 5 && owned() < services })
	ownedBefore := owned()

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	sc, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	busyBefore, syncsBefore := counterValue(t, a.pace.busy), counterVecSum(t, a.pace.syncs)
	const updates = 1500
	var made atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range 6 {
		wg.Go(func() {
			for k := 0; ; k++ {
				if made.Add(1) > updates || ctx.Err() != nil {
					return
				}
				es := slices[w+6*(k%(services/6))] // worker w owns every sixth slice
				ep := &es.Endpoints[len(es.Endpoints)-1]
				ep.Conditions.Ready = ptr.To(!*ep.Conditions.Ready)
				if err := sc.Update(ctx, es); err != nil {
					t.Errorf("updating %s: %v", es.Name, err)
					return
				}
			}
		})
	}

	// Halfway, n2 dies: n1 takes over its share at once, storm or not.
	eventually(t, "the storm to be half done", func() bool { return made.Load() >= updates/2 })
	died := time.Now()
	fm.setAlive(nodes[0], nodes[2])
	eventually(t, "n1 to take over IPs of the dead n2", func() bool { return owned() > ownedBefore })
	reelect := time.Since(died)
	wg.Wait()
	took := time.Since(begin)
	busy := counterValue(t, a.pace.busy) - busyBefore
	syncs := counterVecSum(t, a.pace.syncs) - syncsBefore
	share := busy / took.Seconds()
	for _, cause := range []string{syncAPI, syncMembers, syncResync, syncStart, syncConflicts} {
		t.Logf("recomputations caused by %s: %v", cause, counterValue(t, a.pace.syncs.WithLabelValues(cause)))
	}

	// The speaker catches up with the API at once after the storm: a new Service that n1 wins is
	// announced within the pacing cap.
	alive := []string{nodes[0], nodes[2]}
	var ip netip.Addr
	for cand := netip.MustParseAddr("198.51.100.200"); ; cand = cand.Next() {
		if o, _ := election.Owner(cand, alive); o == nodes[0] {
			ip = cand
			break
		}
	}
	created := time.Now()
	late := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: app}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if err := c.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	createReadyEndpoint(t, c, app, "late")
	late.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
	if err := c.Status().Update(ctx, late); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 to announce a Service created after the storm", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned[ip]) > 0
	})
	caughtUp := time.Since(created)
	t.Logf("%d updates in %s (%.0f/s): %.0f recomputations, %.1f ms each, %.1f%% of the time recomputing; a member's death re-elected after %s; a new Service announced %s after the storm",
		updates, took.Round(time.Millisecond), updates/took.Seconds(), syncs, 1000*busy/max(syncs, 1), 100*share,
		reelect.Round(time.Millisecond), caughtUp.Round(time.Millisecond))
	if share > 2*syncBudget {
		t.Errorf("recomputing took %.0f%% of the time during the storm, want at most %.0f%% (budget %.0f%%)", 100*share, 200*syncBudget, 100*syncBudget)
	}
	if reelect > 500*time.Millisecond {
		t.Errorf("a member's death was re-elected %s after memberlist reported it, want at once (under 500ms)", reelect)
	}
	if got := counterValue(t, a.pace.coalesced); got == 0 {
		t.Errorf("no event was coalesced during a storm of %d updates", updates)
	}
	if caughtUp > maxSyncGap+time.Second {
		t.Errorf("a Service created after the storm was announced after %s, want within the pacing cap (%s)", caughtUp, maxSyncGap)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func counterVecSum(t *testing.T, v interface {
	Collect(chan<- prometheus.Metric)
}) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	var sum float64
	for m := range ch {
		sum += counterValue(t, m)
	}
	return sum
}
