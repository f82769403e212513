// Package metrics serves a binary's Prometheus registry over HTTP. Each binary builds its own
// registry and injects it into the packages that export metrics; nothing registers globally.
//
// By default the endpoint is HTTPS and answers only clients that present a bearer token the API
// server accepts (TokenReview) and that may get the non-resource URL /metrics
// (SubjectAccessReview), as kube-rbac-proxy did and MetalLB v0.16 does (Reviewer). The speaker runs on the host network, so its
// metrics are reachable from anywhere the node is.
package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
)

// Path is where the metrics are served.
const Path = "/metrics"

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server serves /metrics from a gatherer until its context ends (a controller-runtime Runnable, and
// a part of the speaker's run loop).
type Server struct {
	Addr     string
	Gatherer prometheus.Gatherer
	// Secure serves HTTPS (a self-signed certificate made at start) to authenticated and
	// authorized clients only, checked with the API server at Config. When false, plain HTTP
	// to anyone (a lab, or a node network nobody else reaches).
	Secure bool
	// Config reaches the API server for TokenReviews and SubjectAccessReviews (Secure only).
	Config *rest.Config
	// Log receives authentication and authorization failures (Secure only).
	Log logr.Logger
}

// Start listens on Addr and serves until ctx ends. An empty Addr or "0" serves nothing.
func (s Server) Start(ctx context.Context) error {
	if s.Addr == "" || s.Addr == "0" {
		<-ctx.Done()
		return nil
	}
	handler, err := s.handler()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, handler)
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("metrics server on %s: %w", s.Addr, err)
	}
	if s.Secure {
		cfg, err := selfSignedTLS()
		if err != nil {
			_ = ln.Close()
			return err
		}
		ln = tls.NewListener(ln, cfg)
	}
	if err := Serve(ctx, ln, mux); err != nil {
		return fmt.Errorf("metrics server on %s: %w", s.Addr, err)
	}
	return nil
}

// Serve serves h on ln until ctx ends, then shuts the server down (2 s at most): /metrics, and the
// speaker's health and pprof endpoints.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler returns the promhttp handler, behind the authentication and authorization filter when
// Secure.
func (s Server) handler() (http.Handler, error) {
	h := promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{})
	if !s.Secure {
		return h, nil
	}
	if s.Config == nil {
		return nil, errors.New("metrics server: Secure needs the API server's Config to check clients")
	}
	hc, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		return nil, fmt.Errorf("metrics server: API client for TokenReviews: %w", err)
	}
	rv, err := NewReviewer(s.Config, hc, s.Log)
	if err != nil {
		return nil, err
	}
	return rv.Wrap(h), nil
}

// selfSignedTLS makes a TLS configuration with a new self-signed certificate. Scrapers do not
// verify it (Prometheus: tlsConfig.insecureSkipVerify); the bearer token authenticates them, TLS
// keeps the token off the wire.
func selfSignedTLS() (*tls.Config, error) {
	cert, key, err := certutil.GenerateSelfSignedCertKeyWithFixtures("localhost", []net.IP{{127, 0, 0, 1}}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("metrics server: self-signed certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("metrics server: self-signed certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// NeedLeaderElection is false: every replica serves its own metrics.
func (Server) NeedLeaderElection() bool { return false }
