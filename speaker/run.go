package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/metrics"
)

// runnable is a part of the speaker that runs until its context ends.
type runnable interface {
	Start(ctx context.Context) error
}

// shutdownWait bounds how long runAll waits for the parts to return after its context ends (the
// agent's leave included), as controller-runtime's manager does by default.
const shutdownWait = 30 * time.Second

// runAll runs the servers, then the cache, then, once the cache has its first lists, the other
// parts, until ctx ends or one of them fails; it then stops all of them and returns the first
// failure.
func runAll(ctx context.Context, ch *cache.Cache, servers, others []runnable) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := func(r runnable) {
		wg.Go(func() {
			if err := r.Start(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	for _, r := range servers {
		start(r)
	}
	start(ch)
	if ch.WaitForCacheSync(ctx) {
		for _, r := range others {
			start(r)
		}
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		return errors.Join(first, fmt.Errorf("parts still running %s after the stop", shutdownWait))
	}
	return first
}

// httpServer serves handler at addr until its context ends; "0" disables it.
type httpServer struct {
	addr    string
	handler http.Handler
}

func (s httpServer) Start(ctx context.Context) error {
	if s.addr == "" || s.addr == "0" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.addr, err)
	}
	if err := metrics.Serve(ctx, ln, s.handler); err != nil {
		return fmt.Errorf("serving on %s: %w", s.addr, err)
	}
	return nil
}

// healthHandler answers /healthz and /readyz (and their /ping checks) with 200 while the process
// serves: kubelet's liveness and readiness probes.
func healthHandler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	for _, p := range []string{"/healthz", "/readyz", "/healthz/ping", "/readyz/ping"} {
		mux.HandleFunc(p, ok)
	}
	return mux
}

// pprofHandler serves Go's /debug/pprof/ endpoints.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// signalContext ends at the first SIGTERM or SIGINT; a second one exits at once.
func signalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-c
		cancel()
		<-c
		os.Exit(1)
	}()
	return ctx
}
