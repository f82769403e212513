package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on every Linux ABI Go
// supports here).
const userHZ = 100

// ProcessCPU returns the CPU time (user + system, all threads) that process pid has used.
func ProcessCPU(pid int) (time.Duration, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	return st.CPU, nil
}

// Stat is what /proc/PID/stat says of a process.
type Stat struct {
	// Comm is the command name (field 2), without its parentheses.
	Comm string
	// PPID is the parent's process id.
	PPID int
	// CPU is the processor time used, user and system, all threads.
	CPU time.Duration
	// RSSPages is the resident memory in pages.
	RSSPages int64
}

// ReadStat reads /proc/PID/stat of process pid.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	st, err := parseStat(string(b))
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat parses the content of a /proc/PID/stat file (proc_pid_stat(5)).
func parseStat(s string) (Stat, error) {
	// The command name (field 2) may hold spaces and parentheses: count fields after its last
	// closing parenthesis.
	j := strings.IndexByte(s, '(')
	i := strings.LastIndexByte(s, ')')
	if j < 0 || i < j {
		return Stat{}, fmt.Errorf("no command name in parentheses in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime and stime fields 14 and 15, rss field 24.
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("%d fields after the command name, want at least 22", len(f))
	}
	var n [4]int64
	for k, idx := range []int{1, 11, 12, 21} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("field %d: %w", idx+3, err)
		}
		n[k] = v
	}
	return Stat{
		Comm:     s[j+1 : i],
		PPID:     int(n[0]),
		CPU:      time.Duration(n[1]+n[2]) * time.Second / userHZ,
		RSSPages: n[3],
	}, nil
}

// Memory is a process's resident memory, in bytes, from /proc/PID/status.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most resident so far
	Anon int64 // RssAnon: the process's own memory (heap, stacks)
	File int64 // RssFile: mapped files resident, mostly the binary's code and read-only data
}

// ProcessMemory returns the resident memory of process pid.
func ProcessMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("reading the memory of process %d: %w", pid, err)
	}
	var m Memory
	fields := map[string]*int64{"VmRSS": &m.RSS, "VmHWM": &m.Peak, "RssAnon": &m.Anon, "RssFile": &m.File}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		dst := fields[k]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("reading the memory of process %d: %s: %q", pid, k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("reading the memory of process %d: %w", pid, err)
		}
		*dst = n << 10
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("reading the memory of process %d: no VmRSS in /proc/%d/status", pid, pid)
	}
	return m, nil
}

// childPIDs lists the processes whose parent is this process.
func childPIDs() ([]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil && st.PPID == self { // else gone
			out = append(out, pid)
		}
	}
	return out, nil
}

func readComm(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
