package e2e

import (
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/e2e/lab"
)

// TestLayer2 covers layer-2 mode for each family: a Service gets an IP from the layer-2 pool, the
// segment client reaches it, exactly one node answers ARP/NDP for it and ServiceL2Status names that
// node; after kill -9 of that node's speaker the IP moves to another node and curl works again;
// with the speaker back there is again exactly one owner.
func TestLayer2(t *testing.T) {
	l := requireHerald(t)
	for _, v4 := range []bool{true, false} {
		t.Run(famName(v4), func(t *testing.T) {
			ctx := deadline(t, 2*time.Minute)
			ns := newNamespace(t, l, "l2")
			ips := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{family(v4)}}, 1)
			ip := ips[0]
			if ip.Is4() != v4 || !inPool(ip, l.Plan.L2Pool) {
				t.Fatalf("Service got %v, want one %s address from pool %v", ip, famName(v4), l.Plan.L2Pool)
			}
			owner, err := waitL2Owner(ctx, l, ns, "web", "")
			must(t, err)
			body, err := l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
			must(t, err)
			t.Logf("%s owned by %s; curl answered by %s", ip, owner, body)

			ownerMAC, err := l.MAC(ctx, owner)
			must(t, err)
			if v4 {
				replies, err := l.ARPReplies(ctx, "l2client", ip, 3)
				must(t, err)
				for _, m := range replies {
					if m != ownerMAC {
						who, _ := l.NodeByMAC(ctx, m)
						t.Errorf("ARP reply for %s from %s (%s): want replies only from %s (%s)", ip, m, who, owner, ownerMAC)
					}
				}
				if len(replies) < 3 {
					t.Errorf("%d ARP replies to 3 requests, want 3", len(replies))
				}
			} else {
				l.FlushNeighbor(ctx, "l2client", ip)
				mac, err := l.NeighborMAC(ctx, "l2client", ip)
				must(t, err)
				if mac != ownerMAC {
					t.Errorf("l2client resolved %s to %s, want %s's %s", ip, mac, owner, ownerMAC)
				}
			}

			restartSpeakerAfter(t, l, owner)
			must(t, l.StopSpeaker(owner, syscall.SIGKILL))
			next, err := waitL2Owner(ctx, l, ns, "web", owner)
			must(t, err)
			body, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == next })
			must(t, err)
			t.Logf("after kill -9 of %s's speaker, %s moved to %s; curl answered by %s", owner, ip, next, body)
			if got, err := l.WaitIngress(ctx, ns, "web", 1); err != nil || got[0] != ip {
				t.Errorf("Service IP after failover: %v (%v), want %v unchanged", got, err, ip)
			}
			// Back with three speakers: the IP may move back; still exactly one owner, and served.
			must(t, l.StartSpeaker(owner))
			final, err := waitL2Owner(ctx, l, ns, "web", "")
			must(t, err)
			_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == final })
			must(t, err)
		})
	}
}
