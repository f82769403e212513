package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/lab"
)

// Node is one Kubernetes node of the cluster: a topology node running containerd, a kubelet and
// a kube-proxy in its own mount, UTS and PID namespaces.
type Node struct {
	lab.NodeInfo
	// NetNS is the node's network namespace.
	NetNS string
	// PodV4 and PodV6 are the node's pod ranges.
	PodV4, PodV6 netip.Prefix
	// Dir is the node's folder (its /var/lib, /var/log, configuration and logs).
	Dir string
	// Cgroup is the kubelet's cgroup root, a top-level cgroup in every hierarchy.
	Cgroup string

	c     *Cluster
	mu    sync.Mutex
	init  *lab.Proc // unshare, parent of the node's PID 1
	pid1  int       // the node's PID 1 as seen from the host
	procs map[string]*lab.Proc
}

// kubeletLease is the kubelets' node lease duration: renewed every quarter of it.
const kubeletLease = 10

// planNodes fills c.Nodes from the lab's nodes, with pod ranges, and checks that no cluster
// range overlaps a route of the host.
func (c *Cluster) planNodes() error {
	var prefixes []netip.Prefix
	prefixes = append(prefixes, PodSupernets...)
	prefixes = append(prefixes, ServiceCIDRs...)
	routes, err := lab.ReadHostRoutes()
	if err != nil {
		return err
	}
	if err := lab.CheckOverlap(prefixes, routes); err != nil {
		return fmt.Errorf("refusing to start the cluster (run `ip route` to see the host's routes): %w", err)
	}
	for i, ni := range c.Lab.Nodes {
		v4, v6, err := PodCIDRs(i + 1)
		if err != nil {
			return err
		}
		if !ni.V4.IsValid() || !ni.V6.IsValid() {
			return fmt.Errorf("%w: node %s needs an IPv4 and an IPv6 address on %s for a dual-stack cluster", lab.ErrTopology, ni.Name, c.Plan.SegmentIface)
		}
		c.Nodes = append(c.Nodes, &Node{
			NodeInfo: ni, NetNS: c.NS(ni.Name), PodV4: v4, PodV6: v6,
			Dir:    filepath.Join(c.Dir, "nodes", ni.Name),
			Cgroup: c.NS(ni.Name), // hrld-<pid>-<node>: RemoveStale finds it by the pid
			c:      c, procs: map[string]*lab.Proc{},
		})
	}
	return nil
}

// Node returns the cluster node called name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// setupRoutes turns on forwarding in the nodes and routes every pod range: from each node to the
// other nodes' ranges, and from the host (where the API server calls webhooks at pod addresses).
func (c *Cluster) setupRoutes(ctx context.Context) error {
	for _, n := range c.Nodes {
		if _, err := c.Exec(ctx, n.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
			return err
		}
		for _, o := range c.Nodes {
			if o == n {
				continue
			}
			if _, err := c.Exec(ctx, n.Name, "ip", "route", "replace", o.PodV4.String(), "via", o.V4.String()); err != nil {
				return err
			}
			if _, err := c.Exec(ctx, n.Name, "ip", "-6", "route", "replace", o.PodV6.String(), "via", o.V6.String()); err != nil {
				return err
			}
		}
	}
	host := c.hostIface()
	for _, n := range c.Nodes {
		// The routes go with the host's lab interface when the lab is removed.
		if _, err := run(ctx, "ip", "route", "replace", n.PodV4.String(), "via", n.V4.String(), "dev", host); err != nil {
			return err
		}
		if _, err := run(ctx, "ip", "-6", "route", "replace", n.PodV6.String(), "via", n.V6.String(), "dev", host); err != nil {
			return err
		}
	}
	return nil
}

// hostIface is the host's interface on the lab segment (the host end of its link).
func (c *Cluster) hostIface() string {
	for _, l := range c.Topo.Links {
		for _, e := range []lab.Endpoint{l.A, l.B} {
			if c.Topo.Nodes[e.Node].Kind == lab.KindHost {
				return e.Iface
			}
		}
	}
	return ""
}

// startNodes starts every node in parallel and waits until all are Ready.
func (c *Cluster) startNodes(ctx context.Context) error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitNodesReady(ctx, 2*time.Minute)
}

