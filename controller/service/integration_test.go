package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

func TestAssignReleaseAndPending(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.11"})
	f.start()
	f.service("web")
	if diff := cmp.Diff([]string{"198.51.100.10"}, f.waitIPs("web", 1)); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	f.waitPoolAnnotation("web", "a")
	s := f.get("web")
	if m := s.Status.LoadBalancer.Ingress[0].IPMode; m == nil || *m != corev1.LoadBalancerIPModeVIP {
		t.Errorf("ipMode = %v, want VIP", m)
	}
	// Assignments are reported on the pool, not on each Service.
	f.waitEvent(f.herald, "a", service.ReasonIPAllocated, "Assigned 1 address: 198.51.100.10 to "+f.ns+"/web")
	if evs := f.events(f.ns, "web", service.ReasonIPAllocated); len(evs) > 0 {
		t.Errorf("IPAllocated events on the Service: %q", evs)
	}

	f.service("second")
	f.waitIPs("second", 1)
	f.service("third")
	f.waitEvent(f.ns, "third", service.ReasonAllocationFailed, "full")
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "2", AvailableIPv4: "0", AssignedIPv6: "0", AvailableIPv6: "0"})
	if v := f.gauge("herald_services_pending"); v != 1 {
		t.Errorf("herald_services_pending = %v with the pool full, want 1", v)
	}

	// Deleting a Service frees its address for the pending one.
	if err := f.c.Delete(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"198.51.100.10"}, f.waitIPs("third", 1)); diff != "" {
		t.Errorf("pending Service's address after a delete (-want +got):\n%s", diff)
	}
	f.eventually("no Service pending", 10*time.Second, func() (bool, string) {
		v := f.gauge("herald_services_pending")
		return v == 0, fmt.Sprint("herald_services_pending ", v)
	})
}

func TestTypeChangeReleasesAndClears(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10/32"})
	f.start()
	f.service("web")
	f.waitIPs("web", 1)
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "1", AvailableIPv4: "0", AssignedIPv6: "0", AvailableIPv6: "0"})

	s := f.get("web")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.LoadBalancerClass = nil
	s.Spec.AllocateLoadBalancerNodePorts = nil
	if err := f.c.Update(context.Background(), s); err != nil {
		t.Fatalf("changing type: %v", err)
	}
	f.eventually("status and annotation cleared", 20*time.Second, func() (bool, string) {
		s := f.get("web")
		_, annotated := s.Annotations[v1beta1.AnnotationAllocatedFromPool]
		return len(s.Status.LoadBalancer.Ingress) == 0 && !annotated, fmt.Sprint(ingressIPs(s), s.Annotations)
	})
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "0", AvailableIPv4: "1", AssignedIPv6: "0", AvailableIPv6: "0"})
	// The freed address goes to the next Service.
	f.service("next")
	if diff := cmp.Diff([]string{"198.51.100.10"}, f.waitIPs("next", 1)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLBClass(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.20"})
	writes := &writeCounter{}
	f.startWithConfig(writes.wrap(env.Config), func(o *service.Options) { o.LBClass = "" }) // no --lb-class flag
	plain := f.service("plain", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil })
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), plain) }) // other tests' controllers never see it
	f.service("classy")                                                      // has the fixture's class
	f.waitIPs("plain", 1)

	// A second controller with the class handles only classy.
	f2 := &fixture{t: t, c: f.c, herald: env.NewNamespace(t, "herald"), ns: f.ns, class: f.class}
	f2.pool("b", []string{"198.51.100.30/32"})
	f2.start()
	if diff := cmp.Diff([]string{"198.51.100.30"}, f.waitIPs("classy", 1)); diff != "" {
		t.Errorf("classy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"198.51.100.10"}, ingressIPs(f.get("plain"))); diff != "" {
		t.Errorf("plain (-want +got):\n%s", diff)
	}
	// The class-less controller sees classy's update before plain2's creation (one watch, in
	// order); it must leave a Service of another class alone.
	plain2 := f.service("plain2", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil })
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), plain2) })
	f.waitIPs("plain2", 1)
	if n := writes.count("/services/classy"); n != 0 {
		t.Errorf("the class-less controller wrote %d times to a Service of another class", n)
	}
	f.waitPoolAnnotation("classy", "b")
	if evs := f.events(f.ns, "classy", service.ReasonAllocationFailed); len(evs) > 0 {
		t.Errorf("the class-less controller reported on a Service of another class: %q", evs)
	}
}

