package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// ErrAPIServerUnreachable is wrapped by the errors the Gate returns instead of sending a request:
// a watch while the API server cannot be reached, or a request whose context ended while it waited.
var ErrAPIServerUnreachable = errors.New("the API server is unreachable")

// Defaults of GateOptions.
const (
	// DefaultProbeInterval is how often the prober asks /readyz while the API server is down:
	// about 3 requests a second per process, and a process notices the API server is back within
	// DefaultProbeInterval*(1+DefaultProbeJitter) of it being ready.
	DefaultProbeInterval = 300 * time.Millisecond
	// DefaultProbeJitter spreads the probes of many processes: each wait is the interval times a
	// random factor in [1, 1+jitter).
	DefaultProbeJitter = 0.5
	// DefaultProbeTimeout bounds one probe, so a black-holed API server is asked again soon.
	DefaultProbeTimeout = time.Second
)

// GateOptions configure a Gate.
type GateOptions struct {
	// Probe reports whether the API server is back: nil when it is reachable and ready.
	Probe func(ctx context.Context) error
	// Interval, Jitter and Timeout of the probes (defaults above when zero; Jitter < 0 means none).
	Interval time.Duration
	Jitter   float64
	Timeout  time.Duration
	// Clock drives the probe interval (the real clock when nil); tests inject a fake one.
	Clock clock.Clock
	// Server names the API server in logs and errors.
	Server string
	// Logger receives one message when the API server goes away and one when it is back.
	Logger *slog.Logger
}

// Gate makes the Kubernetes clients of a process wait for the API server instead of retrying
// against it while it is down. client-go's watches back off exponentially after failures (up to
// 30 s, doubled by jitter), so after an outage a process would go on sleeping for up to a minute
// after the API server came back. With a Gate:
//
//   - the first request that finds the API server unreachable (connection refused or reset, dial
//     error, EOF, a timeout of the connection, or a 503 answer) marks it down and starts one prober,
//     shared by every client of the process, that asks /readyz every Interval (with jitter);
//   - while it is down, requests wait until the prober sees /readyz answer, or their context ends
//     (a request with a deadline still fails at its deadline, so leader election and status writes
//     behave as before);
//   - while it is down, watches fail at once instead of waiting: a reflector whose watch failed
//     goes back to listing, and its list is what waits. A held watch would resume at a resource
//     version the restarted API server has forgotten, get 410 Gone and make the reflector back off
//     again after the outage; a held list resumes at once with fresh data. A reflector that
//     streams its list as a watch (client-go's WatchListClient, against a 1.34+ API server) has
//     that watch refused too, falls back to a plain list, and that list waits.
//
// So every informer resumes within one probe interval of the API server being ready (or, after an
// outage shorter than client-go's first backoff of 0.8-1.6 s, when that backoff ends). The cost: after
// an outage every informer lists again, where client-go would have tried to resume its watch.
type Gate struct {
	probe    func(ctx context.Context) error
	interval time.Duration
	jitter   float64
	timeout  time.Duration
	clock    clock.Clock
	server   string
	log      *slog.Logger

	waiting atomic.Int32 // requests waiting for the API server

	mu    sync.Mutex
	up    chan struct{} // closed while the API server is reachable; open while it is down
	since time.Time     // when it went down
}

// NewGate returns a Gate that considers the API server reachable until a request says otherwise.
func NewGate(o GateOptions) (*Gate, error) {
	if o.Probe == nil {
		return nil, errors.New("kube.NewGate: Probe is required")
	}
	g := &Gate{
		probe: o.Probe, interval: o.Interval, jitter: o.Jitter, timeout: o.Timeout,
		clock: o.Clock, server: o.Server, log: o.Logger, up: make(chan struct{}),
	}
	close(g.up)
	if g.interval <= 0 {
		g.interval = DefaultProbeInterval
	}
	if g.jitter == 0 {
		g.jitter = DefaultProbeJitter
	}
	if g.timeout <= 0 {
		g.timeout = DefaultProbeTimeout
	}
	if g.clock == nil {
		g.clock = clock.RealClock{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g, nil
}

// Reachable reports whether the API server is considered reachable.
func (g *Gate) Reachable() bool {
	select {
	case <-g.current():
		return true
	default:
		return false
	}
}

// Waiting returns how many requests wait for the API server to come back.
func (g *Gate) Waiting() int { return int(g.waiting.Load()) }

// Wrap returns rt behind the gate. Use it as rest.Config.WrapTransport (see HoldWhileUnreachable).
func (g *Gate) Wrap(rt http.RoundTripper) http.RoundTripper { return &gatedTransport{g: g, next: rt} }

func (g *Gate) current() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up
}

// wait returns once the API server is reachable, or with an error when ctx ends first.
func (g *Gate) wait(ctx context.Context) error {
	up := g.current()
	select {
	case <-up:
		return nil
	default:
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s did not answer /readyz before the request's context ended: %w", ErrAPIServerUnreachable, g.server, ctx.Err())
	}
}

// markDown records that the API server could not be reached and starts the prober, unless it is
// already down.
func (g *Gate) markDown(cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.up:
	default:
		return // already down; the prober runs
	}
	g.up = make(chan struct{})
	g.since = g.clock.Now()
	g.log.Warn("the API server is unreachable; requests wait until it answers /readyz again",
		"server", g.server, "error", cause)
	go g.probeUntilUp(g.up)
}

