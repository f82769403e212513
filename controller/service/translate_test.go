package service_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/service"
)

func lbService(mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			Selector:   map[string]string{"app": "web", "tier": "front"},
			Ports:      []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func TestToAllocatorService(t *testing.T) {
	base := allocator.Service{
		Key: "ns/web", Namespace: "ns", NamespaceLabels: map[string]string{"team": "blue"},
		Labels: map[string]string{"app": "web"}, Selector: "app=web,tier=front",
		Ports:        []allocator.Port{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}},
		FamilyPolicy: allocator.SingleStack, Families: []allocator.Family{allocator.IPv4},
	}
	with := func(mod func(*allocator.Service)) *allocator.Service {
		s := base
		mod(&s)
		return &s
	}
	ann := func(kv ...string) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Annotations = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				s.Annotations[kv[i]] = kv[i+1]
			}
		}
	}
	tests := []struct {
		name    string
		svc     *corev1.Service
		want    *allocator.Service
		wantErr error
	}{
		{name: "plain", svc: lbService(), want: &base},
		{
			name: "dual-stack IPv6 primary",
			svc: lbService(func(s *corev1.Service) {
				s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
			}),
			want: with(func(s *allocator.Service) {
				s.FamilyPolicy = allocator.RequireDualStack
				s.Families = []allocator.Family{allocator.IPv6, allocator.IPv4}
			}),
		},
		{
			name: "annotations: pool, sharing key, requested addresses",
			svc: lbService(ann(v1beta1.AnnotationAddressPool, "gold", v1beta1.AnnotationAllowSharedIP, "k",
				v1beta1.AnnotationLoadBalancerIPs, "192.0.2.7, 2001:db8::7")),
			want: with(func(s *allocator.Service) {
				s.Pool, s.SharingKey = "gold", "k"
				s.RequestedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")}
			}),
		},
		{
			name: "spec.loadBalancerIP and Local traffic policy",
			svc: lbService(func(s *corev1.Service) {
				s.Spec.LoadBalancerIP = "192.0.2.9"
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}),
			want: with(func(s *allocator.Service) {
				s.RequestedIPs = []netip.Addr{netip.MustParseAddr("192.0.2.9")}
				s.ExternalTrafficPolicyLocal = true
			}),
		},
		{
			name:    "both spec.loadBalancerIP and the annotation",
			svc:     lbService(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.9" }, ann(v1beta1.AnnotationLoadBalancerIPs, "192.0.2.8")),
			want:    &base, // a partial description that still holds the Service's addresses
			wantErr: allocator.ErrInvalidRequest,
		},
		{
			name:    "malformed annotation",
			svc:     lbService(ann(v1beta1.AnnotationLoadBalancerIPs, "192.0.2.300")),
			want:    &base,
			wantErr: allocator.ErrInvalidRequest,
		},
		{
			name: "no selector, no ports",
			svc:  lbService(func(s *corev1.Service) { s.Spec.Selector, s.Spec.Ports = nil, nil }),
			want: with(func(s *allocator.Service) { s.Selector, s.Ports = "", nil }),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := service.ToAllocatorService(tc.svc, map[string]string{"team": "blue"})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func selector(t *testing.T, ml map[string]string) labels.Selector {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: ml})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestToAllocatorPool(t *testing.T) {
	ranges := []config.Range{
		{First: netip.MustParseAddr("192.0.2.0"), Last: netip.MustParseAddr("192.0.2.255")},
		{First: netip.MustParseAddr("2001:db8::"), Last: netip.MustParseAddr("2001:db8::ffff")},
	}
	skip := []netip.Addr{netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("192.0.2.255"), netip.MustParseAddr("2001:db8::")}
	p := &config.Pool{Name: "p", Ranges: ranges, AutoAssign: true, AvoidBuggyIPs: true, Skip: skip,
		Allocation: &config.ServiceAllocation{Priority: 3, Namespaces: []string{"a"}}}
	want := allocator.Pool{Name: "p", AutoAssign: true, AvoidBuggyIPs: true, Restricted: true, Priority: 3, Skip: skip,
		Ranges: []allocator.Range{{First: ranges[0].First, Last: ranges[0].Last}, {First: ranges[1].First, Last: ranges[1].Last}}}
	got := service.ToAllocatorPool(p)
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}), cmpopts.IgnoreFields(allocator.Pool{}, "Match")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.Match == nil {
		t.Error("a pool with serviceAllocation has no Match")
	}
	if m := service.ToAllocatorPool(&config.Pool{Name: "open", Ranges: ranges}).Match; m != nil {
		t.Error("a pool without serviceAllocation has a Match; want nil (every Service)")
	}
}

