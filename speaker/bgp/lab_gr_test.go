package bgp

import (
	"context"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// grPeer is ebgpPeer with graceful restart and the given restart time.
func grPeer(name string, addr netip.Addr, restart time.Duration) Peer {
	p := ebgpPeer(name, addr)
	p.GracefulRestart, p.RestartTime = true, restart
	return p
}

// TestLabGracefulRestart covers graceful restart (RFC 4724) with FRR as the helper: a node whose
// speaker is killed (kill -9) or stopped for a restart (StopForRestart, the DaemonSet's rolling
// update) and started again within the restart time keeps its next hop at the router the whole
// time, and the End-of-RIB of the new speaker removes at once what it no longer advertises; a
// speaker that does not come back has its routes removed when the restart time expires; a
// speaker stopped for good (SIGTERM, Shutdown) withdraws at once, and the router keeps nothing
// stale.
func TestLabGracefulRestart(t *testing.T) {
	lb := newLab(t, 3, frr.Config{Groups: nodeGroups()})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n1, n2, n3 := lb.nodes[0], lb.nodes[1], lb.nodes[2]
	old := netip.MustParsePrefix("203.0.113.101/32") // advertised by n1 before its restarts only
	const long, short = 30 * time.Second, 3 * time.Second
	n1.setPeers(grPeer("r4", routerV4, long))
	n1.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: old})
	n2.setPeers(grPeer("r4", routerV4, short))
	n2.setRoutes(labRoute{Prefix: vip4})
	n3.setPeers(grPeer("r4", routerV4, long))
	n3.setRoutes(labRoute{Prefix: vip4})
	lb.waitHops(t, ctx, vip4, hops(lb.nodes, false))
	lb.waitHops(t, ctx, old, []netip.Addr{n1.v4})

	ok := t.Run("killed and not restarted: routes removed when the restart time expires", func(t *testing.T) {
		if err := n2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lb.staleWithin(t, ctx, vip4, n2.v4, 2*time.Second)
		gone := lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4, n3.v4})
		if d := gone.Sub(start); d < short-500*time.Millisecond || d > short+3*time.Second {
			t.Errorf("next hop of the killed node left after %v, want after its restart time %v", d, short)
		}
	})

	// restart stops n and starts its successor, a node of the whole test (lab nodes outlive
	// subtests).
	parent := t
	restart := func(t *testing.T, n *node, stop func()) *node {
		t.Helper()
		w, err := lb.router.WatchKernelRoutes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		stop()
		if err := n.waitExit(ctx); err != nil {
			t.Fatal(err)
		}
		lb.staleWithin(t, ctx, vip4, n.v4, 2*time.Second)
		// The new speaker, as the DaemonSet starts it: same node, same configuration, and
		// no longer the old prefix.
		nn := startNode(parent, lb.net, n.name, n.ns, n.v4, n.v6, labOptions{})
		nn.setPeers(grPeer("r4", routerV4, long))
		nn.setRoutes(labRoute{Prefix: vip4})
		err = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			nb, err := lb.router.Neighbors(ctx)
			return nb[n.v4].Established(), err
		})
		if err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		// End-of-RIB: the stale path of the old prefix goes at once, not after the restart time.
		gone := lb.waitHops(t, ctx, old, nil)
		if d := gone.Sub(up); d > 3*time.Second {
			t.Errorf("stale route %v left %v after the session came back, want at the End-of-RIB (restart time %v)", old, d, long)
		}
		err = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			paths, err := lb.router.Paths(ctx, vip4)
			i := slices.IndexFunc(paths, func(p frr.Path) bool { return p.Peer == n.v4 })
			return i >= 0 && !paths[i].Stale, err
		})
		if err != nil {
			t.Fatalf("path of %v via the restarted node still stale: %v", vip4, err)
		}
		w.Stop()
		for ev := range w.Events() {
			if ev.Prefix == vip4 && (ev.Deleted || !slices.Contains(ev.Hops, n.v4)) {
				t.Errorf("during the restart the router's route %v lost the restarting node %v: %+v", vip4, n.v4, ev)
			}
		}
		return nn
	}

	ok = ok && t.Run("kill -9 and start again: next hop kept, End-of-RIB refreshes", func(t *testing.T) {
		n1 = restart(t, n1, func() {
			if err := n1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		})
	})

	ok = ok && t.Run("stopped for a restart and started again: next hop kept", func(t *testing.T) {
		n1.setRoutes(labRoute{Prefix: vip4}, labRoute{Prefix: old})
		lb.waitHops(t, ctx, old, []netip.Addr{n1.v4})
		n1 = restart(t, n1, func() {
			if r := n1.call(nodeRequest{Op: "restart"}); r.Error != "" {
				t.Fatal(r.Error)
			}
		})
	})

	if !ok {
		return
	}
	t.Run("SIGTERM for good: withdrawn at once, nothing stale", func(t *testing.T) {
		lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4, n3.v4})
		if err := n3.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		gone := lb.waitHops(t, ctx, vip4, []netip.Addr{n1.v4})
		if d := gone.Sub(start); d > time.Second {
			t.Errorf("next hop of the node stopped for good left after %v, want at once (restart time %v)", d, long)
		}
		paths, err := lb.router.Paths(ctx, vip4)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if p.Peer == n3.v4 {
				t.Errorf("router keeps a path via the node stopped for good: %+v", p)
			}
		}
	})
}

// staleWithin waits until the router holds the path of prefix from peer as stale (graceful
// restart in progress).
func (lb *lab) staleWithin(t *testing.T, ctx context.Context, prefix netip.Prefix, peer netip.Addr, d time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := wait.PollUntilContextCancel(wctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		paths, err := lb.router.Paths(wctx, prefix)
		i := slices.IndexFunc(paths, func(p frr.Path) bool { return p.Peer == peer })
		return i >= 0 && paths[i].Stale, err
	})
	if err != nil {
		t.Fatalf("router did not keep the path of %v via %v as stale (graceful restart): %v", prefix, peer, err)
	}
}
