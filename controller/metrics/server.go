package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves /metrics from a gatherer on one address. It implements controller-runtime's
// manager.Runnable (Start) and runs on every replica, leader or not.
type Server struct {
	addr     string
	gatherer prometheus.Gatherer
	log      logr.Logger
}

// NewServer returns a Server for addr (host:port; ":0" picks a free port).
func NewServer(addr string, g prometheus.Gatherer, log logr.Logger) *Server {
	return &Server{addr: addr, gatherer: g, log: log}
}

// NeedLeaderElection reports false: metrics are served by every replica.
func (s *Server) NeedLeaderElection() bool { return false }

// Start listens and serves until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listening for metrics on %s: %w", s.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorLog: nil}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("serving metrics", "address", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx) //nolint:contextcheck // ctx is already done
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving metrics: %w", err)
	}
}
