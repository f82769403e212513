package netlab

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// ForTest returns a lab that is closed when the test ends, also when the test binary is interrupted
// with Ctrl-C or SIGTERM. It skips the test when namespaces are unavailable (not root).
func ForTest(tb testing.TB) *Lab {
	tb.Helper()
	if err := Available(); err != nil {
		tb.Skipf("skipping: %v", err)
	}
	l, err := New()
	if err != nil {
		tb.Fatalf("netlab: %v", err)
	}
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			_ = l.Close()
			signal.Stop(sig)
			p, _ := os.FindProcess(os.Getpid())
			_ = p.Signal(s)
		case <-done:
		}
	}()
	tb.Cleanup(func() {
		close(done)
		signal.Stop(sig)
		if err := l.Close(); err != nil {
			tb.Errorf("netlab cleanup: %v", err)
		}
	})
	return l
}
