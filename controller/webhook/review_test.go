package webhook

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

const ns = "herald-system"

func pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peer(name, addr, bfd string) *v1beta1.BGPPeer {
	return &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: addr, BFDProfile: bfd}}
}

func bfd(name string) *v1beta1.BFDProfile {
	return &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func l2(name string, pools ...string) *v1beta1.L2Advertisement {
	return &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func withPools(s config.Snapshot, pools ...*v1beta1.IPAddressPool) config.Snapshot {
	s.Pools = slices.Clone(s.Pools)
	for _, p := range pools {
		s.Pools = append(s.Pools, *p)
	}
	return s
}

func withL2(s config.Snapshot, advs ...*v1beta1.L2Advertisement) config.Snapshot {
	s.L2Advertisements = slices.Clone(s.L2Advertisements)
	for _, a := range advs {
		s.L2Advertisements = append(s.L2Advertisements, *a)
	}
	return s
}

func fields(es config.Errors) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind+"/"+e.Name+":"+e.Field)
	}
	return out
}

func TestReview(t *testing.T) {
	base := config.Snapshot{
		Pools:       []v1beta1.IPAddressPool{*pool("a", "192.0.2.0/28")},
		Peers:       []v1beta1.BGPPeer{*peer("tor", "198.51.100.1", "fast")},
		BFDProfiles: []v1beta1.BFDProfile{*bfd("fast")},
	}
	// broken already has a dangling reference (made while the webhook was off).
	broken := base
	broken.Peers = []v1beta1.BGPPeer{*peer("tor", "198.51.100.1", "gone")}
	broken.BFDProfiles = nil

	for _, tc := range []struct {
		name   string
		before config.Snapshot
		op     Operation
		obj    interface {
			GetName() string
		}
		want     []string
		warnings []string
	}{
		{name: "valid new pool", before: base, op: Create, obj: pool("b", "192.0.2.16/28")},
		{name: "overlapping pool: the new pool is refused, the one in force keeps working", before: base, op: Create, obj: pool("b", "192.0.2.8-192.0.2.20"),
			want: []string{"IPAddressPool/b:spec.addresses[0]"}},
		{name: "an edit into a newer pool's addresses is the edited pool's error", before: withPools(base, pool("z", "192.0.2.16/28")), op: Update, obj: pool("a", "192.0.2.0/24"),
			want: []string{"IPAddressPool/a:spec.addresses[0]"}},
		{name: "reversed range", before: base, op: Create, obj: pool("b", "192.0.2.30-192.0.2.20"),
			want: []string{"IPAddressPool/b:spec.addresses[0]"}},
		{name: "every error of the object", before: base, op: Update, obj: pool("a", "192.0.2.1/24", "x"),
			want: []string{"IPAddressPool/a:spec.addresses[0]", "IPAddressPool/a:spec.addresses[1]"}},
		{name: "deleting a referenced BFD profile is not refused, the peer is named in a warning", before: base, op: Delete, obj: bfd("fast"),
			warnings: []string{"BGPPeer/tor:spec.bfdProfile"}},
		{name: "deleting an unreferenced pool", before: base, op: Delete, obj: pool("a")},
		{name: "old problems elsewhere do not block", before: broken, op: Create, obj: pool("b", "192.0.2.16/28")},
		{name: "old problems of the object itself do", before: broken, op: Update, obj: peer("tor", "198.51.100.1", "gone"),
			want: []string{"BGPPeer/tor:spec.bfdProfile"}},
		{name: "repairing the object", before: broken, op: Update, obj: peer("tor", "198.51.100.1", "")},
		{name: "an advertisement of a pool that does not exist yet is a warning", before: base, op: Create, obj: l2("l2", "a", "later"),
			warnings: []string{"L2Advertisement/l2:spec.ipAddressPools[1]"}},
		{name: "deleting a pool an advertisement names is a warning", before: withL2(base, l2("l2", "a")), op: Delete, obj: pool("a"),
			warnings: []string{"L2Advertisement/l2:spec.ipAddressPools[0]"}},
		{name: "old warnings elsewhere are not repeated", before: withL2(base, l2("l2", "gone")), op: Create, obj: pool("b", "192.0.2.16/28")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj
			var after config.Snapshot
			var err error
			switch o := obj.(type) {
			case *v1beta1.IPAddressPool:
				after, err = Apply(tc.before, tc.op, o)
			case *v1beta1.BGPPeer:
				after, err = Apply(tc.before, tc.op, o)
			case *v1beta1.BFDProfile:
				after, err = Apply(tc.before, tc.op, o)
			case *v1beta1.L2Advertisement:
				after, err = Apply(tc.before, tc.op, o)
			}
			if err != nil {
				t.Fatal(err)
			}
			subject := Subject{Kind: kindOf(obj), Namespace: ns, Name: obj.GetName()}
			got := Check(tc.before, after, subject, tc.op)
			if diff := cmp.Diff(tc.want, fields(got.Errors)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, fields(got.Warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got.Errors, Review(tc.before, after, subject, tc.op)); diff != "" {
				t.Errorf("Review differs from Check's errors (-check +review):\n%s", diff)
			}
		})
	}
}

