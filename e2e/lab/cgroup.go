package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU limits for speakers
//
// A speaker in a DaemonSet runs under a CFS CPU quota (resources.limits.cpu: 500m is a quota of
// 50 ms per 100 ms period). LimitSpeakerCPU gives a lab speaker the same: a cgroup (v1 cpu
// controller) of its own with that quota, holding the speaker's process from before it execs
// (StartSpeaker) or from the moment the limit is set (a running speaker is moved in). The cgroups
// are named herald-lab-<pid>-<node>; Close, LimitSpeakerCPU(node, 0) and RemoveStale remove them.

// cgroupCPURoot is the cgroup v1 cpu hierarchy.
const cgroupCPURoot = "/sys/fs/cgroup/cpu"

// cfsPeriod is the CFS period the lab sets, the kubelet's default.
const cfsPeriod = 100 * time.Millisecond

// ErrNoCgroupCPU means this machine has no cgroup v1 cpu controller the lab can use.
var ErrNoCgroupCPU = errors.New("no cgroup v1 cpu controller with CFS quota at " + cgroupCPURoot)

// CgroupCPUAvailable returns nil when LimitSpeakerCPU can work on this machine.
func CgroupCPUAvailable() error {
	if _, err := os.Stat(filepath.Join(cgroupCPURoot, "cpu.cfs_quota_us")); err != nil {
		return fmt.Errorf("%w (cgroup v2 hosts are not supported by the lab yet): %w", ErrNoCgroupCPU, err)
	}
	return nil
}

const cgroupPrefix = "herald-lab-"

func (l *Lab) cgroupDir(node string) string {
	return filepath.Join(cgroupCPURoot, fmt.Sprintf("%s%d-%s", cgroupPrefix, os.Getpid(), node))
}

// LimitSpeakerCPU limits node's speaker to milliCPU thousandths of a CPU (500: the DaemonSet's
// 500m), now if it runs and whenever StartSpeaker starts it again. 0 removes the limit: the
// running speaker is moved back to the root cgroup and the cgroup is removed.
func (l *Lab) LimitSpeakerCPU(node string, milliCPU int) error {
	if _, ok := l.Node(node); !ok {
		return fmt.Errorf("no lab node %q", node)
	}
	if milliCPU < 0 {
		return fmt.Errorf("CPU limit of %s: %d millicores, want 0 (none) or more", node, milliCPU)
	}
	if err := CgroupCPUAvailable(); err != nil {
		return err
	}
	dir := l.cgroupDir(node)
	p := l.Proc("speaker-" + node)
	running := p != nil
	if running {
		running, _ = p.Exited()
		running = !running
	}
	if milliCPU == 0 {
		l.mu.Lock()
		delete(l.cpuLimits, node)
		l.mu.Unlock()
		if running {
			if err := writeFile(filepath.Join(cgroupCPURoot, "cgroup.procs"), strconv.Itoa(p.PID())); err != nil {
				return fmt.Errorf("moving the speaker of %s out of its cgroup: %w", node, err)
			}
		}
		return removeCgroup(dir)
	}
	if err := makeCPUCgroup(dir, milliCPU); err != nil {
		return err
	}
	l.mu.Lock()
	l.cpuLimits[node] = milliCPU
	l.mu.Unlock()
	if running {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(p.PID())); err != nil {
			return fmt.Errorf("moving the speaker of %s into %s: %w", node, dir, err)
		}
	}
	return nil
}

// speakerCgroup returns the cgroup the node's speaker must start in, "" for none.
func (l *Lab) speakerCgroup(node string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cpuLimits[node] == 0 {
		return ""
	}
	return l.cgroupDir(node)
}

// startInCgroup starts args in namespace ns inside cgroup dir (startCmdInCgroup), in a process
// group of its own, with its output to out.
func startInCgroup(ns, dir string, out *os.File, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startCmdInCgroup(ns, dir, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// startCmdInCgroup starts cmd inside network namespace ns (the host's when ns is "") as a member
// of cgroup dir from before it execs. `ip netns exec` hides /sys/fs/cgroup (it mounts a fresh
// /sys), so the cgroup's procs file is opened here and handed down as file descriptor 3, and a
// shell writes its own pid there before it execs the command. cmd's Stdin, Stdout, Stderr, Env and
// SysProcAttr are kept (a process without SysProcAttr is killed if the caller's thread dies).
func startCmdInCgroup(ns, dir string, cmd *exec.Cmd) error {
	procs, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	defer procs.Close()
	var args []string
	if ns != "" {
		args = append(args, "ip", "netns", "exec", ns)
	}
	args = append(args, "sh", "-c", `echo $$ >&3 && exec "$@" 3>&-`, "sh", cmd.Path)
	args = append(args, cmd.Args[1:]...)
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	name := filepath.Base(cmd.Path)
	cmd.Path, cmd.Args = path, args
	cmd.ExtraFiles = append([]*os.File{procs}, cmd.ExtraFiles...)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s in namespace %q under cgroup %s: %w", name, ns, dir, err)
	}
	return nil
}

// CPUStat is a cgroup's CFS accounting (cpu.stat).
type CPUStat struct {
	// Periods is the number of CFS periods with runnable tasks; Throttled how many of them ran
	// out of quota; ThrottledTime the total time the tasks were held back.
	Periods, Throttled int64
	ThrottledTime      time.Duration
}

// SpeakerCPUStat returns the CFS accounting of node's speaker cgroup.
func (l *Lab) SpeakerCPUStat(node string) (CPUStat, error) {
	dir := l.speakerCgroup(node)
	if dir == "" {
		return CPUStat{}, fmt.Errorf("the speaker of %s has no CPU limit", node)
	}
	st, err := readCPUStat(dir)
	if err != nil {
		return CPUStat{}, fmt.Errorf("reading the CPU accounting of %s: %w", node, err)
	}
	return st, nil
}

// readCPUStat reads the cpu.stat of the cgroup at dir.
func readCPUStat(dir string) (CPUStat, error) {
	f, err := os.Open(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return CPUStat{}, err
	}
	defer f.Close()
	var st CPUStat
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "nr_periods":
			st.Periods = n
		case "nr_throttled":
			st.Throttled = n
		case "throttled_time":
			st.ThrottledTime = time.Duration(n)
		}
	}
	return st, sc.Err()
}

