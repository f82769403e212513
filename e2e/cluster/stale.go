package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/netlab"
)

// cgroupMounts returns the mount points of the host's cgroup hierarchies (v1 and v2) under
// /sys/fs/cgroup, from /proc/self/mountinfo.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if t := fields[sep+1]; (t == "cgroup" || t == "cgroup2") && strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
			out = append(out, fields[4])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// makeCgroup creates the top-level cgroup name in every hierarchy (the kubelet wants its cgroup
// root to exist in all of them), seeding cpuset.cpus and cpuset.mems from the parent.
func makeCgroup(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("seeding %s: %w", filepath.Join(dir, f), err)
			}
		}
	}
	return nil
}

// removeCgroup removes the cgroup name, and every cgroup below it, from every hierarchy. Its
// processes must have ended; it retries for a few seconds while the kernel lets go of them.
func removeCgroup(name string) error {
	if name == "" {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := removeTree(filepath.Join(m, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTree removes a cgroup folder depth-first (rmdir only: the files in it are the kernel's).
func removeTree(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs) // children first
	// Whatever still runs in them belongs to the cluster that made them: end it.
	for _, d := range dirs {
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range dirs {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("removing cgroup %s: %w", d, err)
			}
			time.Sleep(20 * time.Millisecond) // the kernel frees a cgroup shortly after its last task
		}
	}
	return nil
}

// stalePID returns the pid of the run that made name ("hrld-<pid>-..."), and whether that run is
// gone (and is not this process).
func stalePID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, netlab.Prefix)
	if !ok {
		return 0, false
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid == os.Getpid() || lab.PIDAlive(pid) {
		return pid, false
	}
	return pid, true
}

// RemoveStale removes what dead cluster runs left on the host that the lab's own cleanup does not
// know about: processes that still use their etcd data, the data itself in /dev/shm, and their
// cgroups. lab.Start has already removed their namespaces (ending every node process in them),
// the processes naming their run folders, and the folders.
func RemoveStale() error {
	var errs []error
	entries, err := os.ReadDir("/dev/shm")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("listing /dev/shm: %w", err))
	}
	for _, e := range entries {
		if _, dead := stalePID(e.Name()); !dead {
			continue
		}
		p := filepath.Join("/dev/shm", e.Name())
		lab.KillReferring(p)
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, m := range mounts {
		entries, err := os.ReadDir(m)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if _, dead := stalePID(e.Name()); dead {
				if err := removeTree(filepath.Join(m, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
