package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
)

// flakyServer is an HTTP server on a fixed loopback port that can go down (connection refused)
// and come back. /readyz answers 200 when ready, 500 otherwise; every other path answers
// status (200 when zero).
type flakyServer struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	ready  bool
	status int
	hits   int // requests to paths other than /readyz
}

func newFlakyServer(t *testing.T) *flakyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &flakyServer{t: t, addr: ln.Addr().String(), ready: true}
	s.serve(ln)
	t.Cleanup(s.down)
	return s
}

func (s *flakyServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ready, status := s.ready, s.status
		if r.URL.Path != "/readyz" {
			s.hits++
		}
		s.mu.Unlock()
		switch {
		case r.URL.Path == "/readyz" && !ready:
			http.Error(w, "[-]poststarthook/start-apiextensions-informers failed", http.StatusInternalServerError)
		case r.URL.Path == "/readyz":
			_, _ = io.WriteString(w, "ok")
		case status != 0:
			http.Error(w, http.StatusText(status), status)
		default:
			_, _ = io.WriteString(w, "{}")
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down stops the server and closes its connections: clients get "connection refused".
func (s *flakyServer) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens on the same address again, ready or not.
func (s *flakyServer) up(ready bool) {
	s.t.Helper()
	s.mu.Lock()
	s.ready = ready
	s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listening on %s again: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *flakyServer) set(f func(s *flakyServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *flakyServer) url(path string) string { return "http://" + s.addr + path }

// gateHarness is a Gate on a fake clock in front of a flakyServer, counting its probes.
type gateHarness struct {
	srv    *flakyServer
	gate   *Gate
	clock  *clocktesting.FakeClock
	client *http.Client
	probes atomic.Int32
}

const testInterval = 300 * time.Millisecond

func newGateHarness(t *testing.T) *gateHarness {
	t.Helper()
	h := &gateHarness{srv: newFlakyServer(t), clock: clocktesting.NewFakeClock(time.Now())}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	probe := ReadyzProbe(&http.Client{Transport: tr}, h.srv.url("/readyz"))
	g, err := NewGate(GateOptions{
		Probe:    func(ctx context.Context) error { h.probes.Add(1); return probe(ctx) },
		Interval: testInterval, Jitter: -1, Clock: h.clock, Server: h.srv.addr,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.gate = g
	h.client = &http.Client{Transport: g.Wrap(tr)}
	return h
}

func (h *gateHarness) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.url(path), nil)
	if err != nil {
		return 0, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// idle waits until the prober has made its last probe and waits for its next turn.
func (h *gateHarness) idle(t *testing.T) {
	t.Helper()
	eventually(t, "the prober waits for its next turn", h.clock.HasWaiters)
}

// nextProbe lets the prober's next turn come (after idle).
func (h *gateHarness) nextProbe() { h.clock.Step(testInterval) }

// eventually polls cond every millisecond until it holds, failing the test after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting until %s", what)
	}
}

type result struct {
	status int
	err    error
}

func (h *gateHarness) goGet(ctx context.Context, path string) <-chan result {
	out := make(chan result, 1)
	go func() {
		st, err := h.get(ctx, path)
		out <- result{st, err}
	}()
	return out
}

// mustBePending fails the test if the request behind c has returned.
func mustBePending(t *testing.T, c <-chan result) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("a request returned while the API server was down or not ready: %d, %v", r.status, r.err)
	default:
	}
}

// TestGateHoldsRequestsUntilReadyz: a request that finds the server gone fails as before and marks
// it down; later requests wait, whatever the probes see, until /readyz answers 200, and then go
// through within that probe; watches fail at once while the server is down, with an error client-go
// does not retry as a watch.
func TestGateHoldsRequestsUntilReadyz(t *testing.T) {
	h := newGateHarness(t)
	ctx := t.Context()
	if st, err := h.get(ctx, "/api/v1/services"); err != nil || st != http.StatusOK {
		t.Fatalf("with the server up: %d, %v", st, err)
	}

	h.srv.down()
	_, err := h.get(ctx, "/api/v1/services")
	if err == nil || !utilnet.IsConnectionRefused(err) {
		t.Fatalf("the first request after the server went down: err %v, want connection refused", err)
	}
	if h.gate.Reachable() {
		t.Fatal("the gate still says reachable after a refused connection")
	}
	h.srv.set(func(s *flakyServer) { s.hits = 0 })
	held := h.goGet(ctx, "/api/v1/services")
	eventually(t, "the request waits", func() bool { return h.gate.Waiting() == 1 })
	// The prober asked at once; it asks again every interval while the server is down.
	h.idle(t)
	h.nextProbe()
	h.idle(t)
	if n := h.probes.Load(); n != 2 {
		t.Errorf("%d probes after one interval, want 2 (one at once, one after the interval)", n)
	}

	// Watches do not wait: they fail at once, and not as "connection refused" or EOF, which
	// client-go would retry as a watch at a resource version a restarted API server has forgotten.
	_, werr := h.get(ctx, "/api/v1/services?watch=true&resourceVersion=42")
	if !errors.Is(werr, ErrAPIServerUnreachable) || utilnet.IsConnectionRefused(werr) || utilnet.IsProbableEOF(werr) || utilnet.IsTimeout(werr) {
		t.Errorf("a watch while the server is down: err %v, want ErrAPIServerUnreachable and nothing client-go retries as a watch", werr)
	}

	// Back, but not ready: still held.
	h.srv.up(false)
	h.nextProbe()
	h.idle(t) // the probe saw 500 and the prober waits again
	mustBePending(t, held)
	if h.gate.Reachable() || h.gate.Waiting() != 1 {
		t.Fatalf("while /readyz answers 500: reachable %v, %d waiting; want false, 1", h.gate.Reachable(), h.gate.Waiting())
	}

	// Ready: the next probe releases the held request, which reaches the server.
	h.srv.set(func(s *flakyServer) { s.ready = true })
	h.nextProbe()
	select {
	case r := <-held:
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("the held request: %d, %v; want 200", r.status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request was not released once /readyz answered 200")
	}
	if !h.gate.Reachable() {
		t.Error("the gate does not say reachable after /readyz answered 200")
	}
	h.srv.set(func(s *flakyServer) {
		if s.hits != 1 {
			t.Errorf("the server got %d requests besides /readyz after it went down, want 1 (the held one, once)", s.hits)
		}
	})
	if _, err := h.get(ctx, "/api/v1/services?watch=true"); err != nil {
		t.Errorf("a watch once the server is back: %v", err)
	}
}

// TestGateRequestWithDeadlineFailsOnTime: a request that waits for a down server still ends when
// its context does (leader election renewals, status writes with timeouts), with an error that says
// so (errors.Is context.DeadlineExceeded) and names the unreachable server.
func TestGateRequestWithDeadlineFailsOnTime(t *testing.T) {
	h := newGateHarness(t)
	h.srv.down()
	if _, err := h.get(t.Context(), "/healthz"); err == nil {
		t.Fatal("a request to a stopped server succeeded")
	}
	const timeout = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	r := h.goGet(ctx, "/apis/coordination.k8s.io/v1/namespaces/x/leases/y")
	select {
	case got := <-r:
		if !errors.Is(got.err, context.DeadlineExceeded) || !errors.Is(got.err, ErrAPIServerUnreachable) {
			t.Errorf("err %v, want one wrapping context.DeadlineExceeded and ErrAPIServerUnreachable", got.err)
		}
		if took := time.Since(start); took < timeout {
			t.Errorf("returned after %v, before its deadline of %v", took, timeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a request with a 50 ms deadline was still waiting after 10 s")
	}
}

// TestGateMarksDownOn503: a 503 answer marks the server down like a refused connection; the prober
// asks /readyz at once, so an API server that is in fact ready holds nothing back for long.
func TestGateMarksDownOn503(t *testing.T) {
	h := newGateHarness(t)
	h.srv.set(func(s *flakyServer) { s.status = http.StatusServiceUnavailable; s.ready = false })
	st, err := h.get(t.Context(), "/api/v1/nodes")
	if err != nil || st != http.StatusServiceUnavailable {
		t.Fatalf("got %d, %v; want the 503 passed on", st, err)
	}
	if h.gate.Reachable() {
		t.Fatal("a 503 did not mark the server down")
	}
	h.idle(t) // the immediate probe saw /readyz fail
	h.srv.set(func(s *flakyServer) { s.status = 0; s.ready = true })
	h.nextProbe()
	eventually(t, "the gate says reachable", h.gate.Reachable)
	if st, err := h.get(t.Context(), "/api/v1/nodes"); err != nil || st != http.StatusOK {
		t.Errorf("after /readyz answered: %d, %v", st, err)
	}
}

// TestGateLeavesOtherErrorsAlone: answers of the API server (404, 500) and errors waiting cannot
// fix do not mark it down.
func TestGateLeavesOtherErrorsAlone(t *testing.T) {
	h := newGateHarness(t)
	for _, status := range []int{http.StatusNotFound, http.StatusInternalServerError, http.StatusTooManyRequests} {
		h.srv.set(func(s *flakyServer) { s.status = status })
		if st, err := h.get(t.Context(), "/api/v1/nodes"); err != nil || st != status {
			t.Fatalf("got %d, %v; want %d", st, err, status)
		}
		if !h.gate.Reachable() {
			t.Errorf("an answer %d marked the API server down", status)
		}
	}
	if h.probes.Load() != 0 {
		t.Errorf("%d probes with the API server answering", h.probes.Load())
	}
}

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", &url.Error{Op: "Get", URL: "https://a", Err: refused}, true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}, true},
		{"reset on read", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"no route", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EHOSTUNREACH)}, true},
		{"EOF", fmt.Errorf("reading response: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"http2 GOAWAY", errors.New("http2: server sent GOAWAY and closed the connection; LastStreamID=1"), true},
		{"http2 connection lost", errors.New("http2: client connection lost"), true},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"unknown CA", x509.UnknownAuthorityError{}, false},
		{"other", errors.New("something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unreachable(tc.err); got != tc.want {
				t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestReadyzProbe(t *testing.T) {
	for _, tc := range []struct {
		status int
		back   bool
	}{
		{http.StatusOK, true},
		{http.StatusUnauthorized, true}, // up; anonymous /readyz may be disabled
		{http.StatusForbidden, true},
		{http.StatusNotFound, true},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false}, // a readiness check fails
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := newFlakyServer(t)
			srv.set(func(s *flakyServer) { s.status = tc.status })
			err := ReadyzProbe(http.DefaultClient, srv.url("/readyz-like"))(t.Context())
			if (err == nil) != tc.back {
				t.Errorf("answer %d: probe error %v, want back=%v", tc.status, err, tc.back)
			}
		})
	}
	srv := newFlakyServer(t)
	srv.down()
	if err := ReadyzProbe(http.DefaultClient, srv.url("/readyz"))(t.Context()); err == nil {
		t.Error("a probe of a stopped server succeeded")
	}
}

func TestReadyzURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  rest.Config
		want string
	}{
		{"URL", rest.Config{Host: "https://10.0.0.1:6443"}, "https://10.0.0.1:6443/readyz"},
		{"host:port with a CA", rest.Config{Host: "10.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("x")}}, "https://10.0.0.1:6443/readyz"},
		{"path prefix of a proxy", rest.Config{Host: "https://proxy.example/clusters/a/"}, "https://proxy.example/clusters/a/readyz"},
		{"IPv6", rest.Config{Host: "https://[2001:db8::1]:6443"}, "https://[2001:db8::1]:6443/readyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readyzURL(&tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("readyz URL (-want +got):\n%s", diff)
			}
		})
	}
}
