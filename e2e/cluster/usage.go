package cluster

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// Usage is the resources the cluster's processes use: every control-plane process and every
// process of the nodes (containerd, shims, kubelet, kube-proxy, containers).
type Usage struct {
	// CPU is the processor time they have used (user + system) up to the snapshot.
	CPU time.Duration
	// RSS is their resident memory at the snapshot.
	RSS int64
	// Procs is how many there are.
	Procs int
	// RSSByProgram is RSS in MiB by program name (the first word of /proc/<pid>/comm).
	RSSByProgram map[string]int64
}

// Usage sums the resources of the cluster's processes now. Processes that came and went between
// two snapshots are missed, so it suits an idle cluster.
func (c *Cluster) Usage() (Usage, error) {
	type proc struct {
		ppid  int
		cpu   time.Duration
		rssKB int64
		comm  string
	}
	procs := map[int]proc{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return Usage{}, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := testenv.ReadStat(pid)
		if err != nil {
			continue // gone
		}
		procs[pid] = proc{ppid: st.PPID, cpu: st.CPU, rssKB: st.RSSPages * int64(os.Getpagesize()) / 1024, comm: st.Comm}
	}
	roots := map[int]bool{}
	if c.cp != nil {
		for _, p := range c.cp.procs {
			roots[p.PID()] = true
		}
	}
	for _, n := range c.Nodes {
		if pid := n.PID1(); pid > 0 {
			roots[pid] = true
		}
		n.mu.Lock()
		for _, p := range n.procs {
			roots[p.PID()] = true // nsenter, parent of the program
		}
		n.mu.Unlock()
	}
	// Every descendant of a root.
	in := func(pid int) bool {
		for hops := 0; pid > 1 && hops < 64; hops++ {
			if roots[pid] {
				return true
			}
			pid = procs[pid].ppid
		}
		return false
	}
	u := Usage{RSSByProgram: map[string]int64{}}
	for pid, p := range procs {
		if in(pid) {
			u.CPU += p.cpu
			u.RSS += p.rssKB * 1024
			u.Procs++
			u.RSSByProgram[p.comm] += p.rssKB / 1024
		}
	}
	if u.Procs == 0 {
		return u, fmt.Errorf("no process of the cluster found")
	}
	return u, nil
}
