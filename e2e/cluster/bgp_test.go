package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestBGP covers BGP on the real cluster: every node's speaker peers with the router over IPv4
// and IPv6; a dual-stack Service with externalTrafficPolicy Cluster is routed by the router over
// all three nodes (ECMP) in both families and the client behind the router reaches its pods; a Service with externalTrafficPolicy Local is routed
// only via the nodes that run one of its ready pods, following the Deployment as it is scaled up
// and down and as its pod moves to another node, and every reply comes from a pod on the node the
// request entered.
func TestBGP(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 6*time.Minute)
	if err := c.WaitBGPSessions(ctx, len(c.Nodes)*len(c.RouterAddrs())); err != nil {
		t.Fatalf("%v\n%s", err, c.HeraldLogs(ctx, 30))
	}
	ns := newNamespace(t, c, "bgp")
	all := []string{"n1", "n2", "n3"}

	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3, OnePerNode: true})
	dual := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	ips := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "web", App: "web", Pool: lab.BGPPoolName, Families: dual}, 2)
	for _, ip := range ips {
		must(t, waitRoute(ctx, c, ip, nodeAddrs(c, ip.Is4(), all)))
		body, err := c.WaitCurl(ctx, "extclient", ip, 80, nil)
		must(t, err)
		t.Logf("%s routed via %v; extclient answered by a pod on %s", ip, all, body)
	}
	ip := ips[0]

	backend(t, ctx, c, cluster.Backend{Namespace: ns, Name: "local", Replicas: 1, OnePerNode: true})
	local := lbService(t, ctx, c, cluster.LBService{Namespace: ns, Name: "local", App: "local", Pool: lab.BGPPoolName, Local: true}, 1)[0]
	follow := func(replicas int32) []string {
		t.Helper()
		must(t, c.Scale(ctx, ns, "local", replicas))
		nodes, err := c.WaitReadyPods(ctx, ns, "local", int(replicas))
		must(t, err)
		must(t, waitRoute(ctx, c, local, nodeAddrs(c, true, nodes)))
		for range 5 {
			body, err := c.WaitCurl(ctx, "extclient", local, 80, nil)
			must(t, err)
			if !slices.Contains(nodes, body) {
				t.Errorf("Local Service %s answered by a pod on %s, want one of the nodes with pods %v", local, body, nodes)
			}
		}
		t.Logf("%d replicas on %v: %s routed via exactly those nodes", replicas, nodes, local)
		return nodes
	}
	for _, n := range []int32{1, 2, 3, 1} {
		follow(n)
	}
	// The pod moves: its node is cordoned and the pod deleted; the Deployment's new pod lands on
	// another node and the route follows it.
	nodes := follow(1)
	from := nodes[0]
	must(t, setUnschedulable(ctx, c, from, true))
	t.Cleanup(func() { _ = setUnschedulable(context.Background(), c, from, false) })
	must(t, c.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns), client.MatchingLabels{"app": "local"}))
	moved, err := c.WaitReadyPods(ctx, ns, "local", 1)
	must(t, err)
	if moved[0] == from {
		t.Fatalf("the pod stayed on the cordoned node %s", from)
	}
	must(t, waitRoute(ctx, c, local, nodeAddrs(c, true, moved)))
	if body, err := c.WaitCurl(ctx, "extclient", local, 80, nil); err != nil || body != moved[0] {
		t.Errorf("after the pod moved from %s to %s, extclient got %q (%v)", from, moved[0], body, err)
	}
	// The Cluster Service kept its three next hops throughout.
	must(t, waitRoute(ctx, c, ip, nodeAddrs(c, true, all)))
}
