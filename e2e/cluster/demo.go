package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/lab"
)

// Demo shows Herald at work on the cluster, step by step, on w (`make demo`): the nodes
// and Herald's pods, a Deployment of backends, a dual-stack Service announced over layer 2 and
// one over BGP, who announces them, curl through each IP from the segment client and from behind
// the router, and the router's ECMP routes. It leaves the Deployment and Services in place and
// returns commands to poke at the cluster.
func (c *Cluster) Demo(ctx context.Context, w io.Writer) (hints string, err error) {
	d := &demo{Narrator: lab.Narrator{W: w, Run: c, Ctx: ctx}, c: c}
	if err := d.run(); err != nil {
		return "", err
	}
	return d.hints(), nil
}

type demo struct {
	lab.Narrator
	c           *Cluster
	ns          string
	l2IP, bgpIP netip.Addr
}

func (d *demo) run() error {
	c, ctx := d.c, d.Ctx
	d.Step("A Kubernetes cluster in network namespaces: per node containerd, kubelet and kube-proxy (%s); pods on routed veths (CNI ptp)", c.opts.ProxyMode)
	if err := d.Show("kubectl", "get", "nodes", "-o", "wide"); err != nil {
		return err
	}
	d.Step("Herald, installed from its own manifests (speaker DaemonSet, controller Deployment, webhook Service)")
	if err := d.Show("kubectl", "get", "pods,svc", "-n", Namespace, "-o", "wide"); err != nil {
		return err
	}
	if err := d.Show("kubectl", "get", "ipaddresspools,l2advertisements,bgpadvertisements,bgppeers", "-n", Namespace); err != nil {
		return err
	}

	d.Step("A Deployment of three backend pods (they answer with the name of their node) and two dual-stack LoadBalancer Services")
	var err error
	if d.ns, err = c.NewNamespace(ctx, "demo"); err != nil {
		return err
	}
	if _, err := c.CreateBackend(ctx, Backend{Namespace: d.ns, Name: "web", Replicas: 3, OnePerNode: true}); err != nil {
		return err
	}
	if _, err := c.WaitReadyPods(ctx, d.ns, "web", 3); err != nil {
		return err
	}
	dual := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	for _, s := range []LBService{
		{Namespace: d.ns, Name: "web-l2", App: "web", Pool: lab.L2PoolName, Families: dual},
		{Namespace: d.ns, Name: "web-bgp", App: "web", Pool: lab.BGPPoolName, Families: dual},
	} {
		if _, err := c.CreateLBService(ctx, s); err != nil {
			return err
		}
	}
	l2ips, err := c.WaitIngress(ctx, d.ns, "web-l2", 2)
	if err != nil {
		return err
	}
	bgpips, err := c.WaitIngress(ctx, d.ns, "web-bgp", 2)
	if err != nil {
		return err
	}
	d.l2IP, d.bgpIP = l2ips[0], bgpips[0]
	if err := d.Show("kubectl", "get", "pods,svc,endpointslices", "-n", d.ns, "-o", "wide"); err != nil {
		return err
	}

	d.Step("Who announces them: one node per layer-2 IP answers ARP/NDP; every node advertises the BGP IPs to rt")
	for _, ip := range l2ips {
		if _, err := c.WaitCurl(ctx, "l2client", ip, 80, nil); err != nil {
			return err
		}
	}
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		o, err := c.L2Owners(ctx, d.ns, "web-l2")
		b, err2 := c.BGPNodes(ctx, d.ns, "web-bgp")
		return err == nil && err2 == nil && len(o) >= 1 && len(b) == len(c.Nodes), nil
	}); err != nil {
		return fmt.Errorf("waiting for the status objects of the demo Services: %w", err)
	}
	if err := d.Show("kubectl", "get", "servicel2statuses,servicebgpstatuses", "-A"); err != nil {
		return err
	}
	for _, ip := range l2ips {
		mac, err := c.NeighborMAC(ctx, "l2client", ip)
		if err != nil {
			return err
		}
		who, err := c.NodeByMAC(ctx, mac)
		if err != nil {
			return err
		}
		d.Printf("web-l2 %s: l2client resolved it to %s, the MAC address of %s\n", ip, mac, who)
	}

	d.Step("curl through each IP: kube-proxy on the receiving node sends the request to one of the pods")
	for _, ip := range l2ips {
		if err := d.Show("l2client", "curl", "-sS", "--max-time", "2", lab.URL(ip, 80)); err != nil {
			return err
		}
	}
	for _, ip := range bgpips {
		if _, err := c.Router.WaitKernelNextHops(ctx, lab.HostPrefix(ip), c.NodeAddrs(ip.Is4()), 50*time.Millisecond); err != nil {
			return err
		}
		if _, err := c.WaitCurl(ctx, "extclient", ip, 80, nil); err != nil {
			return err
		}
		if err := d.Show("extclient", "curl", "-sS", "--max-time", "2", lab.URL(ip, 80)); err != nil {
			return err
		}
	}
	d.Step("The router's ECMP routes to web-bgp: one next hop per node")
	if err := d.ShowRoutes("rt", bgpips); err != nil {
		return err
	}
	d.Step("kube-proxy's rules for the layer-2 IP on the node that owns it")
	owners, err := c.L2Owners(ctx, d.ns, "web-l2")
	if err != nil {
		return err
	}
	if len(owners) == 0 {
		return errors.New("no ServiceL2Status names an owner of web-l2")
	}
	out, err := c.Exec(ctx, owners[0], "nft", "list", "table", "ip", "kube-proxy")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, d.l2IP.String()) {
			d.Printf("[%s]$ nft list table ip kube-proxy | grep %s\n%s\n", owners[0], d.l2IP, strings.TrimSpace(line))
			break
		}
	}
	return nil
}

func (d *demo) hints() string {
	c := d.c
	var b strings.Builder
	kubectl := c.KubectlPath() + " --kubeconfig " + c.AdminKubeconfig
	pids := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		pids = append(pids, fmt.Sprintf("%s=%d", n.Name, n.PID1()))
	}
	fmt.Fprintf(&b, "  %s get pods,svc -A -o wide\n", kubectl)
	fmt.Fprintf(&b, "  %s -n %s logs ds/%s\n", kubectl, Namespace, SpeakerDaemonSet)
	fmt.Fprintf(&b, "  ip netns exec %s curl %s      # from the segment client\n", c.NS("l2client"), lab.URL(d.l2IP, 80))
	fmt.Fprintf(&b, "  ip netns exec %s curl %s      # from behind the router\n", c.NS("extclient"), lab.URL(d.bgpIP, 80))
	fmt.Fprintf(&b, "  %s -n %s delete pod --field-selector spec.nodeName=n1 -l app.kubernetes.io/component=speaker\n", kubectl, Namespace)
	fmt.Fprintf(&b, "  nsenter -t <pid 1 of a node> -m -u -p -n ctr -n k8s.io containers ls   (pid 1 of each node: %s)\n", strings.Join(pids, " "))
	fmt.Fprintf(&b, "  logs: %s/cluster/*.log and %s/cluster/nodes/*/*.log\n", c.RunDir, c.RunDir)
	return b.String()
}
