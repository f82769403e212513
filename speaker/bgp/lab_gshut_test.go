package bgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestLabGracefulShutdown covers RFC 8326 against FRR: a node whose peer has GracefulShutdown and
// that stops for good (Shutdown) first sends its route again with the GRACEFUL_SHUTDOWN community
// (65535:0, "graceful-shutdown" in FRR), the router moves traffic to the other node while the
// path is still there, and only after the graceful shutdown time is the path withdrawn and the
// session closed. FRR (8.4) needs no configuration for it: it gives an eBGP path that carries the
// community LOCAL_PREF 0 itself.
func TestLabGracefulShutdown(t *testing.T) {
	lb := newLab(t, 2, frr.Config{Groups: nodeGroups()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const gshut = 3 * time.Second
	n1, n2 := lb.nodes[0], lb.nodes[1]
	p := ebgpPeer("r4", routerV4)
	p.GracefulShutdown = gshut
	n1.setPeers(p)
	n1.setRoutes(labRoute{Prefix: vip4})
	n2.setPeers(ebgpPeer("r4", routerV4))
	n2.setRoutes(labRoute{Prefix: vip4})
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))

	// Shutdown answers when it is done; the test watches the router meanwhile.
	start := time.Now()
	done := make(chan nodeResponse, 1)
	b, _ := json.Marshal(nodeRequest{Op: "shutdown"})
	if _, err := n1.in.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	go func() {
		var resp nodeResponse
		if err := n1.out.Decode(&resp); err != nil {
			resp.Error = "reading the answer: " + err.Error()
		}
		done <- resp
	}()

	var (
		gshutPath   *frr.Path // n1's path with the community, first seen
		gshutAt     time.Time
		movedAt     time.Time // the kernel route left n1 while its path was still there
		resp        nodeResponse
		returnedAt  time.Time
		lastN1Paths []frr.Path
	)
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		paths, err := lb.router.Paths(ctx, vip4)
		if err != nil {
			return false, err
		}
		var n1Path *frr.Path
		for i := range paths {
			if paths[i].Peer == n1.v4 {
				n1Path = &paths[i]
			}
		}
		if n1Path != nil {
			lastN1Paths = []frr.Path{*n1Path}
			if gshutPath == nil && (slices.Contains(n1Path.Communities, "graceful-shutdown") || slices.Contains(n1Path.Communities, "65535:0")) {
				gshutPath, gshutAt = n1Path, time.Now()
			}
			if gshutPath != nil && movedAt.IsZero() {
				if nh, err := lb.router.KernelNextHops(ctx, vip4); err == nil && slices.Equal(nh, []netip.Addr{n2.v4}) {
					movedAt = time.Now()
				}
			}
		}
		select {
		case resp = <-done:
			returnedAt = time.Now()
			return true, nil
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("waiting for Shutdown: %v (n1's last path %+v)", err, lastN1Paths)
	}
	if resp.Error != "" {
		t.Errorf("Shutdown: %s", resp.Error)
	}
	if gshutPath == nil {
		t.Fatalf("the router never held n1's path with the GRACEFUL_SHUTDOWN community before it was withdrawn (last %+v)", lastN1Paths)
	}
	lp := "none"
	if gshutPath.LocalPref != nil {
		lp = fmt.Sprint(*gshutPath.LocalPref)
	}
	t.Logf("n1's path with the community %v after %v, local preference %s", gshutPath.Communities, gshutAt.Sub(start), lp)
	if movedAt.IsZero() {
		t.Errorf("the router's kernel route never left n1 while n1's GRACEFUL_SHUTDOWN path was still there")
	} else {
		t.Logf("traffic moved to n2 %v after Shutdown began", movedAt.Sub(start))
	}
	if d := returnedAt.Sub(start); d < gshut {
		t.Errorf("Shutdown returned after %v, before the graceful shutdown time %v", d, gshut)
	}
	lb.waitHops(t, ctx, vip4, []netip.Addr{n2.v4})
	// The withdrawal (and the Cease after it) was sent before Shutdown returned; the router takes
	// a moment to process it, so its RIB is polled, with a deadline, until n1's path is gone.
	var held []frr.Path
	gone := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		paths, err := lb.router.Paths(ctx, vip4)
		if err != nil {
			return false, err
		}
		held = paths
		return !slices.ContainsFunc(paths, func(p frr.Path) bool { return p.Peer == n1.v4 }), nil
	})
	if gone != nil {
		t.Errorf("5 s after Shutdown returned the router still holds %+v (%v), want no path from n1", held, gone)
	}
	lb.waitNeighbor(t, ctx, n1.v4, "closed", func(n frr.Neighbor) bool { return !n.Established() })
}
