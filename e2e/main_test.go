package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
	"k8s.io/apimachinery/pkg/util/wait"
)

var (
	labOnce sync.Once
	labMu   sync.Mutex
	theLab  *lab.Lab
	labErr  error
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "e2e: %v: removing the lab\n", s)
		closeLab()
		os.Exit(130)
	}()
	code := m.Run()
	signal.Stop(sig)
	if code != 0 {
		labMu.Lock()
		if theLab != nil {
			fmt.Fprintf(os.Stderr, "e2e: logs of the lab's processes (run folder %s):\n%s\n", theLab.RunDir, theLab.LogTails(40))
		}
		labMu.Unlock()
	}
	closeLab()
	return code
}

func closeLab() {
	labMu.Lock()
	defer labMu.Unlock()
	if theLab != nil {
		if err := theLab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: removing the lab:", err)
		}
		theLab = nil
	}
}

// requireLab returns the package's lab, starting it on first use, or skips the test when this
// machine cannot run it.
func requireLab(t *testing.T) *lab.Lab {
	t.Helper()
	lab.RequireMachine(t)
	labOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute) // includes waiting for the other lab packages (they share one machine lock)
		defer cancel()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		l, err := lab.Start(ctx, lab.Options{Log: log})
		if err != nil {
			labErr = err
			return
		}
		labMu.Lock()
		theLab = l
		labMu.Unlock()
		if err := l.ApplyConfig(ctx); err != nil {
			labErr = err
		}
	})
	if labErr != nil {
		t.Fatalf("starting the lab: %v", labErr)
	}
	labMu.Lock()
	defer labMu.Unlock()
	if theLab == nil {
		t.Fatal("the lab was removed (interrupted)")
	}
	return theLab
}

// requireHerald is requireLab for tests that need the Herald processes running: it fails at once,
// with their logs, when one has ended.
func requireHerald(t *testing.T) *lab.Lab {
	t.Helper()
	l := requireLab(t)
	if err := l.CheckHerald(); err != nil {
		t.Fatal(err)
	}
	// Start from a settled cluster: a speaker restarted by an earlier test that is still joining
	// would win back some IPs in the middle of this one.
	if err := waitSpeakersConverged(t.Context(), l); err != nil {
		t.Fatal(withHerald(err, l))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lab logs:\n%s", l.LogTails(30))
		}
	})
	return l
}

// deadline returns a context that ends after d or with the test.
func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace makes a Kubernetes namespace for one test.
func newNamespace(t *testing.T, l *lab.Lab, prefix string) string {
	t.Helper()
	ns, err := l.NewNamespace(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitSpeakersConverged waits until every speaker counts all of them as alive and tells the others
// it is ready (herald_speaker_members and herald_speaker_ready on its metrics endpoint).
func waitSpeakersConverged(ctx context.Context, l *lab.Lab) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := fmt.Sprintf("herald_speaker_members %d\n", len(l.Nodes))
	hc := &http.Client{Timeout: time.Second}
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, n := range l.Nodes {
			u := "http://" + net.JoinHostPort(n.V4.String(), "7472") + "/metrics"
			resp, err := hc.Get(u)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range []string{want, "herald_speaker_ready 1\n"} {
				if !strings.Contains(string(body), w) {
					last = n.Name + " does not report " + strings.TrimSpace(w)
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("speakers did not converge: %s: %w", last, err)
	}
	return nil
}