func kindOf(o any) string {
	switch o.(type) {
	case *v1beta1.IPAddressPool:
		return config.KindIPAddressPool
	case *v1beta1.BGPPeer:
		return config.KindBGPPeer
	case *v1beta1.BFDProfile:
		return config.KindBFDProfile
	case *v1beta1.L2Advertisement:
		return config.KindL2Advertisement
	}
	return ""
}

func TestApplyDoesNotModifyTheSnapshot(t *testing.T) {
	before := config.Snapshot{Pools: []v1beta1.IPAddressPool{*pool("a", "192.0.2.0/28"), *pool("b", "192.0.2.16/28")}}
	after, err := Apply(before, Update, pool("a", "203.0.113.0/28"))
	if err != nil {
		t.Fatal(err)
	}
	if before.Pools[0].Spec.Addresses[0] != "192.0.2.0/28" || len(before.Pools) != 2 {
		t.Fatalf("Apply modified its input: %+v", before.Pools)
	}
	if len(after.Pools) != 2 {
		t.Fatalf("after has %d pools, want 2", len(after.Pools))
	}
	after, _ = Apply(before, Delete, pool("b"))
	if len(after.Pools) != 1 || after.Pools[0].Name != "a" {
		t.Fatalf("after delete: %+v", after.Pools)
	}
	if _, err := Apply(before, Create, &corev1.Service{}); err == nil {
		t.Fatal("Apply of a Service: want an error")
	}
}