// Start starts the node: its namespaces, containerd with the images imported, the kubelet and
// kube-proxy; then it gives the Node object its pod ranges. It does not wait for Ready.
func (n *Node) Start(ctx context.Context) error {
	c := n.c
	for _, d := range []string{"var-lib", "var-log", "sysctl", "cni", "mnt"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return fmt.Errorf("creating the folders of node %s: %w", n.Name, err)
		}
	}
	cni, err := cniConfig(n.PodV4, n.PodV6)
	if err != nil {
		return err
	}
	kubeKC, err := c.pki.kubeconfig("kubelet-"+n.Name, "https://"+c.APIServer().String(), "system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	proxyKC, err := c.pki.kubeconfig("kube-proxy-"+n.Name, "https://"+c.APIServer().String(), "system:kube-proxy")
	if err != nil {
		return err
	}
	files := map[string]string{
		"cni/10-herald-lab.conflist": string(cni),
		"containerd.toml":            containerdConfig(filepath.Join(n.Dir, "cni")),
		"kubelet.yaml": kubeletConfig(kubeletParams{
			NodeIP: n.V4, CAFile: c.pki.CAFile, CgroupRoot: "/" + n.Cgroup, LeaseSeconds: kubeletLease,
		}),
		"kube-proxy.yaml": kubeProxyConfig(proxyParams{Node: n.Name, NodeIP: n.V4, Kubeconfig: proxyKC, Mode: c.opts.ProxyMode}),
		"init.sh":         nodeInitScript(n.Name, n.Dir, filepath.Join(n.Dir, "ready")),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.Dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing %s of node %s: %w", name, n.Name, err)
		}
	}
	if err := makeCgroup(n.Cgroup); err != nil {
		return err
	}
	c.mu.Lock()
	c.cgroups = append(c.cgroups, n.Cgroup)
	c.mu.Unlock()
	if err := n.startInit(ctx); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	if err := n.importImages(ctx); err != nil {
		return err
	}
	if err := n.startProc("kubelet", filepath.Join(c.Assets, "kubelet"),
		"--config="+filepath.Join(n.Dir, "kubelet.yaml"),
		"--kubeconfig="+kubeKC,
		"--hostname-override="+n.Name,
		"--node-ip="+n.V4.String()+","+n.V6.String(),
		"--v=0",
	); err != nil {
		return err
	}
	if err := n.startProc("kube-proxy", filepath.Join(c.Assets, "kube-proxy"),
		"--config="+filepath.Join(n.Dir, "kube-proxy.yaml"), "--v=0"); err != nil {
		return err
	}
	return n.setPodCIDRs(ctx)
}

// startInit starts the node's namespaces with their first process (nodeInitScript) and waits
// until it has set up the mounts.
func (n *Node) startInit(ctx context.Context) error {
	ready := filepath.Join(n.Dir, "ready")
	_ = os.Remove(ready)
	p, err := lab.StartProc("init-"+n.Name, filepath.Join(n.Dir, "init.log"), lab.RootCommand(
		"nsenter", "--net=/run/netns/"+n.NetNS, "--",
		"unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
		"--", "bash", filepath.Join(n.Dir, "init.sh"),
	))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.init, n.pid1 = p, 0
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		if done, why := p.Exited(); done {
			return false, fmt.Errorf("the init of node %s ended (%w): %s", n.Name, why, p.Tail(20))
		}
		if _, err := os.Stat(ready); err != nil {
			return false, nil
		}
		kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.PID(), p.PID()))
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		f := strings.Fields(string(kids))
		if len(f) != 1 {
			return false, nil
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		n.mu.Lock()
		n.pid1 = pid
		n.mu.Unlock()
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("starting the namespaces of node %s: %w", n.Name, err)
	}
	return nil
}

// PID1 is the host pid of the node's first process.
func (n *Node) PID1() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pid1
}

// enter is the command prefix that runs a program inside the node (all its namespaces).
func (n *Node) enter() []string {
	return []string{"nsenter", "--target", strconv.Itoa(n.PID1()), "--mount", "--uts", "--pid", "--net", "--"}
}

// NodeExec runs a command inside the node (its mount, UTS, PID and network namespaces), for
// example `ctr` or `crictl`, and returns its combined output.
func (n *Node) NodeExec(ctx context.Context, args ...string) (string, error) {
	return run(ctx, append(n.enter(), args...)...)
}

// startProc starts a long-running program inside the node, logging to <node>/<name>.log.
func (n *Node) startProc(name, bin string, args ...string) error {
	p, err := lab.StartProc(name+"-"+n.Name, filepath.Join(n.Dir, name+".log"), lab.RootCommand(append(append(n.enter(), bin), args...)...))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.procs[name] = p
	n.mu.Unlock()
	return nil
}

