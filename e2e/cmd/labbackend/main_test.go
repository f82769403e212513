package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	waitFor(t, exited, "the ready file", func() bool {
		_, err := os.Stat(ports + ".ready")
		return err == nil
	})
	port := freePort(t)
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

func waitFor(t *testing.T, exited <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("labbackend ended while waiting for %s: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
