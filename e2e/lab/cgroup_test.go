package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/internal/testing/netlab"
)

// TestStartInCgroup starts a CPU hog in a namespace under a 200m quota the way StartSpeaker does,
// and checks that the process is in the cgroup from the start, that the kernel throttles it to
// about its quota, and that the cgroup is removed afterwards.
func TestStartInCgroup(t *testing.T) {
	if err := CgroupCPUAvailable(); err != nil {
		t.Skip(err)
	}
	nl := netlab.ForTest(t)
	ns, err := nl.AddNS("cg")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cgroupCPURoot, fmt.Sprintf("%s%d-test", cgroupPrefix, os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeCgroupsOf(os.Getpid(), true); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(writeFile(filepath.Join(dir, "cpu.cfs_period_us"), "100000"))
	must(writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), "20000"))
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	must(err)
	defer out.Close()
	// The hog reports its own cgroup first: it must already be the lab's, before any work.
	cmd, err := startInCgroup(ns, dir, out, "sh", "-c", "cat /proc/self/cgroup; while :; do :; done")
	must(err)
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()

	start, err := ProcCPUTime(cmd.Process.Pid)
	must(err)
	wall := time.Now()
	timer := time.NewTimer(1500 * time.Millisecond)
	<-timer.C
	used, err := ProcCPUTime(cmd.Process.Pid)
	must(err)
	share := (used - start).Seconds() / time.Since(wall).Seconds()
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	must(err)
	if !strings.Contains("\n"+string(data), "\n"+strconv.Itoa(cmd.Process.Pid)+"\n") {
		t.Errorf("pid %d not in %s (holds %q)", cmd.Process.Pid, dir, data)
	}
	self, err := os.ReadFile(out.Name())
	must(err)
	if !strings.Contains(string(self), ":/"+filepath.Base(dir)+"\n") {
		t.Errorf("the process was not in the cgroup when it started; /proc/self/cgroup:\n%s", self)
	}
	if share > 0.3 {
		t.Errorf("a process limited to 200m used %.2f of a CPU", share)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	must(err)
	var periods, throttled int
	for _, line := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "nr_periods "); ok {
			periods, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "nr_throttled "); ok {
			throttled, _ = strconv.Atoi(v)
		}
	}
	if throttled == 0 {
		t.Errorf("the kernel never throttled the hog (%d periods): is the quota set?\n%s", periods, stat)
	}
	t.Logf("a spinning process limited to 200m used %.2f of a CPU, throttled in %d of %d periods", share, throttled, periods)
}

// TestCPUCgroup: a process started with CPUCgroup.Start is in the cgroup before it runs, the
// kernel throttles it to the quota (Stat counts the throttled periods), and Remove kills what is
// left and removes the cgroup.
func TestCPUCgroup(t *testing.T) {
	if err := CgroupCPUAvailable(); err != nil {
		t.Skip(err)
	}
	nl := netlab.ForTest(t)
	ns, err := nl.AddNS("cgx")
	if err != nil {
		t.Fatal(err)
	}
	cg, err := NewCPUCgroup("hog", 200)
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = cg.Remove()
		}
	})
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("sh", "-c", "cat /proc/self/cgroup; while :; do :; done")
	cmd.Stdout = out
	if err := cg.Start(ns, cmd); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var st CPUStat
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		st, err = cg.Stat()
		return err == nil && st.Throttled > 0, err
	}); err != nil {
		t.Fatalf("the kernel never throttled the hog in 10s (%d periods): is the quota set? %v", st.Periods, err)
	}
	self, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(self), ":/"+filepath.Base(cg.dir)+"\n") {
		t.Errorf("the process was not in the cgroup when it started; /proc/self/cgroup:\n%s", self)
	}
	removed = true
	if err := cg.Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Remove left the process running")
	}
	if _, err := os.Stat(cg.dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left behind (%v)", cg.dir, err)
	}
}
