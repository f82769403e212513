package service_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/config/configtest"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/service"
)

// FuzzToAllocator translates random Services and random validated configurations for the
// allocator (ToAllocatorService, ToAllocatorPools) and assignments back into a Service's status
// (Ingress, StatusIPs, IngressEqual). Nothing may panic, every translation is deterministic, a
// malformed request is an ErrInvalidRequest that still keeps the Service's identity, requested
// addresses are at most one usable address per family, and pools keep their ranges.
func FuzzToAllocator(f *testing.F) {
	f.Add("ns", "web", "", "", "", "", "IPv4", "SingleStack", []byte{80, 6}, "app=web", false, []byte{0, 3, 1, 2})
	f.Add("ns", "web", "pool0", "192.0.2.1,2001:db8::1", "key", "", "IPv6,IPv4", "RequireDualStack", []byte{1, 17}, "", true, []byte{2})
	f.Add("ns", "web", " pool ", "192.0.2.1, 192.0.2.2", "", "192.0.2.1", "IPv4,IPv4", "PreferDualStack", []byte{}, "", false, []byte{})
	f.Add("", "", "", ",", "", "::ffff:192.0.2.1", "IPv5", "Other", []byte{0}, "", false, []byte{1})
	f.Add("ns", "web", "", "fe80::1%eth0", "", "", "", "", []byte{}, "", false, []byte{4, 4})
	f.Fuzz(func(t *testing.T, ns, name, pool, lbIPs, shared, lbIP, families, policy string, ports []byte,
		selector string, local bool, cfgBytes []byte) {
		svc := &corev1.Service{}
		svc.Namespace, svc.Name = ns, name
		svc.Annotations = map[string]string{v1beta1.AnnotationAddressPool: pool, v1beta1.AnnotationLoadBalancerIPs: lbIPs,
			v1beta1.AnnotationAllowSharedIP: shared}
		svc.Labels = map[string]string{"app": "web"}
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Spec.LoadBalancerIP = lbIP
		if k, v, ok := strings.Cut(selector, "="); ok {
			svc.Spec.Selector = map[string]string{k: v}
		}
		if families != "" {
			for _, fam := range strings.Split(families, ",") {
				svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, corev1.IPFamily(fam))
			}
		}
		if policy != "" {
			p := corev1.IPFamilyPolicy(policy)
			svc.Spec.IPFamilyPolicy = &p
		}
		for i := 0; i+1 < len(ports); i += 2 {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: int32(ports[i]), Protocol: corev1.Protocol([]string{"TCP", "UDP", "SCTP", ""}[ports[i+1]%4])})
		}
		if local {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		nsLabels := map[string]string{"team": "a"}

		out, err := service.ToAllocatorService(svc, nsLabels)
		again, err2 := service.ToAllocatorService(svc, nsLabels)
		if diff := cmp.Diff(out, again, cmpopts.EquateComparable(netip.Addr{})); diff != "" || (err == nil) != (err2 == nil) {
			t.Fatalf("ToAllocatorService is not deterministic (-first +second):\n%s\n%v / %v", diff, err, err2)
		}
		if out == nil || out.Key != ns+"/"+name || out.Namespace != ns || out.ExternalTrafficPolicyLocal != local {
			t.Fatalf("ToAllocatorService = %+v, want the Service's identity kept", out)
		}
		if err != nil && !errors.Is(err, allocator.ErrInvalidRequest) {
			t.Fatalf("ToAllocatorService error %v does not wrap ErrInvalidRequest", err)
		}
		seen := map[allocator.Family]bool{}
		for _, ip := range out.RequestedIPs {
			if !ip.IsValid() || ip.Zone() != "" || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() || seen[allocator.FamilyOf(ip)] {
				t.Fatalf("requested addresses %v: invalid, zoned, mapped, unusable or two of one family", out.RequestedIPs)
			}
			seen[allocator.FamilyOf(ip)] = true
		}

		// Assignments of the requested addresses go into the status and come back unchanged.
		var as []allocator.Assignment
		for _, ip := range out.RequestedIPs {
			as = append(as, allocator.Assignment{Service: out.Key, IP: ip, Pool: "p"})
		}
		svc.Status.LoadBalancer.Ingress = service.Ingress(as)
		back, err := v1beta1.IngressIPs(svc)
		if err != nil || !cmp.Equal(back, out.RequestedIPs, cmpopts.EquateComparable(netip.Addr{}), cmpopts.EquateEmpty()) {
			t.Fatalf("StatusIPs(Ingress(%v)) = %v, %v", out.RequestedIPs, back, err)
		}
		if !service.IngressEqual(service.Ingress(as), svc.Status.LoadBalancer.Ingress) {
			t.Fatalf("IngressEqual is false for the same assignments %v", as)
		}

		cfg, err := config.Parse(configtest.RandomSnapshot(cfgBytes))
		if err != nil {
			return
		}
		pools := service.ToAllocatorPools(cfg)
		if len(pools) != len(cfg.Pools) {
			t.Fatalf("ToAllocatorPools made %d pools of %d", len(pools), len(cfg.Pools))
		}
		for i, p := range pools {
			c := cfg.Pools[p.Name]
			if c == nil || (i > 0 && pools[i-1].Name >= p.Name) || len(p.Ranges) != len(c.Ranges) || p.Restricted != (c.Allocation != nil) {
				t.Fatalf("pool %d %+v does not match the configuration's %+v (or pools are not sorted)", i, p, c)
			}
			for j, r := range p.Ranges {
				if r.First != c.Ranges[j].First || r.Last != c.Ranges[j].Last {
					t.Fatalf("pool %s range %d = %v-%v, configured %v-%v", p.Name, j, r.First, r.Last, c.Ranges[j].First, c.Ranges[j].Last)
				}
			}
			if p.Match != nil && p.Match(out) != p.Match(again) {
				t.Fatalf("pool %s matches the same Service differently", p.Name)
			}
		}
	})
}
