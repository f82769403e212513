package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// ProxyMode is kube-proxy's mode.
type ProxyMode string

// kube-proxy modes the cluster lab runs.
const (
	ProxyNFTables ProxyMode = "nftables"
	ProxyIPTables ProxyMode = "iptables"
)

// Addressing of the cluster beyond the topology file: pod ranges and Service ranges.
var (
	// PodSupernets hold every node's pod range (kube-proxy's clusterCIDR).
	PodSupernets = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/48")}
	// ServiceCIDRs are the API server's Service ranges (the same as the process lab's API server).
	ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00:10::/108")}
)

// Images of the cluster lab; none comes from a registry.
const (
	PauseImage   = "herald.dev/lab/pause:v1"
	BackendImage = "herald.dev/lab/backend:v1"
	// HeraldImage is the image manifests/ and the Helm chart name (what `make image` tags).
	HeraldImage = "ghcr.io/herald-lb/herald:v0.1.0"
)

// PodCIDRs returns node number i's pod ranges (i counts from 1 in the sorted node list): one /24
// out of 10.244.0.0/16 and one /64 out of fd00:10:244::/48.
func PodCIDRs(i int) (v4, v6 netip.Prefix, err error) {
	if i < 1 || i > 255 {
		return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("node number %d: want 1 to 255", i)
	}
	v4 = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
	b := PodSupernets[1].Addr().As16()
	b[6], b[7] = 0, byte(i)
	v6 = netip.PrefixFrom(netip.AddrFrom16(b), 64)
	return v4, v6, nil
}

// cniConfig is the node's CNI network: routed point-to-point veths (the `ptp` plugin: the host
// end is not in a bridge and holds a /32 or /128 route to the pod, like Calico and Cilium), with
// addresses from host-local in both families, and portmap for hostPorts.
func cniConfig(podV4, podV6 netip.Prefix) ([]byte, error) {
	type rng struct {
		Subnet string `json:"subnet"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "herald-lab",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    1500,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]rng{{{Subnet: podV4.String()}}, {{Subnet: podV6.String()}}},
					"routes": []route{{Dst: "0.0.0.0/0"}, {Dst: "::/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// containerdConfig is the node's containerd configuration (format version 2, containerd 1.6).
// Paths under /var/lib and /run are the node's own (its mount namespace binds a folder of the run
// over /var/lib and a tmpfs over /run). restrict_oom_score_adj: this machine gives root no
// CAP_SYS_RESOURCE, without which runc fails every container.
func containerdConfig(cniConfDir string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "/run/containerd/containerd.sock"

[debug]
  level = "warn"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
    max_conf_num = 1
`, PauseImage, cniConfDir)
}

// kubeletParams are what differs between the nodes' kubelet configurations.
type kubeletParams struct {
	NodeIP       netip.Addr
	CAFile       string
	CgroupRoot   string
	LeaseSeconds int
}

// kubeletConfig is a node's KubeletConfiguration: cgroupfs on this cgroup v1 host with the
// node's own cgroup root, no swap or kernel-defaults checks (the sysctls it would rewrite are
// private copies in the node's mount namespace), client certificates for the API server's
// requests, and no image garbage collection (nothing could pull an image back).
func kubeletConfig(p kubeletParams) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
serializeImagePulls: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
nodeStatusUpdateFrequency: 4s
nodeLeaseDurationSeconds: %d
maxPods: 110
shutdownGracePeriod: 0s
`, p.NodeIP, p.CAFile, p.CgroupRoot, p.LeaseSeconds)
}

// proxyParams are what differs between the nodes' kube-proxy configurations.
type proxyParams struct {
	Node       string
	NodeIP     netip.Addr
	Kubeconfig string
	Mode       ProxyMode
}

// kubeProxyConfig is a node's KubeProxyConfiguration. Its conntrack settings are all 0 ("leave
// as is"): kube-proxy would otherwise change the host-wide nf_conntrack_max and hash size.
func kubeProxyConfig(p proxyParams) string {
	cidrs := make([]string, len(PodSupernets))
	for i, c := range PodSupernets {
		cidrs[i] = c.String()
	}
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: %s
clusterCIDR: %s
detectLocalMode: ClusterCIDR
healthzBindAddress: %s:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
`, p.Kubeconfig, p.Node, p.Mode, strings.Join(cidrs, ","), p.NodeIP)
}

// nodeInitScript is the first process of a node's PID namespace, run by bash inside the node's
// network namespace and fresh mount and UTS namespaces (private propagation). It gives the node
// its own view of the host: sysfs of its network namespace (with the host's cgroup tree moved
// back on /sys/fs/cgroup), the node's folders over /var/lib and /var/log, a tmpfs on /run (the
// containerd, CNI and pod network namespace paths are hard-coded there), and private copies of
// the host-wide sysctls the kubelet rewrites. It then writes readyFile and reaps orphans until
// it is killed, which ends every process of the node at once.
func nodeInitScript(name, dir, readyFile string) string {
	return fmt.Sprintf(`set -euo pipefail
d=%q
mkdir -p "$d/mnt/cgroup" "$d/var-lib" "$d/var-log" "$d/sysctl"
mount --make-rprivate /
mount --rbind /sys/fs/cgroup "$d/mnt/cgroup"
mount -t sysfs sysfs /sys
mount --move "$d/mnt/cgroup" /sys/fs/cgroup
mount --bind "$d/var-lib" /var/lib
mount --bind "$d/var-log" /var/log
mount -t tmpfs -o mode=0755 tmpfs /run
for f in %s; do
  copy="$d/sysctl/${f//\//.}"
  cat "/proc/sys/$f" > "$copy"
  mount --bind "$copy" "/proc/sys/$f"
done
hostname %q
echo ok > %q
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
`, dir, strings.Join(kubeletSysctls, " "), name, readyFile)
}

// kubeletSysctls are the host-wide sysctls the kubelet writes at start (setupKernelTunables).
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}
