package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestClusterNodesAndPodNetwork checks the cluster is what it claims to be: three Ready nodes
// registered by their kubelets with both addresses and their pod ranges; kube-proxy's nftables
// table in every node; backend pods of a real Deployment with one address of each family from
// their node's range, behind a routed veth whose host end is in no bridge; pods reachable across
// nodes in both families; and a ClusterIP Service reached through kube-proxy with endpoints from
// kube-controller-manager.
func TestClusterNodesAndPodNetwork(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 3*time.Minute)

	var nodes corev1.NodeList
	must(t, c.Client.List(ctx, &nodes))
	if len(nodes.Items) != len(c.Nodes) {
		t.Fatalf("%d Node objects, want %d", len(nodes.Items), len(c.Nodes))
	}
	for _, n := range c.Nodes {
		var node corev1.Node
		must(t, c.Client.Get(ctx, client.ObjectKey{Name: n.Name}, &node))
		var internal []string
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				internal = append(internal, a.Address)
			}
		}
		if want := []string{n.V4.String(), n.V6.String()}; !slices.Equal(internal, want) {
			t.Errorf("node %s InternalIPs %v, want %v", n.Name, internal, want)
		}
		if want := []string{n.PodV4.String(), n.PodV6.String()}; !slices.Equal(node.Spec.PodCIDRs, want) {
			t.Errorf("node %s podCIDRs %v, want %v", n.Name, node.Spec.PodCIDRs, want)
		}
		if v, want := node.Status.NodeInfo.KubeletVersion, wantKubeVersion(); v != want {
			t.Errorf("node %s kubelet version %q, want %q", n.Name, v, want)
		}
		if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
			t.Errorf("node %s runtime %q, want containerd", n.Name, node.Status.NodeInfo.ContainerRuntimeVersion)
		}
		if _, err := c.Exec(ctx, n.Name, "nft", "list", "table", "ip", "kube-proxy"); err != nil {
			t.Errorf("node %s has no kube-proxy nftables table: %v", n.Name, err)
		}
	}

	ns := newNamespace(t, c, "net")
	podNodes := backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "echo", Replicas: 3, OnePerNode: true})
	if want := []string{"n1", "n2", "n3"}; !slices.Equal(podNodes, want) {
		t.Fatalf("pods on %v, want one on each of %v", podNodes, want)
	}
	var pods corev1.PodList
	must(t, c.Client.List(ctx, &pods, client.InNamespace(ns)))
	for _, p := range pods.Items {
		n := c.Node(p.Spec.NodeName)
		var ips []netip.Addr
		for _, a := range p.Status.PodIPs {
			ips = append(ips, netip.MustParseAddr(a.IP))
		}
		if len(ips) != 2 || !n.PodV4.Contains(ips[0]) || !n.PodV6.Contains(ips[1]) {
			t.Errorf("pod %s on %s has addresses %v, want one in %s and one in %s", p.Name, n.Name, ips, n.PodV4, n.PodV6)
			continue
		}
		// The node reaches the pod through a veth of its own that no bridge holds.
		for _, ip := range ips {
			dev, err := routeDev(ctx, c, n.Name, ip)
			must(t, err)
			out, err := c.Exec(ctx, n.Name, "ip", "-d", "-json", "link", "show", dev)
			must(t, err)
			var links []struct {
				Master   string `json:"master"`
				LinkInfo struct {
					Kind string `json:"info_kind"`
				} `json:"linkinfo"`
			}
			must(t, json.Unmarshal([]byte(out), &links))
			if len(links) != 1 || links[0].LinkInfo.Kind != "veth" || links[0].Master != "" {
				t.Errorf("node %s routes pod %s (%s) via %s = %s: want a veth in no bridge", n.Name, p.Name, ip, dev, out)
			}
		}
		// Every other node reaches it across the segment.
		for _, o := range c.Nodes {
			if o.Name == n.Name {
				continue
			}
			for _, ip := range ips {
				body, err := c.Curl(ctx, o.Name, ip, cluster.BackendPort)
				if err != nil || body != n.Name {
					t.Errorf("curl from %s to pod %s at %s: %q, %v; want %q", o.Name, p.Name, ip, body, err, n.Name)
				}
			}
		}
	}

	// A ClusterIP Service: EndpointSlices from kube-controller-manager, DNAT by kube-proxy.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(cluster.BackendPort)}},
		},
	}
	must(t, c.Client.Create(ctx, svc))
	clusterIP := netip.MustParseAddr(svc.Spec.ClusterIP)
	seen := map[string]bool{}
	_, err := c.WaitCurl(ctx, "n1", clusterIP, 80, func(body string) bool {
		seen[body] = true
		return len(seen) == 3
	})
	if err != nil {
		t.Errorf("curl from n1 to ClusterIP %s reached pods on %v, want all three nodes: %v", clusterIP, seen, err)
	}
}

// routeDev returns the device node routes ip through.
func routeDev(ctx context.Context, c *cluster.Cluster, node string, ip netip.Addr) (string, error) {
	out, err := c.Exec(ctx, node, "ip", "-json", "route", "get", ip.String())
	if err != nil {
		return "", err
	}
	var r []struct {
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r) == 0 {
		return "", fmt.Errorf("no route to %s in %s: %w: %s", ip, node, err, out)
	}
	return r[0].Dev, nil
}

// wantKubeVersion is the version the cluster lab's binaries are built at: the Makefile's
// KUBE_VERSION (passed as HERALD_KUBE_VERSION), else testenv's default.
func wantKubeVersion() string {
	if v := os.Getenv(testenv.VersionEnv); v != "" {
		return v
	}
	return testenv.KubeVersion
}
