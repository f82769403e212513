package v1beta1_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
)

func lbService(mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	s.Namespace, s.Name = "app", "web"
	for _, m := range mods {
		m(s)
	}
	return s
}

func TestManagedService(t *testing.T) {
	tests := []struct {
		name    string
		svc     *corev1.Service
		lbClass string
		want    bool
	}{
		{name: "no class, no flag", svc: lbService(), want: true},
		{name: "no class, flag", svc: lbService(), lbClass: "x.io/lb"},
		{name: "class, no flag", svc: lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("x.io/lb") })},
		{name: "class equal to flag", svc: lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("x.io/lb") }), lbClass: "x.io/lb", want: true},
		{name: "other class", svc: lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("y.io/lb") }), lbClass: "x.io/lb"},
		{name: "ClusterIP", svc: lbService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })},
		{name: "NodePort", svc: lbService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := v1beta1.ManagedService(tc.svc, tc.lbClass); got != tc.want {
				t.Errorf("ManagedService = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestIngressIPs(t *testing.T) {
	in := func(ips ...string) *corev1.Service {
		s := lbService()
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	tests := []struct {
		name    string
		svc     *corev1.Service
		want    []netip.Addr
		wantErr bool
	}{
		{name: "empty", svc: in()},
		{name: "two families", svc: in("192.0.2.1", "2001:db8::1"), want: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}},
		{name: "duplicate", svc: in("192.0.2.1", "192.0.2.1"), want: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{name: "garbage kept apart", svc: in("nope", "192.0.2.1"), want: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, wantErr: true},
		{name: "hostname", svc: in(""), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v1beta1.IngressIPs(tc.svc)
			if (err != nil) != tc.wantErr {
				t.Errorf("error = %v, want error %t", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzIngressIPs(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "", "x", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		s := lbService()
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: a}, {IP: b}}
		ips, _ := v1beta1.IngressIPs(s)
		seen := map[netip.Addr]bool{}
		for _, ip := range ips {
			if !ip.IsValid() || seen[ip] {
				t.Fatalf("IngressIPs(%q, %q) = %v: invalid or duplicate address", a, b, ips)
			}
			seen[ip] = true
		}
	})
}
