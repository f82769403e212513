package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/service"
)

// TestPoolsSkipNetworkAndBroadcast runs pools from spec to allocator (config.Parse, then
// ToAllocatorPools) and checks the addresses handed out in order.
func TestPoolsSkipNetworkAndBroadcast(t *testing.T) {
	tests := []struct {
		name     string
		addrs    []string
		allocate bool // spec.allocateNetworkAndBroadcast
		family   allocator.Family
		want     []string // addresses handed out, in order, until the pool is full ("" for full)
	}{
		{name: "IPv4 /8 starts at .1", addrs: []string{"10.0.0.0/8"}, want: []string{"10.0.0.1", "10.0.0.2"}},
		{name: "IPv4 /30: .1, .2, full", addrs: []string{"192.0.2.0/30"}, want: []string{"192.0.2.1", "192.0.2.2", ""}},
		{name: "IPv4 /31 and /32: every address", addrs: []string{"192.0.2.0/31", "192.0.2.8/32"}, want: []string{"192.0.2.0", "192.0.2.1", "192.0.2.8", ""}},
		{name: "a range is not affected", addrs: []string{"192.0.2.0-192.0.2.3"}, want: []string{"192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", ""}},
		{name: "allocateNetworkAndBroadcast", addrs: []string{"192.0.2.0/30"}, allocate: true, want: []string{"192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", ""}},
		{name: "IPv6 /64 starts at ::1", addrs: []string{"2001:db8:aaaa::/64"}, family: allocator.IPv6, want: []string{"2001:db8:aaaa::1", "2001:db8:aaaa::2"}},
		{name: "IPv6 /126 keeps its last address", addrs: []string{"2001:db8::/126"}, family: allocator.IPv6, want: []string{"2001:db8::1", "2001:db8::2", "2001:db8::3", ""}},
		{name: "IPv6 /127", addrs: []string{"2001:db8::/127"}, family: allocator.IPv6, want: []string{"2001:db8::", "2001:db8::1", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse(config.Snapshot{Pools: []v1beta1.IPAddressPool{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "p"},
				Spec:       v1beta1.IPAddressPoolSpec{Addresses: tc.addrs, AllocateNetworkAndBroadcast: tc.allocate},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := allocator.New(service.ToAllocatorPools(cfg))
			if err != nil {
				t.Fatal(err)
			}
			fam := tc.family
			if fam == 0 {
				fam = allocator.IPv4
			}
			var got []string
			for i := range tc.want {
				res, err := a.Assign(&allocator.Service{Key: fmt.Sprintf("ns/s%d", i), Families: []allocator.Family{fam}})
				switch {
				case err == nil:
					got = append(got, res.Assigned[0].IP.String())
				case strings.Contains(err.Error(), "is full"):
					got = append(got, "")
				default:
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("addresses handed out (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNetworkAddressKeptAcrossUpgrade plays an upgrade on a real API server: Services hold the
// network and broadcast addresses of an IPv4 CIDR and the first address of an IPv6 one, as an
// older Herald handed them out. This version, started on them, keeps them (also across a
// restart and pool edits), hands new Services only the other addresses, refuses to grant a
// network address on request, and skips a freed one again; allocateNetworkAndBroadcast lets
// the pool hand it out.
func TestNetworkAddressKeptAcrossUpgrade(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.0/30", "2001:db8:5::/126"})
	ipv6 := func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	}
	// What an older controller wrote: status and the pool annotation.
	held := map[string]string{"net": "198.51.100.0", "bcast": "198.51.100.3", "anycast": "2001:db8:5::"}
	for _, name := range []string{"net", "bcast", "anycast"} {
		var mods []func(*corev1.Service)
		if name == "anycast" {
			mods = append(mods, ipv6)
		}
		s := f.service(name, append(mods, svcAnnotation(v1beta1.AnnotationAllocatedFromPool, "a"))...)
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: held[name], IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
		if err := f.c.Status().Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	checkHeld := func(when string) {
		t.Helper()
		for name, ip := range held {
			if got := ingressIPs(f.get(name)); len(got) != 1 || got[0] != ip {
				t.Errorf("%s: %s holds %v, want [%s]", when, name, got, ip)
			}
		}
	}

	writes := &writeCounter{}
	stop := f.startWithConfig(writes.wrap(env.Config))
	// New Services get the addresses between, and nothing more.
	f.service("new1")
	f.service("new2")
	f.service("new6", ipv6)
	got := map[string]string{"new1": f.waitIPs("new1", 1)[0], "new2": f.waitIPs("new2", 1)[0], "new6": f.waitIPs("new6", 1)[0]}
	if got["new1"] == got["new2"] || !strings.HasPrefix(got["new1"], "198.51.100.") || got["new6"] != "2001:db8:5::1" {
		t.Errorf("new Services got %v, want 198.51.100.1 and .2 and 2001:db8:5::1", got)
	}
	for _, ip := range []string{got["new1"], got["new2"]} {
		if ip != "198.51.100.1" && ip != "198.51.100.2" {
			t.Errorf("a new Service got %s, want 198.51.100.1 or .2", ip)
		}
	}
	f.service("third")
	f.waitEvent(f.ns, "third", service.ReasonAllocationFailed, `pool "a" is full: 4 of 4 IPv4 addresses in use`)
	f.service("asks", svcAnnotation(v1beta1.AnnotationLoadBalancerIPs, "2001:db8:5::"), ipv6)
	f.waitEvent(f.ns, "asks", service.ReasonAllocationFailed, "2001:db8:5:: is the subnet-router anycast address", "spec.allocateNetworkAndBroadcast")
	// Size counts the held network and broadcast addresses: assigned + available = size.
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "4", AvailableIPv4: "0", AssignedIPv6: "2", AvailableIPv6: "2"})
	checkHeld("after the upgrade")
	if evs := f.events(f.ns, "net", service.ReasonIPNotRestored); len(evs) > 0 {
		t.Errorf("the network address was reported as not restored: %q", evs)
	}
	for _, name := range []string{"net", "bcast", "anycast"} {
		if n := writes.count(f.ns + "/services/" + name); n != 0 {
			t.Errorf("%d API writes to %s, which needed none: %v", n, name, writes.paths())
		}
	}

	// A restart after a pool edit (a label: the addresses are unchanged) keeps them too.
	stop()
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Labels = map[string]string{"edited": "yes"} })
	f.start()
	f.service("after")
	f.waitEvent(f.ns, "after", service.ReasonAllocationFailed, "is full")
	checkHeld("after a restart and a pool edit")

	// Growing the pool keeps them, and the new CIDR's ends are skipped too.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = append(p.Spec.Addresses, "198.51.100.8/30") })
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "6", AvailableIPv4: "0", AssignedIPv6: "2", AvailableIPv6: "2"})
	for _, name := range []string{"third", "after"} {
		if ip := f.waitIPs(name, 1)[0]; ip != "198.51.100.9" && ip != "198.51.100.10" {
			t.Errorf("%s got %s from the grown pool, want 198.51.100.9 or .10", name, ip)
		}
	}
	checkHeld("after growing the pool")

	// Freed, the network address is skipped again: the pool shrinks by one and stays full.
	if err := f.c.Delete(context.Background(), f.get("net")); err != nil {
		t.Fatal(err)
	}
	delete(held, "net")
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "5", AvailableIPv4: "0", AssignedIPv6: "2", AvailableIPv6: "2"})
	f.service("waiting")
	f.waitEvent(f.ns, "waiting", service.ReasonAllocationFailed, `pool "a" is full: 5 of 5 IPv4 addresses in use`)

	// allocateNetworkAndBroadcast: the network addresses are handed out; nothing held moves.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.AllocateNetworkAndBroadcast = true })
	ip := f.waitIPs("waiting", 1)[0]
	if want := []string{"198.51.100.0", "198.51.100.8", "198.51.100.11"}; !slices.Contains(want, ip) {
		t.Errorf("waiting got %s, want one of %v", ip, want)
	}
	checkHeld("after allocateNetworkAndBroadcast")
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "6", AvailableIPv4: "2", AssignedIPv6: "2", AvailableIPv6: "2"})
}
