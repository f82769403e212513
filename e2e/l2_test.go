package e2e

import (
	"fmt"
	"strings"
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
			// Wait until it is back and ready: it may win the IP back, and the next subtest must not
			// start while that handover is still to come.
			must(t, withHerald(waitSpeakersConverged(ctx, l), l))
			final, err := waitL2Owner(ctx, l, ns, "web", "")
			must(t, err)
			_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == final })
			must(t, err)
		})
	}
}

// TestLayer2GracefulHandoverHasOneResponder: while the owner's speaker is stopped with SIGTERM, the
// segment client sends an ARP request every 10 ms and records who answers. The replies must switch
// from the old owner's MAC to the new owner's once, never back and forth: the old owner stops
// answering before it leaves, and the new one starts only when it hears of the leave, so there is
// no moment with two responders.
func TestLayer2GracefulHandoverHasOneResponder(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 2*time.Minute)
	ns := newNamespace(t, l, "handover")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
	owner, err := waitL2Owner(ctx, l, ns, "web", "")
	must(t, err)
	oldMAC, err := l.MAC(ctx, owner)
	must(t, err)
	// A new IP is probed for a moment before its owner answers it (address conflict detection).
	_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
	must(t, err)

	// An ARP client whose socket lives in the segment client's namespace.
	w := listenARP(t, l, "l2client", ip)
	defer w.close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	const requests = 150
	for i := range requests {
		<-tick.C
		w.request(t)
		if i == 20 {
			if w.replies() == 0 {
				t.Fatalf("the owner %s answered none of 20 ARP requests for %s", owner, ip)
			}
			restartSpeakerAfter(t, l, owner)
			go func() { _ = l.StopSpeaker(owner, syscall.SIGTERM) }()
		}
	}
	macs := w.stop(t)

	switches := 0
	for i := 1; i < len(macs); i++ {
		if macs[i] != macs[i-1] {
			switches++
		}
	}
	if len(macs) == 0 || macs[0] != strings.ToLower(oldMAC) || switches != 1 {
		t.Errorf("ARP replies during the SIGTERM handover went %s (old owner %s %s): want the old owner's MAC, then the new owner's, switching once", compact(macs), owner, oldMAC)
	}
	t.Logf("%d replies to %d requests: %s", len(macs), requests, compact(macs))
}

// compact shortens a sequence of MACs for messages: "A x12, B x30".
func compact(macs []string) string {
	var b strings.Builder
	for i := 0; i < len(macs); {
		j := i
		for j < len(macs) && macs[j] == macs[i] {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s x%d", macs[i], j-i)
		i = j
	}
	return b.String()
}