// Proc returns the node's process called name ("containerd", "kubelet", "kube-proxy"), or nil.
func (n *Node) Proc(name string) *lab.Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.procs[name]
}

// startContainerd starts containerd and waits until it answers.
func (n *Node) startContainerd(ctx context.Context) error {
	if err := n.startProc("containerd", "containerd", "--config", filepath.Join(n.Dir, "containerd.toml")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		if done, why := n.Proc("containerd").Exited(); done {
			return false, fmt.Errorf("containerd of %s ended (%w): %s", n.Name, why, n.Proc("containerd").Tail(20))
		}
		_, last = n.NodeExec(ctx, "ctr", "--address", "/run/containerd/containerd.sock", "version")
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for containerd of %s (last: %w): %w", n.Name, last, err)
	}
	return nil
}

// importImages imports the cluster's image tarballs into the node's containerd (namespace k8s.io,
// where the CRI looks).
func (n *Node) importImages(ctx context.Context) error {
	for _, tar := range n.c.images {
		if _, err := n.NodeExec(ctx, "ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images", "import", tar); err != nil {
			return fmt.Errorf("importing %s into node %s: %w", filepath.Base(tar), n.Name, err)
		}
	}
	return nil
}

// setPodCIDRs waits for the kubelet to register the Node and sets its pod ranges (the CNI
// configuration already uses them; this makes them visible, as a cluster's IPAM would).
func (n *Node) setPodCIDRs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	patch := fmt.Sprintf(`{"spec":{"podCIDR":%q,"podCIDRs":[%q,%q]}}`, n.PodV4, n.PodV4, n.PodV6)
	var last error
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		if err := n.check(); err != nil {
			return false, err
		}
		var node *corev1.Node
		node, last = n.c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(last) {
			return false, nil
		}
		if last != nil {
			return false, nil
		}
		if len(node.Spec.PodCIDRs) == 2 {
			return true, nil
		}
		_, last = n.c.Clientset.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to register (last: %w): %w", n.Name, last, err)
	}
	return nil
}

// check returns an error naming every program of the node that has ended without being stopped.
func (n *Node) check() error {
	n.mu.Lock()
	procs := []*lab.Proc{n.init}
	for _, p := range n.procs {
		procs = append(procs, p)
	}
	n.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if p == nil {
			continue
		}
		if done, why := p.Exited(); done && !p.Stopped() {
			errs = append(errs, fmt.Errorf("%s ended (%w); last lines of %s:\n%s", p.Name, why, p.LogPath, p.Tail(20)))
		}
	}
	return errors.Join(errs...)
}

// Check returns an error naming every program of the cluster (control plane and nodes) that
// ended on its own, with the end of its log.
func (c *Cluster) Check() error {
	var errs []error
	if c.cp != nil {
		errs = append(errs, c.cp.check())
	}
	for _, n := range c.Nodes {
		errs = append(errs, n.check())
	}
	return errors.Join(errs...)
}

// WaitNodesReady waits until every Node is Ready.
func (c *Cluster) WaitNodesReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(context.Context) (bool, error) {
		if err := c.Check(); err != nil {
			return false, err
		}
		list, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := 0
		var notReady []string
		for _, node := range list.Items {
			if nodeReady(&node) {
				ready++
			} else {
				notReady = append(notReady, node.Name)
			}
		}
		last = fmt.Sprintf("%d of %d nodes ready; not ready: %v", ready, len(c.Nodes), notReady)
		return ready == len(c.Nodes), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the nodes to be Ready (%s): %w", last, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stop ends the node: SIGTERM to the kubelet and kube-proxy, then SIGKILL to the node's first
// process, which ends every process of its PID namespace (containerd, shims, containers) and with
// them its mount namespace and every mount in it; then waits until none of them is left.
func (n *Node) stop() error {
	n.mu.Lock()
	init, pid1 := n.init, n.pid1
	n.mu.Unlock()
	if init == nil {
		return nil
	}
	if pid1 > 0 {
		_ = syscall.Kill(pid1, syscall.SIGKILL)
	}
	init.Stop(syscall.SIGKILL, 10*time.Second)
	n.mu.Lock()
	procs := make([]*lab.Proc, 0, len(n.procs))
	for _, p := range n.procs {
		procs = append(procs, p)
	}
	n.mu.Unlock()
	for _, p := range procs {
		p.Stop(syscall.SIGKILL, 10*time.Second)
	}
	// Every process of the PID namespace, containers included, is gone when pid 1's is.
	deadline := time.Now().Add(15 * time.Second)
	for pid1 > 0 && lab.PIDAlive(pid1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // not our child: nothing to wait on but /proc
	}
	if pid1 > 0 && lab.PIDAlive(pid1) {
		return fmt.Errorf("node %s: its first process %d did not end", n.Name, pid1)
	}
	return nil
}

// StopNode stops the whole node as if the machine had failed: every process of it ends at once
// (kubelet, containerd, kube-proxy, pods). StartNode brings it back.
func (c *Cluster) StopNode(name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no cluster node %q", name)
	}
	if err := n.stop(); err != nil {
		return err
	}
	n.mu.Lock()
	n.init, n.pid1, n.procs = nil, 0, map[string]*lab.Proc{}
	n.mu.Unlock()
	return nil
}

