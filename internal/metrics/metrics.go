// Package metrics serves a binary's Prometheus registry over HTTP. Each binary builds its own
// registry and injects it into the packages that export metrics; nothing registers globally.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server serves /metrics from a gatherer. It implements controller-runtime's Runnable.
type Server struct {
	Addr     string
	Gatherer prometheus.Gatherer
}

// Start listens on Addr and serves until ctx ends. An empty Addr or "0" serves nothing.
func (s Server) Start(ctx context.Context) error {
	if s.Addr == "" || s.Addr == "0" {
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("metrics server on %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server on %s: %w", s.Addr, err)
	}
	return nil
}

// NeedLeaderElection is false: every replica serves its own metrics.
func (Server) NeedLeaderElection() bool { return false }
