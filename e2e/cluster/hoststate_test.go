package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHostStateDiff(t *testing.T) {
	before := HostState{
		Sysctls: map[string]string{"kernel.panic": "0", "vm.overcommit_memory": "0"},
		Mounts:  []string{"/ ext4 /dev/vda"},
		Cgroups: []string{"memory/process_api"},
		NetNS:   []string{"hrld-7-sw"},
		Procs:   map[int]string{1: "init"},
	}
	after := HostState{
		Sysctls: map[string]string{"kernel.panic": "10", "vm.overcommit_memory": "0"},
		Mounts:  []string{"/ ext4 /dev/vda", "/run/netns/hrld-42-n1 nsfs nsfs", "/other tmpfs tmpfs"},
		Cgroups: []string{"memory/process_api", "memory/hrld-42-n1", "cpu/someone-else"},
		NetNS:   []string{"hrld-7-sw", "hrld-42-n1", "hrld-8-x"},
		Procs: map[int]string{
			1: "init", 10: "/usr/bin/containerd --config /r/42/n1", 11: "/pause",
			12: "/usr/bin/etcd --data-dir=/tmp/other", 13: "/usr/bin/etcd --data-dir=/dev/shm/hrld-42-etcd",
		},
		Paths: []string{"/var/lib/kubelet"},
	}
	for _, tc := range []struct {
		name   string
		strict bool
		want   []string
	}{
		{name: "leftovers", want: []string{
			"cgroup memory/hrld-42-n1",
			"mount /run/netns/hrld-42-n1 nsfs nsfs",
			"netns hrld-42-n1",
			"path /var/lib/kubelet",
			"process 10: /usr/bin/containerd --config /r/42/n1",
			"process 11: /pause",
			"process 13: /usr/bin/etcd --data-dir=/dev/shm/hrld-42-etcd",
			`sysctl kernel.panic: "10", was "0"`,
		}},
		{name: "traces of run 42 only", strict: true, want: []string{
			"cgroup memory/hrld-42-n1",
			"mount /run/netns/hrld-42-n1 nsfs nsfs",
			"netns hrld-42-n1",
			"process 13: /usr/bin/etcd --data-dir=/dev/shm/hrld-42-etcd",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := after.diff(before, tc.strict, []string{"hrld-42-"})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestVolatileSysctl(t *testing.T) {
	for key, want := range map[string]bool{
		"kernel.random.uuid":                 true,
		"net.ipv4.conf.hrld-ctl.forwarding":  true,
		"net.ipv4.conf.all.forwarding":       false,
		"net.ipv6.neigh.eth0.base_reachable": true,
		"net.ipv6.neigh.default.gc_thresh1":  false,
		"kernel.panic":                       false,
		"net.netfilter.nf_conntrack_max":     false,
		"net.netfilter.nf_conntrack_count":   true,
		"fs.file-nr":                         true,
		"kernel.keys.root_maxbytes":          false,
	} {
		if got := volatileSysctl(key); got != want {
			t.Errorf("volatileSysctl(%q) = %v, want %v", key, got, want)
		}
	}
}
