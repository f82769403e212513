package kube

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// cuttable is a TCP relay to the API server that can be cut (its listener closed and every
// connection through it dropped: clients get "connection refused") and restored on the same port.
type cuttable struct {
	t       *testing.T
	addr    string
	backend string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newCuttable(t *testing.T, backend string) *cuttable {
	t.Helper()
	c := &cuttable{t: t, backend: backend, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(c.cut)
	return c
}

func (c *cuttable) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", c.backend)
			if err != nil {
				_ = a.Close()
				continue
			}
			c.mu.Lock()
			c.conns[a], c.conns[b] = true, true
			c.mu.Unlock()
			go func() { _, _ = io.Copy(b, a); _ = b.Close() }()
			go func() { _, _ = io.Copy(a, b); _ = a.Close() }()
		}
	}()
}

func (c *cuttable) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		_ = c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		_ = conn.Close()
	}
	clear(c.conns)
}

func (c *cuttable) restore() {
	c.t.Helper()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatalf("listening on %s again: %v", c.addr, err)
	}
	c.serve(ln)
}

// TestReflectorResumesAfterOutage runs a real client-go reflector against the real API server,
// through a connection that is cut and restored, with the reflector's clock (and so its backoff)
// under the test's control. While the API server is unreachable the reflector's requests end up
// waiting in the Gate instead of backing off again and again; once the connection is back, the
// reflector resumes and sees a new object without its clock moving at all: it waits for no backoff
// after the outage. Requests with a deadline still fail at their deadline meanwhile, and writes
// work again afterwards. Without the Gate the reflector keeps backing off (on its fake clock, for
// ever) and the test fails.
func TestReflectorResumesAfterOutage(t *testing.T) {
	testenv.Require(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	api, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	relay := newCuttable(t, api.Host)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + relay.addr
	cfg.ServerName = "localhost" // the serving certificate names localhost and 127.0.0.1
	gate, err := HoldWhileUnreachable(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := env.NewNamespace(t, "resume")
	direct := env.Client // straight to the API server, not through the relay
	create := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := direct.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}

	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	clock := clocktesting.NewFakeClock(time.Now())
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "configmaps", ns, fields.Everything())
	refl := cache.NewReflectorWithOptions(lw, &corev1.ConfigMap{}, store, cache.ReflectorOptions{Clock: clock})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); refl.RunWithContext(rctx) }()
	defer func() { stop(); <-done }()
	has := func(name string) func() bool {
		return func() bool { _, ok, _ := store.GetByKey(ns + "/" + name); return ok }
	}
	eventually(t, "the reflector lists", func() bool { return refl.LastSyncResourceVersion() != "" })
	create("before") // arrives as a watch event: the watch is running
	eventually(t, "the reflector sees the first ConfigMap", has("before"))

	// What waits on the clock while the watch runs is no backoff: with a kube-apiserver that
	// streams the initial list (WatchList, 1.34 and later) the reflector leaves a ticker there,
	// which the fake clock keeps after Stop. A backoff is a waiter beyond those.
	idle := clock.Waiters()
	relay.cut()
	// The reflector's watch breaks, its next request is refused and it backs off: let its backoffs
	// pass (the outage goes on meanwhile) until its request waits in the Gate.
	for steps := 0; gate.Waiting() == 0; steps++ {
		if steps == 4 {
			t.Fatalf("the reflector still backs off and retries after %d backoffs: its requests do not wait for the API server", steps)
		}
		eventually(t, "the reflector backs off or waits for the API server", func() bool { return clock.Waiters() > idle || gate.Waiting() > 0 })
		if gate.Waiting() == 0 {
			clock.Step(5 * time.Second)
		}
	}
	if gate.Reachable() {
		t.Error("the Gate says reachable with the connection cut")
	}

	// A request with a deadline fails at its deadline, as before.
	wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = cs.CoreV1().ConfigMaps(ns).Create(wctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "during"}}, metav1.CreateOptions{})
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a write with a 100 ms deadline while the API server is unreachable: %v, want context.DeadlineExceeded", err)
	}

	relay.restore()
	create("after")
	eventually(t, "the reflector sees the ConfigMap created after the outage, with its clock standing still", has("after"))
	if !gate.Reachable() {
		t.Error("the Gate does not say reachable after the reflector resumed")
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "write-after"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("a write through the Gate after the outage: %v", err)
	}
	eventually(t, "the reflector sees the write made through the Gate", has("write-after"))
}