// run runs a command in the root namespace and returns its combined output.
func run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// bulkNetworkConfig is the CNI network of AddRoutedVeths: the same ptp plugin as the pods', with
// addresses from a range of its own (10.245.2i.0/23 for node number i) so the pods' range stays
// free.
func bulkNetworkConfig(i int) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"herald-lab-bulk","type":"ptp","ipMasq":false,"mtu":1500,`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.245.%d.0/23"}]],"dataDir":"/var/lib/cni/bulk"}}`, 2*i)
}

// AddRoutedVeths gives the node n more routed veths, on top of its pods': for each, the CNI ptp
// plugin makes a veth whose host end stays in the node, with a route to the pod end, which goes
// into a network namespace of its own inside the node (one namespace per fake pod: ptp routes the
// same subnet in every pod). The namespaces live in the node's /run: they go with the node.
// RemoveRoutedVeths removes them.
func (n *Node) AddRoutedVeths(ctx context.Context, count int) error {
	idx := slices.Index(n.c.Nodes, n) + 1
	conf := filepath.Join(n.Dir, "bulk.conf")
	if err := os.WriteFile(conf, []byte(bulkNetworkConfig(idx)), 0o644); err != nil {
		return err
	}
	script := fmt.Sprintf(`set -eu
for i in $(seq 0 %d); do
  ns=bulk$i
  [ -e /run/netns/$ns ] && continue
  ip netns add $ns
  CNI_COMMAND=ADD CNI_CONTAINERID=bulk-$i CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni /usr/lib/cni/ptp < %q > /dev/null
done
`, count-1, conf)
	if _, err := n.NodeExec(ctx, "bash", "-c", script); err != nil {
		return fmt.Errorf("adding routed veths to %s: %w", n.Name, err)
	}
	return nil
}

// RemoveRoutedVeths removes what AddRoutedVeths made: the namespaces (their veths go with them)
// and the address leases.
func (n *Node) RemoveRoutedVeths(ctx context.Context) error {
	const script = `for f in /run/netns/bulk*; do [ -e "$f" ] && ip netns del "$(basename "$f")"; done; rm -rf /var/lib/cni/bulk; true`
	if _, err := n.NodeExec(ctx, "bash", "-c", script); err != nil {
		return fmt.Errorf("removing routed veths from %s: %w", n.Name, err)
	}
	return nil
}

// SetLink takes the node's segment link (its port on the lab's bridge) down or up again: the node
// drops off the network as if its cable were pulled.
func (c *Cluster) SetLink(ctx context.Context, node string, up bool) error {
	bridge, port := "", ""
	for _, l := range c.Topo.Links {
		for _, pair := range [][2]lab.Endpoint{{l.A, l.B}, {l.B, l.A}} {
			if pair[0].Node == node && pair[0].Iface == c.Plan.SegmentIface && c.Topo.Nodes[pair[1].Node].Kind == lab.KindBridge {
				bridge, port = pair[1].Node, pair[1].Iface
			}
		}
	}
	if port == "" {
		return fmt.Errorf("node %s has no link to the segment's bridge", node)
	}
	state := "down"
	if up {
		state = "up"
	}
	_, err := c.Exec(ctx, bridge, "ip", "link", "set", port, state)
	return err
}

// RestartNode starts a node stopped with StopNode again (its folders, images and pod state are
// kept, as on a rebooted machine) and waits until it is Ready.
func (c *Cluster) RestartNode(ctx context.Context, name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no cluster node %q", name)
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	return c.WaitNodesReady(ctx, 2*time.Minute)
}