// probeUntilUp asks /readyz at once, then every interval (with jitter), until it answers; then it
// releases the waiting requests.
func (g *Gate) probeUntilUp(up chan struct{}) {
	var last error
	for n := 0; ; n++ {
		if n > 0 {
			d := g.interval
			if g.jitter > 0 {
				d += time.Duration(rand.Float64() * g.jitter * float64(g.interval)) //nolint:gosec // jitter, not security
			}
			<-g.clock.After(d)
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		err := g.probe(ctx)
		cancel()
		if err == nil {
			break
		}
		if last == nil || err.Error() != last.Error() {
			g.log.Debug("the API server is not ready yet", "server", g.server, "error", err)
		}
		last = err
	}
	g.mu.Lock()
	down := g.clock.Since(g.since)
	close(up)
	g.mu.Unlock()
	g.log.Info("the API server is reachable again; requests resume", "server", g.server, "unreachableFor", down.Round(time.Millisecond).String())
}

// gatedTransport is one client's transport behind the gate.
type gatedTransport struct {
	g    *Gate
	next http.RoundTripper
}

func (t *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	watch := isWatch(req)
	if watch && !t.g.Reachable() {
		return nil, t.g.watchRefused()
	}
	if err := t.g.wait(req.Context()); err != nil {
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		if req.Context().Err() == nil && unreachable(err) {
			t.g.markDown(err)
			if watch {
				// Not the dial error itself: client-go would retry the watch (connection
				// refused) instead of listing again. See Gate.
				return nil, t.g.watchRefused()
			}
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.g.markDown(fmt.Errorf("%s %s answered %s", req.Method, req.URL.Path, resp.Status))
	}
	return resp, nil
}

// watchRefused is the error of a watch asked for while the API server is down. It deliberately
// wraps neither the network error nor any text client-go reads as retriable (EOF, connection
// reset or refused): the reflector must treat it as a failed watch and list again.
func (g *Gate) watchRefused() error {
	return fmt.Errorf("%w: %s is down; a watch starts only after it answers /readyz, with a new list", ErrAPIServerUnreachable, g.server)
}

// CancelRequest passes cancellation on to the wrapped transport (client-go's older code paths).
func (t *gatedTransport) CancelRequest(req *http.Request) {
	type canceler interface{ CancelRequest(*http.Request) }
	if c, ok := t.next.(canceler); ok {
		c.CancelRequest(req)
	}
}

// WrappedRoundTripper lets client-go's transport inspection see through the gate.
func (t *gatedTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// isWatch reports whether req starts a watch (client-go sets watch=true, or 1).
func isWatch(req *http.Request) bool {
	switch req.URL.Query().Get("watch") {
	case "true", "1":
		return true
	}
	return false
}

// unreachable reports whether err means the API server could not be reached or went away, as
// opposed to a refusal it answered with or a TLS misconfiguration (which waiting cannot fix).
func unreachable(err error) bool {
	var op *net.OpError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &op) && op.Op == "dial":
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT):
		return true
	case utilnet.IsProbableEOF(err), utilnet.IsHTTP2ConnectionLost(err), utilnet.IsTimeout(err):
		return true
	}
	return false
}

// HoldWhileUnreachable puts every client built from cfg (and from copies of it) behind one Gate:
// see Gate. The prober asks cfg's /readyz with cfg's own credentials, bypassing the gate. Call it
// once per process, on the configuration every client is made from.
func HoldWhileUnreachable(cfg *rest.Config, log *slog.Logger) (*Gate, error) {
	probeCfg := rest.CopyConfig(cfg)
	probeCfg.Timeout = DefaultProbeTimeout
	hc, err := rest.HTTPClientFor(probeCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the API server's readiness prober: %w", err)
	}
	readyz, err := readyzURL(probeCfg)
	if err != nil {
		return nil, fmt.Errorf("creating the API server's readiness prober: %w", err)
	}
	g, err := NewGate(GateOptions{Probe: ReadyzProbe(hc, readyz.String()), Server: readyz.Host, Logger: log})
	if err != nil {
		return nil, err
	}
	cfg.Wrap(g.Wrap)
	return g, nil
}

// readyzURL is the /readyz of cfg's API server, under the path prefix of its host if it has one.
func readyzURL(cfg *rest.Config) (*url.URL, error) {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, err
	}
	return base.JoinPath("readyz"), nil
}

// ReadyzProbe returns a probe that GETs url (an API server's /readyz) with hc: the API server is
// back when it answers below 500 and not 429. An answer of 401, 403 or 404 counts as back: the
// server is up, and this client may only be barred from asking.
func ReadyzProbe(hc *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}
