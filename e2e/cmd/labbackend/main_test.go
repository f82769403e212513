package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestSighupOnlyAfterReady checks the handshake the lab runner relies on: the backend makes its
// ready file once a SIGHUP can no longer kill it, and a SIGHUP after that makes it listen on the
// ports the file now lists, while it keeps running.
func TestSighupOnlyAfterReady(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "labbackend")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building labbackend: %v\n%s", err, out)
	}
	ports := filepath.Join(dir, "n1.ports")
	cmd := exec.Command(bin, "-name", "n1", "-ports-file", ports)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := &exitWatch{done: make(chan struct{})}
	go func() { exited.err = cmd.Wait(); close(exited.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited.done
	})

	waitFor(t, exited, "the ready file", func() bool {
		_, err := os.Stat(ports + ".ready")
		return err == nil
	})
	port := testenv.FreePort(t)
	if err := os.WriteFile(ports, fmt.Appendf(nil, "%d\n", port), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, exited, fmt.Sprintf("a listener on port %d", port), func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// exitWatch says when the backend process has ended, and how.
type exitWatch struct {
	done chan struct{}
	err  error // set before done is closed
}

// waitFor polls cond until it holds, failing the test if the backend ends first or 30 s pass.
func waitFor(t *testing.T, exited *exitWatch, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		select {
		case <-exited.done:
			return false, fmt.Errorf("labbackend ended: %w", exited.err)
		default:
		}
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
