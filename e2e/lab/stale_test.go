package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/netlab"
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

// TestRemoveHostIfacesAfterNamespace makes a veth whose host end carries a route and whose other end
// lives in a namespace, removes the namespace (the kernel then removes the host end only later), and
// checks that removeHostIfaces returns only once the interface and its route are gone: the next lab
// checks the host's routes right after.
func TestRemoveHostIfacesAfterNamespace(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skip(err)
	}
	ns := netlab.NSName("hostif")
	ifc := "hrldt" + strconv.Itoa(os.Getpid()%100000)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", ifc).Run()
	})
	for _, args := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", ifc, "type", "veth", "peer", "name", "p0", "netns", ns},
		{"ip", "addr", "add", "198.51.100.250/31", "dev", ifc},
		{"ip", "link", "set", ifc, "up"},
		{"ip", "netns", "del", ns},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	if err := removeHostIfaces([]string{ifc}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", ifc)); err == nil {
		t.Errorf("%s still exists", ifc)
	}
	routes, err := ReadHostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dev == ifc {
			t.Errorf("route %v dev %s is still there", r.Dst, ifc)
		}
	}
}
