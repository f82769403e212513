package cluster

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestPodCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		i       int
		v4, v6  string
		wantErr bool
	}{
		{name: "first node", i: 1, v4: "10.244.1.0/24", v6: "fd00:10:244:1::/64"},
		{name: "third node", i: 3, v4: "10.244.3.0/24", v6: "fd00:10:244:3::/64"},
		{name: "last", i: 255, v4: "10.244.255.0/24", v6: "fd00:10:244:ff::/64"},
		{name: "zero", i: 0, wantErr: true},
		{name: "too many", i: 256, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v4, v6, err := PodCIDRs(tc.i)
			if (err != nil) != tc.wantErr {
				t.Fatalf("PodCIDRs(%d) error %v, want error %v", tc.i, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff([]string{tc.v4, tc.v6}, []string{v4.String(), v6.String()}); diff != "" {
				t.Errorf("PodCIDRs(%d) (-want +got):\n%s", tc.i, diff)
			}
			for _, p := range []netip.Prefix{v4, v6} {
				if !PodSupernets[0].Contains(p.Addr()) && !PodSupernets[1].Contains(p.Addr()) {
					t.Errorf("%s is outside the pod supernets %v (kube-proxy's clusterCIDR)", p, PodSupernets)
				}
			}
		})
	}
}

// TestCNIConfig checks the CNI network is routed point-to-point veths (ptp, no bridge) with
// addresses of both families and default routes in both.
func TestCNIConfig(t *testing.T) {
	data, err := cniConfig(netip.MustParsePrefix("10.244.2.0/24"), netip.MustParsePrefix("fd00:10:244:2::/64"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type string `json:"type"`
			IPAM struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
				Routes []map[string]string   `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	var types []string
	for _, p := range conf.Plugins {
		types = append(types, p.Type)
	}
	if diff := cmp.Diff([]string{"ptp", "portmap"}, types); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	ipam := conf.Plugins[0].IPAM
	got := []string{ipam.Type, ipam.Ranges[0][0]["subnet"], ipam.Ranges[1][0]["subnet"], ipam.Routes[0]["dst"], ipam.Routes[1]["dst"]}
	want := []string{"host-local", "10.244.2.0/24", "fd00:10:244:2::/64", "0.0.0.0/0", "::/0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ipam (-want +got):\n%s", diff)
	}
}

// TestKubeProxyConfig checks that kube-proxy leaves the host-wide conntrack settings alone and
// gets the mode and the cluster ranges.
func TestKubeProxyConfig(t *testing.T) {
	for _, mode := range []ProxyMode{ProxyNFTables, ProxyIPTables} {
		t.Run(string(mode), func(t *testing.T) {
			var cfg map[string]any
			text := kubeProxyConfig(proxyParams{Node: "n1", NodeIP: netip.MustParseAddr("198.51.100.11"), Kubeconfig: "/k", Mode: mode})
			if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
				t.Fatalf("%v:\n%s", err, text)
			}
			got := map[string]any{"mode": cfg["mode"], "clusterCIDR": cfg["clusterCIDR"], "hostnameOverride": cfg["hostnameOverride"], "conntrack": cfg["conntrack"]}
			want := map[string]any{
				"mode": string(mode), "clusterCIDR": "10.244.0.0/16,fd00:10:244::/48", "hostnameOverride": "n1",
				"conntrack": map[string]any{"maxPerCore": float64(0), "min": float64(0), "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s", "udpTimeout": "0s", "udpStreamTimeout": "0s"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("kube-proxy configuration (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKubeletConfig checks the settings this host needs and that image GC is off.
func TestKubeletConfig(t *testing.T) {
	text := kubeletConfig(kubeletParams{NodeIP: netip.MustParseAddr("198.51.100.12"), CAFile: "/ca", CgroupRoot: "/hrld-1-n2", LeaseSeconds: 10})
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
	want := map[string]any{
		"address": "198.51.100.12", "cgroupDriver": "cgroupfs", "cgroupRoot": "/hrld-1-n2", "failCgroupV1": false,
		"failSwapOn": false, "protectKernelDefaults": false, "imageGCHighThresholdPercent": float64(100),
		"nodeLeaseDurationSeconds": float64(10),
	}
	got := map[string]any{}
	for k := range want {
		got[k] = cfg[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kubelet configuration (-want +got):\n%s", diff)
	}
}

// TestNodeInitScript checks the node's first process makes every private mount the notes call
// for, and copies each sysctl the kubelet writes.
func TestNodeInitScript(t *testing.T) {
	s := nodeInitScript("n1", "/run/x/n1", "/run/x/n1/ready")
	for _, want := range []string{
		"mount --make-rprivate /", "mount -t sysfs sysfs /sys", `mount --move "$d/mnt/cgroup" /sys/fs/cgroup`,
		`mount --bind "$d/var-lib" /var/lib`, `mount --bind "$d/var-log" /var/log`, "mount -t tmpfs -o mode=0755 tmpfs /run",
		`hostname "n1"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
	for _, f := range kubeletSysctls {
		if !strings.Contains(s, f) {
			t.Errorf("init script does not copy %s", f)
		}
	}
}

func TestStalePID(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		dead bool
	}{
		{name: "not ours", in: "kubepods", dead: false},
		{name: "bad pid", in: "hrld-x-n1", dead: false},
		{name: "pid 1 lives", in: "hrld-1-n1", dead: false},
		{name: "no such pid", in: "hrld-2147483646-n1", dead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, dead := stalePID(tc.in); dead != tc.dead {
				t.Errorf("stalePID(%q) dead = %v, want %v", tc.in, dead, tc.dead)
			}
		})
	}
}