// CPUCgroup is a cgroup with a CFS quota for processes other than the lab's speakers (the
// membership test's members). It is named like the speakers' cgroups (herald-lab-<pid>-<name>),
// so RemoveStale removes it, and what is left in it, after an interrupted run.
type CPUCgroup struct {
	dir string
}

// NewCPUCgroup creates the cgroup name with a quota of milliCPU thousandths of a CPU per CFS
// period (500: a DaemonSet's 500m). It first removes the cgroups of dead runs.
func NewCPUCgroup(name string, milliCPU int) (*CPUCgroup, error) {
	if err := CgroupCPUAvailable(); err != nil {
		return nil, err
	}
	if milliCPU <= 0 {
		return nil, fmt.Errorf("CPU limit of cgroup %s: %d millicores, want more than 0", name, milliCPU)
	}
	_ = removeStaleCgroups() // what cannot be removed now is tried again by the next run
	dir := filepath.Join(cgroupCPURoot, fmt.Sprintf("%s%d-%s", cgroupPrefix, os.Getpid(), name))
	if err := makeCPUCgroup(dir, milliCPU); err != nil {
		return nil, err
	}
	return &CPUCgroup{dir: dir}, nil
}

// makeCPUCgroup creates (or keeps) the cgroup at dir with a quota of milliCPU thousandths of a CPU
// per cfsPeriod; on failure the cgroup is removed.
func makeCPUCgroup(dir string, milliCPU int) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	period := cfsPeriod.Microseconds()
	if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)); err != nil {
		return errors.Join(err, removeCgroup(dir))
	}
	if err := writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(period*int64(milliCPU)/1000, 10)); err != nil {
		return errors.Join(err, removeCgroup(dir))
	}
	return nil
}

// Start starts cmd inside network namespace ns (the host's when ns is "") as a member of the
// cgroup from before it execs, like the lab's speakers (see startCmdInCgroup).
func (c *CPUCgroup) Start(ns string, cmd *exec.Cmd) error {
	return startCmdInCgroup(ns, c.dir, cmd)
}

// Stat returns the cgroup's CFS accounting.
func (c *CPUCgroup) Stat() (CPUStat, error) {
	st, err := readCPUStat(c.dir)
	if err != nil {
		return CPUStat{}, fmt.Errorf("reading the CPU accounting of %s: %w", c.dir, err)
	}
	return st, nil
}

// Remove kills what is left in the cgroup and removes it.
func (c *CPUCgroup) Remove() error {
	killCgroupProcs(c.dir)
	return removeCgroup(c.dir)
}

// SpeakerInCgroup reports whether node's running speaker process is in its CPU-limit cgroup.
func (l *Lab) SpeakerInCgroup(node string) (bool, error) {
	dir := l.speakerCgroup(node)
	p := l.Proc("speaker-" + node)
	if dir == "" || p == nil {
		return false, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", dir, err)
	}
	return strings.Contains("\n"+string(data), "\n"+strconv.Itoa(p.PID())+"\n"), nil
}

// ProcCPUTime returns the CPU time (user and system) a process has used so far.
func ProcCPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of %d: %w", pid, err)
	}
	// Fields after the command name, which may contain spaces, in parentheses.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("reading the CPU time of %d: short stat %q", pid, data)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz, nil
}

// removeCgroups removes this run's cgroups (after their processes are gone).
func (l *Lab) removeCgroups() error {
	l.mu.Lock()
	clear(l.cpuLimits)
	l.mu.Unlock()
	return removeCgroupsOf(os.Getpid(), false)
}

// removeCgroupsOf removes the lab cgroups of run pid; with kill, it first kills the processes
// still in them (leftovers of a dead run).
func removeCgroupsOf(pid int, kill bool) error {
	entries, err := os.ReadDir(cgroupCPURoot)
	if err != nil {
		return nil //nolint:nilerr // no cgroup v1 cpu hierarchy: nothing was made
	}
	prefix := fmt.Sprintf("%s%d-", cgroupPrefix, pid)
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(cgroupCPURoot, e.Name())
		if kill {
			killCgroupProcs(dir)
		}
		errs = append(errs, removeCgroup(dir))
	}
	return errors.Join(errs...)
}

// killCgroupProcs sends SIGKILL to every process in the cgroup at dir.
func killCgroupProcs(dir string) {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// removeStaleCgroups removes the lab cgroups of dead runs, killing what is left in them.
func removeStaleCgroups() error {
	var errs []error
	for _, pid := range staleCgroupRuns() {
		errs = append(errs, removeCgroupsOf(pid, true))
	}
	return errors.Join(errs...)
}

// staleCgroupRuns returns the run pids of lab cgroups whose run is gone.
func staleCgroupRuns() []int {
	entries, err := os.ReadDir(cgroupCPURoot)
	if err != nil {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || pidAlive(pid) || seen[pid] {
			continue
		}
		seen[pid] = true
		out = append(out, pid)
	}
	return out
}

// removeCgroup removes an empty cgroup, waiting (bounded) for processes that are still exiting.
func removeCgroup(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond) // the kernel empties it when the last task is reaped
	}
}

func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, path, err)
	}
	return nil
}
