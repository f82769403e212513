package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/speaker/plan"
)

// TestNoEndpointsNotAnnounced: a Service of policy Cluster without any ready endpoint is not
// announced, over layer 2 (no ARP reply) or BGP (no route at the router), and says why in a
// Warning event; once an endpoint is ready it is announced and served.
func TestNoEndpointsNotAnnounced(t *testing.T) {
	l := requireHerald(t)
	for _, tc := range []struct {
		mode, pool string
	}{{"layer2", lab.L2PoolName}, {"bgp", lab.BGPPoolName}} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := deadline(t, 2*time.Minute)
			if tc.mode == "bgp" {
				waitSessions(t, ctx, l)
			}
			ns := newNamespace(t, l, "noep-"+tc.mode)
			ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: tc.pool,
				Families: []corev1.IPFamily{corev1.IPv4Protocol}, EndpointNodes: []string{}}, 1)[0]

			// The reason is reported once the speakers have seen the Service with its IP: from then
			// on, the absence of an announcement is the plan's decision, not a lag.
			err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
				evs, err := l.WarningEvents(ctx, "Service", ns, "web")
				if err != nil {
					return false, nil //nolint:nilerr // retried until the deadline
				}
				for _, e := range evs {
					if e.Reason == "NotAnnounced" && strings.Contains(e.Message, plan.NoEndpointsReason) {
						return true, nil
					}
				}
				return false, nil
			})
			if err != nil {
				t.Fatal(withHerald(fmt.Errorf("waiting for the NotAnnounced event of %s: %w", ip, err), l))
			}
			if tc.mode == "layer2" {
				if owners, err := l.L2Owners(ctx, ns, "web"); err != nil || len(owners) != 0 {
					t.Errorf("ServiceL2Status of a Service without endpoints names %v (%v), want none", owners, err)
				}
				if macs, _ := l.ARPReplies(ctx, "l2client", ip, 2); len(macs) != 0 {
					t.Errorf("ARP replies for %s of a Service without endpoints from %v, want none", ip, macs)
				}
			} else {
				hops, err := l.Router.KernelNextHops(ctx, lab.HostPrefix(ip))
				if err != nil || len(hops) != 0 {
					t.Errorf("router route for %s of a Service without endpoints via %v (%v), want none", ip, hops, err)
				}
			}

			svc := &corev1.Service{}
			must(t, l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc))
			must(t, l.SetEndpoints(ctx, svc, []string{"n1", "n2", "n3"}))
			from := "l2client"
			if tc.mode == "bgp" {
				must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true)))
				from = "extclient"
			} else {
				_, err := waitL2Owner(ctx, l, ns, "web", "")
				must(t, err)
			}
			_, err = l.WaitCurl(ctx, from, ip, 80, nil)
			must(t, err)
		})
	}
}
