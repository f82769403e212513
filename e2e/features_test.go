package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestRequestedIP: a Service that asks for an address of the layer-2 pool gets exactly it, and it
// is served.
func TestRequestedIP(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, time.Minute)
	ns := newNamespace(t, l, "requested")
	want := netip.MustParseAddr("198.51.100.110")
	ips := service(t, ctx, l, lab.ServiceSpec{
		Namespace: ns, Name: "web", Pool: lab.L2PoolName, Annotations: map[string]string{v1beta1.AnnotationLoadBalancerIPs: want.String()},
	}, 1)
	if ips[0] != want {
		t.Fatalf("Service got %v, want the requested %v", ips, want)
	}
	_, err := l.WaitCurl(ctx, "l2client", want, 80, nil)
	must(t, err)
}

// TestSharedIP: two Services with the same sharing key and different ports share one address; both
// ports are served, by the one node that owns the address.
func TestSharedIP(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, time.Minute)
	ns := newNamespace(t, l, "shared")
	want := netip.MustParseAddr("198.51.100.111")
	ann := map[string]string{v1beta1.AnnotationLoadBalancerIPs: want.String(), v1beta1.AnnotationAllowSharedIP: "web"}
	a := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web-a", Pool: lab.L2PoolName, Port: 80, Annotations: ann}, 1)
	b := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web-b", Pool: lab.L2PoolName, Port: 8081, Annotations: ann}, 1)
	if a[0] != want || b[0] != want {
		t.Fatalf("Services got %v and %v, want both %v", a, b, want)
	}
	owner, err := waitL2Owner(ctx, l, ns, "web-a", "")
	must(t, err)
	for _, port := range []int32{80, 8081} {
		if _, err := l.WaitCurl(ctx, "l2client", want, port, func(b string) bool { return b == owner }); err != nil {
			t.Fatal(err)
		}
	}
	if other, err := waitL2Owner(ctx, l, ns, "web-b", ""); err != nil || other != owner {
		t.Errorf("web-b announced by %q (%v), want %s like web-a: one responder per IP", other, err, owner)
	}
}

// TestPoolEditKeepsIPs: adding a range to a pool in use moves no Service's address.
func TestPoolEditKeepsIPs(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 90*time.Second)
	ns := newNamespace(t, l, "pooledit")
	l2ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "l2", Pool: lab.L2PoolName}, 1)[0]
	bgpip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "bgp", Pool: lab.BGPPoolName}, 1)[0]
	_, err := l.WaitCurl(ctx, "l2client", l2ip, 80, nil)
	must(t, err)

	key := client.ObjectKey{Namespace: lab.HeraldNamespace, Name: lab.L2PoolName}
	var pool v1beta1.IPAddressPool
	must(t, l.Client.Get(ctx, key, &pool))
	before := pool.DeepCopy()
	pool.Spec.Addresses = append(slices.Clone(pool.Spec.Addresses), "198.51.100.120-198.51.100.123")
	must(t, l.Client.Update(ctx, &pool))
	t.Cleanup(func() {
		var cur v1beta1.IPAddressPool
		if err := l.Client.Get(t.Context(), key, &cur); err == nil {
			cur.Spec.Addresses = before.Spec.Addresses
			_ = l.Client.Update(t.Context(), &cur)
		}
	})
	// The controller has seen the edit when the pool's status counts the four new addresses.
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var cur v1beta1.IPAddressPool
		if err := l.Client.Get(ctx, key, &cur); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		return cur.Status.AvailableIPv4 != "" && cur.Status.AvailableIPv4 != before.Status.AvailableIPv4, nil
	})
	if err != nil {
		t.Fatal(withHerald(fmt.Errorf("pool %s status never counted the added range (was available %q): %w", lab.L2PoolName, before.Status.AvailableIPv4, err), l))
	}
	for name, want := range map[string]netip.Addr{"l2": l2ip, "bgp": bgpip} {
		got, err := l.WaitIngress(ctx, ns, name, 1)
		must(t, err)
		if got[0] != want {
			t.Errorf("after the pool edit %s has %v, want %v unchanged", name, got, want)
		}
	}
	_, err = l.WaitCurl(ctx, "l2client", l2ip, 80, nil)
	must(t, err)
	_, err = l.WaitCurl(ctx, "extclient", bgpip, 80, nil)
	must(t, err)
}

// TestControllerRestartDuringTraffic: a stream of requests to a layer-2 Service sees no failure
// while the controller restarts; the restarted controller keeps the Service's address and serves
// new Services.
func TestControllerRestartDuringTraffic(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 2*time.Minute)
	ns := newNamespace(t, l, "restart")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName}, 1)[0]
	_, err := l.WaitCurl(ctx, "l2client", ip, 80, nil)
	must(t, err)

	stream := l.StartStream("l2client", lab.URL(ip, 80), 50*time.Millisecond, time.Second)
	must(t, l.RestartController())
	ip2 := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "after", Pool: lab.L2PoolName}, 1)[0]
	if ip2 == ip {
		t.Errorf("the restarted controller gave %v to a new Service, already used by web", ip2)
	}
	// Keep the traffic going a little after the restarted controller has done its first work.
	_, err = stream.WaitSuccessAfter(ctx, time.Now().Add(2*time.Second), nil)
	must(t, err)
	samples := stream.Stop()
	if n := lab.Failures(samples); n > 0 {
		t.Errorf("%d of %d requests failed during the controller restart", n, len(samples))
	}
	got, err := l.WaitIngress(ctx, ns, "web", 1)
	must(t, err)
	if got[0] != ip {
		t.Errorf("after the restart web has %v, want %v unchanged", got, ip)
	}
	t.Logf("%d requests during the restart, none failed", len(samples))
}
