package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// HostState is what of the host a cluster run could leave changed: the root namespace's sysctls,
// the host's mounts, top-level cgroups, named network namespaces, links, processes and the paths
// the node programs use by default.
type HostState struct {
	Sysctls map[string]string
	Mounts  []string // "mountpoint fstype source", in the host's mount namespace
	Cgroups []string // top-level cgroups, "hierarchy/name"
	NetNS   []string
	Links   []string
	Procs   map[int]string // pid -> command line, of the programs a cluster runs
	Paths   []string       // default paths of containerd, the kubelet and CNI that exist
}

// defaultPaths are where containerd, the kubelet, CNI and runc keep state by default; the
// cluster keeps them inside each node's mount namespace, so none may appear on the host.
var defaultPaths = []string{
	"/var/lib/kubelet", "/var/lib/containerd", "/run/containerd", "/var/lib/cni", "/var/log/pods",
	"/var/log/containers", "/opt/containerd", "/etc/cni/net.d", "/run/runc", "/etc/kubernetes",
}

// clusterPrograms are the programs a cluster runs, as named in their command lines.
var clusterPrograms = []string{
	"containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager",
	"kube-scheduler", "etcd", "/pause", "/labbackend", "/herald-speaker", "/herald-controller",
}

// nodePrograms are the programs only a cluster node runs.
var nodePrograms = []string{"containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy", "/pause", "/labbackend", "/herald-speaker", "/herald-controller"}

// volatileSysctl reports whether a sysctl changes on its own or with links coming and going, and so
// says nothing about what a run left behind.
func volatileSysctl(key string) bool {
	for _, p := range []string{"kernel.random.", "fs.quota.", "fs.dentry-state", "fs.file-nr", "fs.inode-", "kernel.ns_last_pid",
		"kernel.pty.nr", "net.netfilter.nf_conntrack_count", "kernel.sched_domain.", "fs.binfmt_misc.", "net.ipv4.route.gc_", "vm.stat_refresh"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	// Per-interface settings: the links of the host come and go (other tests' labs too).
	for _, p := range []string{"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.", "net.mpls.conf."} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			iface, _, _ := strings.Cut(rest, ".")
			return iface != "all" && iface != "default"
		}
	}
	return false
}

// SnapshotHost reads the host's state.
func SnapshotHost() (HostState, error) {
	s := HostState{Sysctls: map[string]string{}, Procs: map[int]string{}}
	err := filepath.WalkDir("/proc/sys", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil //nolint:nilerr // unreadable entries are skipped
		}
		key := strings.ReplaceAll(strings.TrimPrefix(p, "/proc/sys/"), "/", ".")
		if volatileSysctl(key) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o444 == 0 {
			return nil //nolint:nilerr // write-only entries
		}
		v, err := os.ReadFile(p)
		if err == nil {
			s.Sysctls[key] = strings.TrimSpace(string(v))
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("reading sysctls: %w", err)
	}
	if v, err := os.ReadFile("/sys/module/nf_conntrack/parameters/hashsize"); err == nil {
		s.Sysctls["module.nf_conntrack.hashsize"] = strings.TrimSpace(string(v))
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return s, fmt.Errorf("reading mounts: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(mi))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		s.Mounts = append(s.Mounts, f[4]+" "+f[sep+1]+" "+f[sep+2])
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return s, err
	}
	for _, m := range mounts {
		entries, _ := os.ReadDir(m)
		for _, e := range entries {
			if e.IsDir() {
				s.Cgroups = append(s.Cgroups, filepath.Base(m)+"/"+e.Name())
			}
		}
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			s.NetNS = append(s.NetNS, e.Name())
		}
	}
	if entries, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range entries {
			s.Links = append(s.Links, e.Name())
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		for _, prog := range clusterPrograms {
			if args[0] == prog || (!strings.HasPrefix(prog, "/") && filepath.Base(args[0]) == prog) {
				s.Procs[pid] = strings.Join(args, " ")
			}
		}
	}
	for _, p := range defaultPaths {
		if _, err := os.Lstat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	return s, nil
}

// Leftovers compares the host after a run (s) with before it: sysctls that changed, and every
// mount, cgroup, namespace, link, process or default path that is new and mentions one of marks
// (a run's pid, as in hrld-<pid>-, or its run folder) or belongs to the cluster's programs or
// paths. It returns one line per leftover.
func (s HostState) Leftovers(before HostState, marks ...string) []string {
	return s.diff(before, false, marks)
}

// Traces is Leftovers restricted to what mentions one of marks: the traces of one run while
// other runs may be up.
func (s HostState) Traces(before HostState, marks ...string) []string {
	return s.diff(before, true, marks)
}

func (s HostState) diff(before HostState, strict bool, marks []string) []string {
	var out []string
	if !strict {
		for k, v := range before.Sysctls {
			if now, ok := s.Sysctls[k]; ok && now != v {
				out = append(out, fmt.Sprintf("sysctl %s: %q, was %q", k, now, v))
			}
		}
	}
	mentions := func(x string) bool {
		for _, m := range marks {
			if strings.Contains(x, m) {
				return true
			}
		}
		return false
	}
	added := func(kind string, now, was []string, all bool) {
		for _, x := range now {
			if !slices.Contains(was, x) && (all || mentions(x)) {
				out = append(out, kind+" "+x)
			}
		}
	}
	added("mount", s.Mounts, before.Mounts, false)
	added("cgroup", s.Cgroups, before.Cgroups, false)
	added("netns", s.NetNS, before.NetNS, false)
	added("link", s.Links, before.Links, false)
	added("path", s.Paths, before.Paths, !strict)
	for pid, cmd := range s.Procs {
		if _, ok := before.Procs[pid]; ok {
			continue
		}
		// Other labs on the machine run their own etcd and kube-apiserver: only the node
		// programs are the cluster's whatever their command line says.
		prog, _, _ := strings.Cut(cmd, " ")
		node := slices.Contains(nodePrograms, filepath.Base(prog)) || slices.Contains(nodePrograms, prog)
		if (node && !strict) || mentions(cmd) {
			out = append(out, fmt.Sprintf("process %d: %s", pid, cmd))
		}
	}
	slices.Sort(out)
	return out
}
