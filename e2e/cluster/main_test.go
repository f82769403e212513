package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/cluster"
)

// The package's cluster, shared by the tests, started on first use. A test that needs the machine
// to itself closes it (closeCluster); the next test that needs it starts it again.
var (
	clusterMu  sync.Mutex
	theCluster *cluster.Cluster
	clusterErr error
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "cluster: %v: removing the cluster\n", s)
		closeCluster()
		os.Exit(130)
	}()
	code := m.Run()
	signal.Stop(sig)
	closeCluster()
	return code
}

func closeCluster() {
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if theCluster != nil {
		if err := theCluster.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cluster: removing the cluster:", err)
		}
		theCluster = nil
	}
}

// requireCluster returns the package's cluster (Herald installed from manifests/ with the lab's
// configuration), starting it on first use, or skips the test when this machine cannot run it.
func requireCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	cluster.Require(t)
	clusterMu.Lock()
	defer clusterMu.Unlock()
	if clusterErr != nil {
		t.Fatalf("starting the cluster failed before: %v", clusterErr)
	}
	if theCluster == nil {
		ctx, cancel := context.WithTimeout(context.Background(), lockedStart) // includes waiting for the other lab packages (one machine lock)
		defer cancel()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		start := time.Now()
		c, err := cluster.Start(ctx, cluster.Options{Log: log})
		if err != nil {
			clusterErr = err
			t.Fatalf("starting the cluster: %v", err)
		}
		fmt.Fprintf(os.Stderr, "cluster: up in %v: %v\n", time.Since(start).Round(time.Millisecond), c.Timings)
		theCluster = c
	}
	c := theCluster
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pods:\n%s\n%s\nevents:\n%s", c.PodSummary(context.Background()), c.CrashLogs(context.Background(), 30), c.RecentEvents(context.Background(), 40))
		}
	})
	return c
}

// lockedStart bounds a cluster's start, which includes waiting for the machine lock while the other
// lab packages (e2e, e2e/migration) run beside this one in go test.
const lockedStart = 40 * time.Minute

// deadline returns a context that ends after d or with the test.
func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
