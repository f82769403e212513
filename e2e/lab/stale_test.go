package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/netlab"
)

// TestRemoveStale leaves a run folder of a dead process with a process still referring to it (as
// etcd and kube-apiserver do after the runner is killed), and checks that RemoveStale kills that
// process and removes the folder, but leaves a live run's folder alone.
func TestRemoveStale(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skip(err) // RemoveStale also removes stale namespaces, which needs root
	}
	root := t.TempDir()
	// A PID above pid_max belongs to no process, now or later.
	maxData, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(maxData)))
	if err != nil {
		t.Fatal(err)
	}
	deadDir := filepath.Join(root, strconv.Itoa(pidMax+1))
	liveDir := filepath.Join(root, strconv.Itoa(os.Getpid()))
	for _, d := range []string{deadDir, liveDir} {
		if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	orphan := exec.Command("sh", "-c", "while :; do sleep 1; done", filepath.Join(deadDir, "tmp", "data"))
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()
	t.Cleanup(func() { _ = orphan.Process.Kill() })

	if err := RemoveStale(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("stale run folder still there: %v", err)
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("the live run's folder was removed: %v", err)
	}
	select {
	case err := <-waited:
		if err == nil {
			t.Errorf("the process referring to the stale folder ended on its own")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the process referring to the stale folder was not killed")
	}
}
