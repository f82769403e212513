package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/lab"
)

func family(v4 bool) corev1.IPFamily {
	if v4 {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

func famName(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

// service creates a Service, deletes it when the test ends, and waits for its IPs.
func service(t *testing.T, ctx context.Context, l *lab.Lab, s lab.ServiceSpec, nIPs int) []netip.Addr {
	t.Helper()
	svc, err := l.CreateService(ctx, s)
	must(t, err)
	t.Cleanup(func() { _ = l.Client.Delete(context.WithoutCancel(ctx), svc) })
	if nIPs == 0 {
		return nil
	}
	ips, err := l.WaitIngress(ctx, s.Namespace, s.Name, nIPs)
	must(t, err)
	return ips
}

// waitL2Owner waits until exactly one ServiceL2Status names a node for the Service, ignoring the
// status of a node whose speaker is down (dead; it cannot remove its own status), and returns that
// node. The node must differ from dead.
func waitL2Owner(ctx context.Context, l *lab.Lab, ns, name, dead string) (string, error) {
	var last []string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		owners, err := l.L2Owners(ctx, ns, name)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = slices.DeleteFunc(owners, func(n string) bool { return n == dead })
		return len(last) == 1, nil
	})
	if err != nil {
		return "", withHerald(fmt.Errorf("waiting for one ServiceL2Status for %s/%s naming a node other than %q (have %v): %w", ns, name, dead, last, err), l)
	}
	return last[0], nil
}

// withHerald adds to err what went wrong with the Herald processes, if anything.
func withHerald(err error, l *lab.Lab) error {
	if herr := l.CheckHerald(); herr != nil {
		return fmt.Errorf("%w\n%w", err, herr)
	}
	return err
}

// waitBGPStatus waits until the ServiceBGPStatus objects of a Service name exactly nodes.
func waitBGPStatus(ctx context.Context, l *lab.Lab, ns, name string, nodes []string) error {
	var last []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		got, err := l.BGPNodes(ctx, ns, name)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = got
		return slices.Equal(got, nodes), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for ServiceBGPStatus of %s/%s to name %v (have %v): %w", ns, name, nodes, last, err)
	}
	return nil
}

// waitRoute waits until the router's kernel route for addr goes exactly via hops.
func waitRoute(ctx context.Context, l *lab.Lab, addr netip.Addr, hops []netip.Addr) error {
	if _, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(addr), hops, 20*time.Millisecond); err != nil {
		return withHerald(err, l)
	}
	return nil
}

// waitSessions waits until every node has its sessions to the router up (one per router address).
func waitSessions(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	if err := l.WaitBGPSessions(ctx, len(l.Nodes)*len(l.RouterAddrs())); err != nil {
		t.Fatal(withHerald(err, l))
	}
}

// restartSpeakerAfter makes sure node's speaker runs again when the test ends.
func restartSpeakerAfter(t *testing.T, l *lab.Lab, node string) {
	t.Cleanup(func() {
		if p := l.Proc("speaker-" + node); p != nil {
			if done, _ := p.Exited(); !done {
				return
			}
		}
		if err := l.StartSpeaker(node); err != nil {
			t.Errorf("restarting the speaker of %s: %v", node, err)
		}
	})
}

// inPool reports whether addr lies in one of the pool's ranges ("a-b" or a CIDR).
func inPool(addr netip.Addr, ranges []string) bool {
	for _, r := range ranges {
		if p, err := netip.ParsePrefix(r); err == nil && p.Contains(addr) {
			return true
		}
		var lo, hi string
		if n, _ := fmt.Sscanf(replaceDash(r), "%s %s", &lo, &hi); n == 2 {
			a, err1 := netip.ParseAddr(lo)
			b, err2 := netip.ParseAddr(hi)
			if err1 == nil && err2 == nil && a.Compare(addr) <= 0 && addr.Compare(b) <= 0 {
				return true
			}
		}
	}
	return false
}

func replaceDash(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '-' {
			b[i] = ' '
		}
	}
	return string(b)
}