func TestRequestedIPs(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.0/24", "2001:db8::/64"})
	f.start()
	f.service("spec", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.77" })
	f.service("annotation", svcAnnotation(v1beta1.AnnotationLoadBalancerIPs, "198.51.100.78"))
	f.service("both", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.79" },
		svcAnnotation(v1beta1.AnnotationLoadBalancerIPs, "198.51.100.80"))
	f.service("outside", svcAnnotation(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.5"))
	if diff := cmp.Diff([]string{"198.51.100.77"}, f.waitIPs("spec", 1)); diff != "" {
		t.Errorf("spec.loadBalancerIP (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"198.51.100.78"}, f.waitIPs("annotation", 1)); diff != "" {
		t.Errorf("annotation (-want +got):\n%s", diff)
	}
	f.waitEvent(f.ns, "both", service.ReasonAllocationFailed, "198.51.100.79", "198.51.100.80")
	f.waitEvent(f.ns, "outside", service.ReasonAllocationFailed, "203.0.113.5", "not in any pool")
	for _, name := range []string{"both", "outside"} {
		if ips := ingressIPs(f.get(name)); len(ips) != 0 {
			t.Errorf("%s got %v, want no address", name, ips)
		}
	}
}

func TestSharing(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.0/24"})
	f.start()
	shared := svcAnnotation(v1beta1.AnnotationAllowSharedIP, "k")
	f.service("http", shared, svcPorts(80))
	f.service("dns", shared, svcPorts(53))
	a := f.waitIPs("http", 1)
	b := f.waitIPs("dns", 1)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("Services with one sharing key and different ports do not share (-http +dns):\n%s", diff)
	}
	// Sharing never forces a conflict on its own (clash would get another address); asking for
	// http's address with the same port does.
	f.service("clash", shared, svcPorts(80), func(s *corev1.Service) { s.Spec.LoadBalancerIP = a[0] })
	f.waitEvent(f.ns, "clash", service.ReasonAllocationFailed, "80/TCP", f.ns+"/http", a[0])
}

func TestDualStack(t *testing.T) {
	f := newFixture(t)
	f.pool("both", []string{"198.51.100.0/24", "2001:db8::/64"})
	f.pool("v4only", []string{"203.0.113.0/24"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.AutoAssign = ptr.To(false) // only for Services that name it
	})
	f.start()
	f.service("require", svcDualStack(corev1.IPFamilyPolicyRequireDualStack, corev1.IPv6Protocol, corev1.IPv4Protocol))
	ips := f.waitIPs("require", 2)
	if !strings.Contains(ips[0], ":") || strings.Contains(ips[1], ":") {
		t.Errorf("RequireDualStack [IPv6, IPv4] got %v, want the IPv6 address first", ips)
	}
	prefer := f.service("prefer", svcDualStack(corev1.IPFamilyPolicyPreferDualStack, corev1.IPv4Protocol, corev1.IPv6Protocol),
		svcAnnotation(v1beta1.AnnotationAddressPool, "v4only"))
	first := f.waitIPs(prefer.Name, 1)
	if !strings.HasPrefix(first[0], "203.0.113.") {
		t.Fatalf("PreferDualStack from an IPv4-only pool got %v", first)
	}
	// The pool gains IPv6: the Service gets a second address and keeps its first.
	f.updatePool("v4only", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = append(p.Spec.Addresses, "2001:db8:1::/64") })
	got := f.waitIPs(prefer.Name, 2)
	if got[0] != first[0] || !strings.HasPrefix(got[1], "2001:db8:1:") {
		t.Errorf("after adding IPv6 to the pool got %v, want [%s 2001:db8:1::...]", got, first[0])
	}
}

func TestSelectorsAndPriority(t *testing.T) {
	f := newFixture(t)
	other := env.NewNamespace(t, "other")
	f.pool("general", []string{"198.51.100.0/28"})
	f.pool("mine", []string{"198.51.100.16/28"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 2, Namespaces: []string{f.ns}}
	})
	f.pool("gold", []string{"198.51.100.32/28"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 1,
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}}
	})
	f.pool("blue", []string{"198.51.100.48/28"}, func(p *v1beta1.IPAddressPool) {
		p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 0,
			NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "blue"}}}}
	})
	f.start()
	f.service("plain")
	f.service("golden", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "gold"} })
	elsewhere := f.newService("elsewhere")
	elsewhere.Namespace = other
	if err := f.c.Create(context.Background(), elsewhere); err != nil {
		t.Fatal(err)
	}
	f.waitIPs("plain", 1)
	f.waitIPs("golden", 1)
	f.eventually("elsewhere gets an address", 20*time.Second, func() (bool, string) {
		var s corev1.Service
		_ = f.c.Get(context.Background(), client.ObjectKeyFromObject(elsewhere), &s)
		return len(s.Status.LoadBalancer.Ingress) == 1, fmt.Sprint(ingressIPs(&s))
	})
	pools := func() map[string]string {
		out := map[string]string{}
		for _, n := range []string{"plain", "golden", "later", "latest"} {
			var s corev1.Service
			if f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: n}, &s) == nil {
				out[n] = s.Annotations[v1beta1.AnnotationAllocatedFromPool]
			}
		}
		var s corev1.Service
		_ = f.c.Get(context.Background(), client.ObjectKeyFromObject(elsewhere), &s)
		out["elsewhere"] = s.Annotations[v1beta1.AnnotationAllocatedFromPool]
		return out
	}
	f.eventually("pools chosen by selectors and priority", 20*time.Second, func() (bool, string) {
		got := pools()
		return cmp.Diff(map[string]string{"plain": "mine", "golden": "gold", "elsewhere": "general"}, got) == "", fmt.Sprint(got)
	})

	// "later" asks for the blue pool, which its namespace may not use yet.
	f.service("later", svcAnnotation(v1beta1.AnnotationAddressPool, "blue"))
	f.waitEvent(f.ns, "later", service.ReasonAllocationFailed, "blue")
	// Labelling the namespace requeues its Services: "later" gets its address, and blue
	// (priority 0) now comes first for new Services; existing ones keep their addresses.
	var ns corev1.Namespace
	if err := f.c.Get(context.Background(), client.ObjectKey{Name: f.ns}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels["team"] = "blue"
	if err := f.c.Update(context.Background(), &ns); err != nil {
		t.Fatal(err)
	}
	f.waitIPs("later", 1)
	f.service("latest")
	f.waitIPs("latest", 1)
	// The pool annotation is its own write, after the status: wait for it too.
	want := map[string]string{"plain": "mine", "golden": "gold", "elsewhere": "general", "later": "blue", "latest": "blue"}
	f.eventually("pools after labelling the namespace", 20*time.Second, func() (bool, string) {
		got := pools()
		return cmp.Diff(want, got) == "", cmp.Diff(want, got)
	})
}

