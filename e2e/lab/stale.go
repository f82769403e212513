package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-lb/herald/internal/testing/netlab"
)

// RemoveStale removes what interrupted runs left behind: network namespaces of dead processes
// (netlab.RemoveStale), the speakers' CPU-limit cgroups of dead runs (killing what is left in
// them), and every run folder runRoot/<pid> whose pid is gone, after killing the
// processes that still refer to that folder on their command line (etcd, kube-apiserver and the
// controller run in the root namespace, so no namespace removal catches them).
func RemoveStale(runRoot string) error {
	var errs []error
	if err := netlab.RemoveStale(); err != nil {
		errs = append(errs, fmt.Errorf("removing stale namespaces: %w", err))
	}
	if err := removeStaleCgroups(); err != nil {
		errs = append(errs, fmt.Errorf("removing stale CPU cgroups: %w", err))
	}
	entries, err := os.ReadDir(runRoot)
	if errors.Is(err, os.ErrNotExist) {
		return errors.Join(errs...)
	} else if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing %s: %w", runRoot, err))...)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() || pid == os.Getpid() || pidAlive(pid) {
			continue
		}
		dir := filepath.Join(runRoot, e.Name())
		killReferring(dir)
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("removing stale run folder: %w", err))
		}
	}
	return errors.Join(errs...)
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killReferring kills every process whose command line mentions dir and waits (bounded) for them
// to go away.
func killReferring(dir string) {
	pids := referringPIDs(dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for pidAlive(pid) && !zombie(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // not our child: nothing to wait on but /proc
		}
	}
}

func referringPIDs(dir string) []int {
	procs, _ := os.ReadDir("/proc")
	needle := []byte(dir + "/")
	var out []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline = append(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), ' ')
		if bytes.Contains(cmdline, needle) || bytes.Contains(cmdline, []byte(dir+" ")) || bytes.Contains(cmdline, []byte(dir+"=")) {
			out = append(out, pid)
		}
	}
	return out
}

func zombie(pid int) bool {
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err != nil || bytes.Contains(st, []byte(") Z "))
}

// MachineLock is the file whose lock lets one lab run at a time on a machine, whatever checkout it
// comes from: the lab uses fixed addresses and interface names in the root namespace.
const MachineLock = "/run/herald-lab.lock"

// lockRuns creates runRoot and takes an exclusive lock on MachineLock, waiting while another live
// run holds it. The lock goes with the returned file (and with the process, if it dies).
func lockRuns(ctx context.Context, runRoot string, log *slog.Logger) (*os.File, error) {
	if err := os.MkdirAll(runRoot, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", runRoot, err)
	}
	f, err := os.OpenFile(MachineLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lab lock: %w", err)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if !logged {
			log.Info("another lab is running on this machine; waiting for it to end", "lock", f.Name())
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another lab on this machine to end (lock %s): %w", f.Name(), ctx.Err())
		case <-t.C:
		}
	}
}

// removeHostIfaces deletes the root-namespace interfaces named in ifcs and waits, up to wait, until
// the kernel has let them go. Removing a namespace removes the host ends of its veths only later
// (the kernel cleans namespaces up in the background), so a lab that has just ended can still have
// its host interface, and that interface's routes, for a moment after it released the machine lock.
// Whoever holds the lock owns these names, so whatever is left of them is stale.
func removeHostIfaces(ifcs []string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		var left []string
		for _, ifc := range ifcs {
			if _, err := os.Stat(filepath.Join("/sys/class/net", ifc)); err == nil {
				left = append(left, ifc)
				_, _ = run("ip", "link", "del", ifc) // fails when the kernel is already removing it
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interfaces %v are still present %s after removing them (see `ip link`)", left, wait)
		}
		time.Sleep(50 * time.Millisecond) // the kernel gives no event to wait on here
	}
}
