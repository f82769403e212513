package e2e

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/e2e/lab"
)

// TestLabDataPath checks the lab itself, without Herald: a Service of a foreign load-balancer class
// (which Herald leaves alone) gets an IP outside Herald's pools written by the test; the test then
// plays the speaker by hand (the address on one node for layer 2, a static route in the router for
// BGP) and checks that the DNAT rules and the backends carry curl from both clients to that node.
func TestLabDataPath(t *testing.T) {
	l := requireLab(t)
	ctx := deadline(t, 90*time.Second)
	ns := newNamespace(t, l, "datapath")
	svc, err := l.CreateService(ctx, lab.ServiceSpec{
		Namespace: ns, Name: "manual", Families: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
		LoadBalancerClass: "lab.herald.dev/manual",
	})
	must(t, err)

	l2v4, l2v6 := netip.MustParseAddr("198.51.100.60"), netip.MustParseAddr("2001:db8:1::60")
	rtv4, rtv6 := netip.MustParseAddr("198.51.100.250"), netip.MustParseAddr("2001:db8:4::1")
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
		{IP: l2v4.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
		{IP: l2v6.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
		{IP: rtv4.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
		{IP: rtv6.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
	}
	must(t, l.Client.Status().Update(ctx, svc))
	t.Cleanup(func() { _ = l.Client.Delete(t.Context(), svc) })

	// Layer 2 by hand: n2 owns the addresses (the kernel answers ARP/NDP for them).
	for _, a := range []netip.Addr{l2v4, l2v6} {
		_, err := l.Exec(ctx, "n2", "ip", "addr", "add", lab.HostPrefix(a).String(), "dev", "eth0", "nodad")
		must(t, err)
		t.Cleanup(func() {
			_, _ = l.Exec(t.Context(), "n2", "ip", "addr", "del", lab.HostPrefix(a).String(), "dev", "eth0")
		})
	}
	// BGP by hand: the router sends the routed addresses to n3.
	n3, _ := l.Node("n3")
	for _, r := range []struct{ dst, via netip.Addr }{{rtv4, n3.V4}, {rtv6, n3.V6}} {
		_, err := l.Exec(ctx, "rt", "ip", "route", "add", lab.HostPrefix(r.dst).String(), "via", r.via.String())
		must(t, err)
	}
	for _, c := range []struct {
		client string
		addr   netip.Addr
		want   string
	}{
		{"l2client", l2v4, "n2"}, {"l2client", l2v6, "n2"},
		{"extclient", rtv4, "n3"}, {"extclient", rtv6, "n3"},
	} {
		body, err := l.WaitCurl(ctx, c.client, c.addr, 80, func(b string) bool { return b == c.want })
		if err != nil {
			rules, _ := l.DNATRules(ctx, c.want)
			t.Fatalf("%v\nDNAT rules in %s:\n%s", err, c.want, rules)
		}
		t.Logf("curl from %s to %s: answered by %s", c.client, c.addr, body)
	}
	mac, err := l.MAC(ctx, "n2")
	must(t, err)
	replies, err := l.ARPReplies(ctx, "l2client", l2v4, 2)
	must(t, err)
	for _, r := range replies {
		if r != mac {
			t.Errorf("ARP reply from %s, want only n2 (%s)", r, mac)
		}
	}
}