func TestDeleteWarnings(t *testing.T) {
	base := config.Snapshot{
		Pools:            []v1beta1.IPAddressPool{*pool("a", "192.0.2.0/28")},
		L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "l2"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"}}}},
		Peers:            []v1beta1.BGPPeer{*peer("tor", "198.51.100.1", "fast")},
		BFDProfiles:      []v1beta1.BFDProfile{*bfd("fast")},
	}
	for _, tc := range []struct {
		name string
		obj  client.Object
		want []string
	}{
		{name: "a pool an advertisement names", obj: pool("a"), want: []string{"L2Advertisement/l2:spec.ipAddressPools[0]"}},
		{name: "a BFD profile a peer uses", obj: bfd("fast"), want: []string{"BGPPeer/tor:spec.bfdProfile"}},
		{name: "nothing refers to it", obj: pool("b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after, err := Apply(base, Delete, tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			subject := Subject{Kind: kindOf(tc.obj), Namespace: ns, Name: tc.obj.GetName()}
			if got := Review(base, after, subject, Delete); len(got) != 0 {
				t.Errorf("Review refuses the delete: %v", got)
			}
			if diff := cmp.Diff(tc.want, fields(DeleteWarnings(base, after, subject))); diff != "" {
				t.Errorf("DeleteWarnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReleased(t *testing.T) {
	class := "other.example/lb"
	svc := func(ns, name string, lbls map[string]string, cls *string, ips ...string) corev1.Service {
		s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls}}
		s.Spec.LoadBalancerClass = cls
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	services := []corev1.Service{
		svc("apps", "web", map[string]string{"tier": "web"}, nil, "192.0.2.5", "2001:db8::5"),
		svc("apps", "edge", nil, nil, "192.0.2.0"),
		svc("apps", "outside", nil, nil, "203.0.113.5"),
		svc("apps", "other-class", nil, &class, "192.0.2.6"),
		svc("db", "pg", map[string]string{"tier": "db"}, nil, "192.0.2.9"),
		svc("apps", "pending", nil, nil),
	}
	nsLabels := func(n string) map[string]string { return map[string]string{"team": n} }
	ours := func(s *corev1.Service) bool { return s.Spec.LoadBalancerClass == nil }
	old := pool("a", "192.0.2.0/28", "2001:db8::/120", "not an address")
	with := func(mod func(*v1beta1.IPAddressPool)) *v1beta1.IPAddressPool {
		p := old.DeepCopy()
		mod(p)
		return p
	}
	for _, tc := range []struct {
		name    string
		updated *v1beta1.IPAddressPool
		want    []ServiceRef
	}{
		{name: "delete", want: []ServiceRef{
			{Namespace: "apps", Name: "edge", Why: "holds 192.0.2.0: the pool is deleted"},
			{Namespace: "apps", Name: "web", Why: "holds 192.0.2.5, 2001:db8::5: the pool is deleted"},
			{Namespace: "db", Name: "pg", Why: "holds 192.0.2.9: the pool is deleted"},
		}},
		{name: "no change", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = p.Spec.Addresses[:2] })},
		{name: "grown", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"192.0.2.0/24", "2001:db8::/64"} })},
		{name: "shrunk under some", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"192.0.2.0-192.0.2.7", "2001:db8::/120"} }),
			want: []ServiceRef{{Namespace: "db", Name: "pg", Why: "holds 192.0.2.9: no longer in spec.addresses"}}},
		{name: "IPv6 removed", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"192.0.2.0/28"} }),
			want: []ServiceRef{{Namespace: "apps", Name: "web", Why: "holds 2001:db8::5: no longer in spec.addresses"}}},
		{name: "avoidBuggyIPs turned on", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = p.Spec.Addresses[:2]; p.Spec.AvoidBuggyIPs = true }),
			want: []ServiceRef{{Namespace: "apps", Name: "edge", Why: "holds 192.0.2.0: skipped by spec.avoidBuggyIPs"}}},
		{name: "namespaces narrowed", updated: with(func(p *v1beta1.IPAddressPool) {
			p.Spec.Addresses = p.Spec.Addresses[:2]
			p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Namespaces: []string{"apps"}}
		}), want: []ServiceRef{{Namespace: "db", Name: "pg", Why: "holds 192.0.2.9: spec.serviceAllocation no longer selects the Service"}}},
		{name: "namespace selector", updated: with(func(p *v1beta1.IPAddressPool) {
			p.Spec.Addresses = p.Spec.Addresses[:2]
			p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "db"}}}}
		}), want: []ServiceRef{
			{Namespace: "apps", Name: "edge", Why: "holds 192.0.2.0: spec.serviceAllocation no longer selects the Service"},
			{Namespace: "apps", Name: "web", Why: "holds 192.0.2.5, 2001:db8::5: spec.serviceAllocation no longer selects the Service"},
		}},
		{name: "service selector", updated: with(func(p *v1beta1.IPAddressPool) {
			p.Spec.Addresses = p.Spec.Addresses[:2]
			p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "web"}}}}
		}), want: []ServiceRef{
			{Namespace: "apps", Name: "edge", Why: "holds 192.0.2.0: spec.serviceAllocation no longer selects the Service"},
			{Namespace: "db", Name: "pg", Why: "holds 192.0.2.9: spec.serviceAllocation no longer selects the Service"},
		}},
		{name: "priority only", updated: with(func(p *v1beta1.IPAddressPool) {
			p.Spec.Addresses = p.Spec.Addresses[:2]
			p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 3}
		})},
		{name: "an invalid update releases nothing here (Review refuses it)", updated: with(func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"192.0.2.9-192.0.2.1"} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Released(old, tc.updated, services, nsLabels, ours)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Released (-want +got):\n%s", diff)
			}
		})
	}
}
