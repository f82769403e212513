package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

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
