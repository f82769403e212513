package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

// benchFigure prints one measurement in the form `make bench` collects.
func benchFigure(t *testing.T, name string, value float64, unit string) {
	b, err := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, value, unit})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCHJSON %s\n", b)
	t.Logf("BENCHJSON %s", b)
}

// ipWatcher records when each Service of a namespace first shows an address.
type ipWatcher struct {
	mu    sync.Mutex
	first map[string]time.Time
	seen  chan struct{}
}

func watchIPs(t *testing.T, ns string) *ipWatcher {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &ipWatcher{first: map[string]time.Time{}, seen: make(chan struct{}, 1)}
	start := func() watch.Interface {
		wi, err := wc.Watch(ctx, &corev1.ServiceList{}, client.InNamespace(ns))
		if err != nil {
			t.Errorf("watching Services: %v", err)
			return nil
		}
		return wi
	}
	wi := start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wi != nil {
			for ev := range wi.ResultChan() {
				s, ok := ev.Object.(*corev1.Service)
				if !ok || len(s.Status.LoadBalancer.Ingress) == 0 {
					continue
				}
				now := time.Now()
				w.mu.Lock()
				if _, ok := w.first[s.Name]; !ok {
					w.first[s.Name] = now
				}
				w.mu.Unlock()
				select {
				case w.seen <- struct{}{}:
				default:
				}
			}
			if ctx.Err() != nil {
				return
			}
			wi = start() // the server closed the watch: reopen
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *ipWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.first)
}

func (w *ipWatcher) at(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.first[name]
	return t, ok
}

// waitCount waits, driven by watch events, until n Services have addresses.
func (w *ipWatcher) waitCount(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for w.count() < n {
		select {
		case <-w.seen:
		case <-deadline.C:
			t.Fatalf("%d of %d Services have addresses after %v", w.count(), n, timeout)
		}
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// TestBenchControllerScale measures, on the real API server, how long a burst of 1,000 and 5,000
// Services created at once takes to get addresses, how many API writes each costs, and, with
// 5,000 assigned, how long a new Service waits after a restart. Run with HERALD_BENCH=1.
func TestBenchControllerScale(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("set HERALD_BENCH=1 to run the controller measurements")
	}
	for _, n := range []int{1000, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { benchBurst(t, n) })
	}
}

func benchBurst(t *testing.T, n int) {
	f := newFixture(t)
	f.pool("bench", []string{"198.18.0.0/17"})
	writes := &writeCounter{}
	defaults := func(o *service.Options) { o.PoolStatusInterval = 0 } // production coalescing (1s)
	stop := f.startWithConfig(writes.wrap(env.Config), defaults)
	w := watchIPs(t, f.ns)

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	fast, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	created := make(map[string]time.Time, n)
	begin := time.Now()
	f.createServices(fast, "b", n, func(name string) {
		now := time.Now()
		mu.Lock()
		created[name] = now
		mu.Unlock()
	})
	t.Logf("created %d Services in %v", n, time.Since(begin))
	w.waitCount(t, n, 5*time.Minute)
	all := time.Since(begin)
	lat := make([]time.Duration, 0, n)
	for name, c := range created {
		at, _ := w.at(name)
		lat = append(lat, max(at.Sub(c), 0))
	}
	slices.Sort(lat)
	f.waitPoolStatus("bench", v1beta1.IPAddressPoolStatus{AssignedIPv4: fmt.Sprint(n), AvailableIPv4: fmt.Sprint(32768 - n), AssignedIPv6: "0", AvailableIPv6: "0"})
	perService := float64(writes.total.Load()) / float64(n)
	t.Logf("writes: %v", writes.summary())

	benchFigure(t, fmt.Sprintf("controller_assign_%d_all_s", n), all.Seconds(), "s")
	benchFigure(t, fmt.Sprintf("controller_assign_%d_p50_ms", n), float64(percentile(lat, 0.50).Microseconds())/1000, "ms")
	benchFigure(t, fmt.Sprintf("controller_assign_%d_p99_ms", n), float64(percentile(lat, 0.99).Microseconds())/1000, "ms")
	if n != 5000 {
		return
	}
	benchFigure(t, "controller_api_writes_per_service", perService, "writes")
	if perService > 4 {
		t.Errorf("%.2f API writes per Service, want at most 4 (status, annotation, event, a share of pool status)", perService)
	}

	// Restart with 5,000 assigned: time from the new controller's start to a new Service's address.
	stop()
	restartWrites := &writeCounter{}
	t0 := time.Now()
	f.startWithConfig(restartWrites.wrap(env.Config), defaults)
	f.service("after-restart")
	w.waitCount(t, n+1, 2*time.Minute)
	at, _ := w.at("after-restart")
	benchFigure(t, "controller_restart_new_service_ms", float64(at.Sub(t0).Microseconds())/1000, "ms")
	// Only the new Service (status, annotation, event) and the pool may be written.
	if got := restartWrites.count("/services/"); got > 2 {
		t.Errorf("%d Service writes after a restart with nothing to change but one new Service: %v", got, restartWrites.summary())
	}
}