func TestPoolEditKeepsAndShrinkReleases(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.12"})
	f.start()
	for _, n := range []string{"s0", "s1", "s2"} {
		f.service(n)
		f.waitIPs(n, 1)
	}
	before := map[string]string{}
	for _, n := range []string{"s0", "s1", "s2"} {
		before[n] = ingressIPs(f.get(n))[0]
	}
	// Growing the pool moves nothing.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"198.51.100.0/24"} })
	// 256 addresses less the network and broadcast addresses less the 3 held.
	f.waitPoolStatus("a", v1beta1.IPAddressPoolStatus{AssignedIPv4: "3", AvailableIPv4: "251", AssignedIPv6: "0", AvailableIPv6: "0"})
	for n, ip := range before {
		if got := ingressIPs(f.get(n)); len(got) != 1 || got[0] != ip {
			t.Errorf("%s: %v after growing the pool, want [%s]", n, got, ip)
		}
	}
	// Shrinking it releases (and reports) what it no longer covers; the Services get new addresses.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) {
		p.Spec.Addresses = []string{"198.51.100.10/32", "198.51.100.50-198.51.100.59"}
	})
	var moved []string
	for n, ip := range before {
		if ip == "198.51.100.10" {
			continue
		}
		moved = append(moved, n)
		f.waitEvent(f.ns, n, service.ReasonIPReleased, ip, "pool a")
		f.eventually(n+" gets an address from the shrunk pool", 20*time.Second, func() (bool, string) {
			got := ingressIPs(f.get(n))
			return len(got) == 1 && strings.HasPrefix(got[0], "198.51.100.5"), fmt.Sprint(got)
		})
	}
	if len(moved) != 2 {
		t.Fatalf("expected two Services outside the shrunk pool, got %v", before)
	}
	f.eventually("AddressesReleased condition on the pool", 20*time.Second, func() (bool, string) {
		var p v1beta1.IPAddressPool
		_ = f.c.Get(context.Background(), client.ObjectKey{Namespace: f.herald, Name: "a"}, &p)
		c := meta.FindStatusCondition(p.Status.Conditions, service.ConditionAddressesReleased)
		if c == nil {
			return false, "no condition"
		}
		return c.Status == metav1.ConditionTrue && strings.Contains(c.Message, "Released 2 address") &&
			strings.Contains(c.Message, before[moved[0]]), c.Message
	})
	for n, ip := range before {
		if ip == "198.51.100.10" {
			if got := ingressIPs(f.get(n)); len(got) != 1 || got[0] != ip {
				t.Errorf("%s: %v after shrinking, want to keep [%s]", n, got, ip)
			}
		}
	}
}

func TestInvalidConfigKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.19"})
	f.start()
	f.service("web")
	ip := f.waitIPs("web", 1)
	f.eventually("config_valid is 1", 10*time.Second, func() (bool, string) {
		v := f.gauge("herald_config_valid")
		return v == 1, fmt.Sprint(v)
	})
	// An overlapping pool makes the configuration invalid.
	f.pool("b", []string{"198.51.100.15-198.51.100.25"})
	f.waitEvent(f.herald, "b", service.ReasonInvalidConfiguration, "overlaps", "the object is not used until this is fixed")
	f.eventually("config_valid is 0", 10*time.Second, func() (bool, string) {
		v := f.gauge("herald_config_valid")
		return v == 0, fmt.Sprint(v)
	})
	// Pool a is also edited into something the old config did not have: ignored while invalid.
	f.service("new")
	got := f.waitIPs("new", 1)
	if !strings.HasPrefix(got[0], "198.51.100.1") {
		t.Errorf("new Service got %v, want an address of the last good pool a", got)
	}
	if diff := cmp.Diff(ip, ingressIPs(f.get("web"))); diff != "" {
		t.Errorf("web's address changed while the config was invalid (-want +got):\n%s", diff)
	}
	if err := f.c.Delete(context.Background(), &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: f.herald, Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	f.eventually("config_valid back to 1", 10*time.Second, func() (bool, string) {
		v := f.gauge("herald_config_valid")
		return v == 1, fmt.Sprint(v)
	})
}

// TestRestoreFromStatus starts the controller on Services whose status already holds
// addresses: a valid one is kept and nothing is written for it; an address Herald never assigned
// and no pool holds (another load balancer's, say) is left untouched and reported, and taken
// over, unchanged, once a pool holds it.
func TestRestoreFromStatus(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.19"})
	setStatus := func(name, ip string) {
		s := f.service(name)
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
		if err := f.c.Status().Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if name == "kept" {
			s.Annotations = map[string]string{v1beta1.AnnotationAllocatedFromPool: "a"}
			if err := f.c.Update(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
	}
	setStatus("kept", "198.51.100.15")
	setStatus("foreign", "203.0.113.1")

	writes := &writeCounter{}
	f.startWithConfig(writes.wrap(env.Config))
	f.service("fresh")
	fresh := f.waitIPs("fresh", 1)
	if fresh[0] == "198.51.100.15" {
		t.Errorf("a new Service got the address already in kept's status")
	}
	f.waitEvent(f.ns, "foreign", service.ReasonForeignAddress, "203.0.113.1")
	if diff := cmp.Diff([]string{"203.0.113.1"}, ingressIPs(f.get("foreign"))); diff != "" {
		t.Errorf("foreign (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"198.51.100.15"}, ingressIPs(f.get("kept"))); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	for _, name := range []string{"kept", "foreign"} {
		if n := writes.count(f.ns + "/services/" + name); n != 0 {
			t.Errorf("%d API writes to Service %s, which needed none: %v", n, name, writes.paths())
		}
	}

	// A pool that holds the foreign address: Herald takes it over as it is.
	f.pool("b", []string{"203.0.113.0/28"})
	f.eventually("foreign taken over by pool b", 20*time.Second, func() (bool, string) {
		s := f.get("foreign")
		got := ingressIPs(s)
		return len(got) == 1 && got[0] == "203.0.113.1" && s.Annotations[v1beta1.AnnotationAllocatedFromPool] == "b", fmt.Sprint(got, s.Annotations)
	})
}

// writeCounter counts the API requests that write, by path.
type writeCounter struct {
	mu     sync.Mutex
	byPath map[string]int
	total  atomic.Int64
}

func (w *writeCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet {
				w.total.Add(1)
				w.mu.Lock()
				if w.byPath == nil {
					w.byPath = map[string]int{}
				}
				w.byPath[r.Method+" "+r.URL.Path]++
				w.mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

// count returns the writes whose path contains part.
func (w *writeCounter) count(part string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for p, c := range w.byPath {
		if strings.Contains(p, part) {
			n += c
		}
	}
	return n
}

func (w *writeCounter) paths() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for p, c := range w.byPath {
		out[p] = c
	}
	return out
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
