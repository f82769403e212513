package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
)

// TestBGP covers BGP mode for each family: every node advertises the Service's IP, the router
// installs an ECMP route via all three nodes, the client behind the router reaches the Service,
// and externalTrafficPolicy Local with an endpoint on one node leaves only that node's next hop.
func TestBGP(t *testing.T) {
	l := requireHerald(t)
	for _, v4 := range []bool{true, false} {
		t.Run(famName(v4), func(t *testing.T) {
			ctx := deadline(t, 2*time.Minute)
			waitSessions(t, ctx, l)
			ns := newNamespace(t, l, "bgp")
			fams := []corev1.IPFamily{family(v4)}
			ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.BGPPoolName, Families: fams}, 1)[0]
			if ip.Is4() != v4 || !inPool(ip, l.Plan.BGPPool) {
				t.Fatalf("Service got %v, want one %s address from pool %v", ip, famName(v4), l.Plan.BGPPool)
			}
			all := l.NodeAddrs(v4)
			must(t, waitRoute(ctx, l, ip, all))
			body, err := l.WaitCurl(ctx, "extclient", ip, 80, nil)
			must(t, err)
			t.Logf("%s via %v; curl from extclient answered by %s", ip, all, body)
			must(t, waitBGPStatus(ctx, l, ns, "web", []string{"n1", "n2", "n3"}))

			local := service(t, ctx, l, lab.ServiceSpec{
				Namespace: ns, Name: "local", Pool: lab.BGPPoolName, Families: fams, Local: true, EndpointNodes: []string{"n2"},
			}, 1)[0]
			must(t, waitRoute(ctx, l, local, l.NodeAddrs(v4, "n2")))
			if _, err := l.WaitCurl(ctx, "extclient", local, 80, func(b string) bool { return b == "n2" }); err != nil {
				t.Fatal(err)
			}
			must(t, waitBGPStatus(ctx, l, ns, "local", []string{"n2"}))
			// The ECMP route of the first Service is untouched.
			must(t, waitRoute(ctx, l, ip, all))
		})
	}
}

// TestBGPExcludedNodeWithdraws: labelling a node node.kubernetes.io/exclude-from-external-load-balancers
// withdraws its next hop from the router; removing the label brings it back. A NetworkUnavailable
// node withdraws the same way.
func TestBGPExcludedNodeWithdraws(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 2*time.Minute)
	waitSessions(t, ctx, l)
	ns := newNamespace(t, l, "exclude")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.BGPPoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true)))

	setNode := func(change func(*corev1.Node), status bool) {
		t.Helper()
		var n corev1.Node
		must(t, l.Env.Client.Get(ctx, client.ObjectKey{Name: "n3"}, &n))
		change(&n)
		if status {
			must(t, l.Env.Client.Status().Update(ctx, &n))
		} else {
			must(t, l.Env.Client.Update(ctx, &n))
		}
	}
	const exclude = "node.kubernetes.io/exclude-from-external-load-balancers"
	setNode(func(n *corev1.Node) { n.Labels[exclude] = "" }, false)
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true, "n1", "n2")))
	setNode(func(n *corev1.Node) { delete(n.Labels, exclude) }, false)
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true)))

	unavailable := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "e2e"}
	setNode(func(n *corev1.Node) { n.Status.Conditions = append(n.Status.Conditions, unavailable) }, true)
	t.Cleanup(func() {
		var n corev1.Node
		if err := l.Env.Client.Get(context.Background(), client.ObjectKey{Name: "n3"}, &n); err == nil {
			n.Status.Conditions = slices.DeleteFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeNetworkUnavailable })
			_ = l.Env.Client.Status().Update(context.Background(), &n)
		}
	})
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true, "n1", "n2")))
	setNode(func(n *corev1.Node) {
		n.Status.Conditions = slices.DeleteFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeNetworkUnavailable })
	}, true)
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true)))
}
