package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServerServesRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Server{Addr: addr, Gatherer: reg}.Start(ctx) }()

	var body string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !strings.Contains(body, "herald_test_total 3") {
		t.Errorf("metrics output lacks herald_test_total 3:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v after cancel", err)
	}
}

func TestSecureServerNeedsTheAPIServer(t *testing.T) {
	err := Server{Addr: "127.0.0.1:0", Gatherer: NewRegistry(), Secure: true}.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "Config") {
		t.Fatalf("Start without Config = %v, want an error naming Config", err)
	}
}