func TestPoolMatch(t *testing.T) {
	svc := func(ns string, nsLabels, svcLabels map[string]string) *allocator.Service {
		return &allocator.Service{Key: ns + "/s", Namespace: ns, NamespaceLabels: nsLabels, Labels: svcLabels}
	}
	blue := map[string]string{"team": "blue"}
	gold := map[string]string{"tier": "gold"}
	tests := []struct {
		name string
		sa   config.ServiceAllocation
		svc  *allocator.Service
		want bool
	}{
		{name: "priority only matches all", sa: config.ServiceAllocation{Priority: 1}, svc: svc("x", nil, nil), want: true},
		{name: "namespace listed", sa: config.ServiceAllocation{Namespaces: []string{"a", "b"}}, svc: svc("b", nil, nil), want: true},
		{name: "namespace not listed", sa: config.ServiceAllocation{Namespaces: []string{"a"}}, svc: svc("b", blue, nil)},
		{name: "namespace selector", sa: config.ServiceAllocation{NamespaceSelectors: []labels.Selector{selector(t, blue)}}, svc: svc("b", blue, nil), want: true},
		{name: "namespace selector misses", sa: config.ServiceAllocation{NamespaceSelectors: []labels.Selector{selector(t, blue)}}, svc: svc("b", nil, blue)},
		{
			name: "listed or selected namespace",
			sa:   config.ServiceAllocation{Namespaces: []string{"a"}, NamespaceSelectors: []labels.Selector{selector(t, blue)}},
			svc:  svc("b", blue, nil), want: true,
		},
		{name: "service selector", sa: config.ServiceAllocation{ServiceSelectors: []labels.Selector{selector(t, gold)}}, svc: svc("b", nil, gold), want: true},
		{name: "service selector misses", sa: config.ServiceAllocation{ServiceSelectors: []labels.Selector{selector(t, gold)}}, svc: svc("b", gold, nil)},
		{
			name: "namespace and service selectors both needed",
			sa:   config.ServiceAllocation{Namespaces: []string{"a"}, ServiceSelectors: []labels.Selector{selector(t, gold)}},
			svc:  svc("b", nil, gold),
		},
		{
			name: "namespace and service selectors both met",
			sa:   config.ServiceAllocation{Namespaces: []string{"a"}, ServiceSelectors: []labels.Selector{selector(t, gold), selector(t, blue)}},
			svc:  svc("a", nil, blue), want: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := service.ToAllocatorPool(&config.Pool{Name: "p", Allocation: &tc.sa})
			if got := p.Match(tc.svc); got != tc.want {
				t.Errorf("Match = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestIngressEqual(t *testing.T) {
	vip := ptr.To(corev1.LoadBalancerIPModeVIP)
	proxy := ptr.To(corev1.LoadBalancerIPModeProxy)
	ing := func(ip string, mode *corev1.LoadBalancerIPMode) corev1.LoadBalancerIngress {
		return corev1.LoadBalancerIngress{IP: ip, IPMode: mode}
	}
	tests := []struct {
		name string
		a, b []corev1.LoadBalancerIngress
		want bool
	}{
		{name: "both empty", want: true},
		{name: "nil ipMode counts as VIP (the API server stores VIP)", a: []corev1.LoadBalancerIngress{ing("192.0.2.1", nil)}, b: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip)}, want: true},
		{name: "Proxy differs", a: []corev1.LoadBalancerIngress{ing("192.0.2.1", proxy)}, b: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip)}},
		{name: "other address", a: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip)}, b: []corev1.LoadBalancerIngress{ing("192.0.2.2", vip)}},
		{name: "order matters (primary family first)", a: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip), ing("2001:db8::1", vip)}, b: []corev1.LoadBalancerIngress{ing("2001:db8::1", vip), ing("192.0.2.1", vip)}},
		{name: "one more", a: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip)}},
		{name: "ports set by someone else", a: []corev1.LoadBalancerIngress{{IP: "192.0.2.1", IPMode: vip, Ports: []corev1.PortStatus{{Port: 80}}}}, b: []corev1.LoadBalancerIngress{ing("192.0.2.1", vip)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := service.IngressEqual(tc.a, tc.b); got != tc.want {
				t.Errorf("IngressEqual = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestIngress(t *testing.T) {
	got := service.Ingress([]allocator.Assignment{
		{Service: "ns/a", IP: netip.MustParseAddr("2001:db8::1"), Pool: "p"},
		{Service: "ns/a", IP: netip.MustParseAddr("192.0.2.1"), Pool: "p"},
	})
	vip := ptr.To(corev1.LoadBalancerIPModeVIP)
	want := []corev1.LoadBalancerIngress{{IP: "2001:db8::1", IPMode: vip}, {IP: "192.0.2.1", IPMode: vip}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := service.Ingress(nil); got != nil {
		t.Errorf("Ingress(nil) = %v, want nil (clears the status)", got)
	}
}

func TestErrorReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", allocator.ErrPoolFull), "pool_full"},
		{fmt.Errorf("x: %w", allocator.ErrNotInPool), "not_in_pool"},
		{fmt.Errorf("x: %w", allocator.ErrSharingConflict), "sharing_conflict"},
		{fmt.Errorf("x: %w", allocator.ErrInUse), "in_use"},
		{fmt.Errorf("x: %w", allocator.ErrPoolNotAllowed), "pool_not_allowed"},
		{fmt.Errorf("x: %w", allocator.ErrNoPool), "no_pool"},
		{fmt.Errorf("x: %w", allocator.ErrInvalidRequest), "invalid_request"},
		{errors.New("boom"), "other"},
	}
	var want []string
	for _, tc := range tests {
		want = append(want, tc.want)
		t.Run(tc.want, func(t *testing.T) {
			if got := service.ErrorReason(tc.err); got != tc.want {
				t.Errorf("ErrorReason(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
	// The metric starts every reason at 0: ErrorReasons must list each one.
	if diff := cmp.Diff(want, service.ErrorReasons()); diff != "" {
		t.Errorf("ErrorReasons (-want +got):\n%s", diff)
	}
}
