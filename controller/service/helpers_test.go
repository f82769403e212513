package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// fixture is one test's world: a Herald namespace, a namespace for Services, and an lb-class
// that keeps this test's Services apart from every other test's.
type fixture struct {
	t        *testing.T
	c        client.Client
	herald   string
	ns       string
	class    string
	registry *prometheus.Registry
	ctrl     *service.Controller
	// mgrLog is the manager's logger (the zero Logger discards).
	mgrLog logr.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.Require(t, env)
	f := &fixture{t: t, c: env.Client, herald: env.NewNamespace(t, "herald"), ns: env.NewNamespace(t, "svc")}
	f.class = "herald.dev/" + f.ns
	return f
}

// start runs the controller in-process until the test ends (or stop is called).
func (f *fixture) start(mods ...func(*service.Options)) (stop func()) {
	f.t.Helper()
	return f.startWithConfig(env.Config, mods...)
}

func (f *fixture) startWithConfig(base *rest.Config, mods ...func(*service.Options)) (stop func()) {
	f.t.Helper()
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Logger:                 f.mgrLog,
		Cache:                  service.CacheOptions(f.herald),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             crconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatalf("creating manager: %v", err)
	}
	opts := service.Options{Namespace: f.herald, LBClass: f.class, SkipNameValidation: true, PoolStatusInterval: 200 * time.Millisecond}
	for _, m := range mods {
		m(&opts)
	}
	f.registry = prometheus.NewRegistry()
	opts.Registry = f.registry
	c, err := service.New(opts)
	if err != nil {
		f.t.Fatalf("service.New: %v", err)
	}
	if err := c.SetupWithManager(mgr); err != nil {
		f.t.Fatalf("SetupWithManager: %v", err)
	}
	f.ctrl = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("manager: %v", err)
		}
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) pool(name string, addrs []string, mods ...func(*v1beta1.IPAddressPool)) *v1beta1.IPAddressPool {
	f.t.Helper()
	p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: f.herald, Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	for _, m := range mods {
		m(p)
	}
	if err := f.c.Create(context.Background(), p); err != nil {
		f.t.Fatalf("creating pool %s: %v", name, err)
	}
	return p
}

// updatePool re-reads a pool, applies mod and updates it.
func (f *fixture) updatePool(name string, mod func(*v1beta1.IPAddressPool)) {
	f.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var p v1beta1.IPAddressPool
		if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.herald, Name: name}, &p); err != nil {
			return false, err
		}
		mod(&p)
		return f.c.Update(ctx, &p) == nil, nil
	})
	if err != nil {
		f.t.Fatalf("updating pool %s: %v", name, err)
	}
}

func svcPorts(ports ...int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Ports = nil
		for _, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p, Protocol: corev1.ProtocolTCP})
		}
	}
}

func svcAnnotation(k, v string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func svcDualStack(p corev1.IPFamilyPolicy, fams ...corev1.IPFamily) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.IPFamilyPolicy = &p; s.Spec.IPFamilies = fams }
}

// newService returns a LoadBalancer Service of the fixture's class (not created).
func (f *fixture) newService(name string, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass:             ptr.To(f.class),
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func (f *fixture) service(name string, mods ...func(*corev1.Service)) *corev1.Service {
	f.t.Helper()
	s := f.newService(name, mods...)
	if err := f.c.Create(context.Background(), s); err != nil {
		f.t.Fatalf("creating Service %s: %v", name, err)
	}
	return s
}

func (f *fixture) get(name string) *corev1.Service {
	f.t.Helper()
	var s corev1.Service
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &s); err != nil {
		f.t.Fatalf("getting Service %s: %v", name, err)
	}
	return &s
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes; cond returns a description of
// what it saw, for the failure message.
func (f *fixture) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	f.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 25*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		last = seen
		return ok, nil
	})
	if err != nil {
		f.t.Fatalf("%s: not within %v; last seen: %s", what, timeout, last)
	}
}

// waitIPs waits until the Service's status lists exactly n addresses and returns them.
func (f *fixture) waitIPs(name string, n int) []string {
	f.t.Helper()
	var ips []string
	f.eventually(fmt.Sprintf("Service %s gets %d address(es)", name, n), 20*time.Second, func() (bool, string) {
		ips = ingressIPs(f.get(name))
		return len(ips) == n, fmt.Sprint(ips)
	})
	return ips
}

// waitPoolAnnotation waits until the Service's pool annotation reads want: the controller writes it
// right after the status, in a write of its own.
func (f *fixture) waitPoolAnnotation(name, want string) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("Service %s annotated with pool %q", name, want), 20*time.Second, func() (bool, string) {
		got := f.get(name).Annotations[v1beta1.AnnotationAllocatedFromPool]
		return got == want, got
	})
}

// events returns the messages of the events with reason on the named object of namespace ns.
func (f *fixture) events(ns, name, reason string) []string {
	f.t.Helper()
	var list corev1.EventList
	if err := f.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		f.t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	slices.Sort(out)
	return out
}

// waitEvent waits for an event with reason on the object whose message contains every part.
func (f *fixture) waitEvent(ns, name, reason string, parts ...string) string {
	f.t.Helper()
	var found string
	f.eventually(fmt.Sprintf("event %s on %s/%s containing %q", reason, ns, name, parts), 20*time.Second, func() (bool, string) {
		msgs := f.events(ns, name, reason)
		for _, m := range msgs {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(m, p)
			}
			if ok {
				found = m
				return true, m
			}
		}
		return false, fmt.Sprint(msgs)
	})
	return found
}

// waitPoolStatus waits until the pool's status counts are want (conditions ignored).
func (f *fixture) waitPoolStatus(name string, want v1beta1.IPAddressPoolStatus) {
	f.t.Helper()
	f.eventually("status of pool "+name, 20*time.Second, func() (bool, string) {
		var p v1beta1.IPAddressPool
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.herald, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		got := p.Status
		got.Conditions = nil
		d := cmp.Diff(want, got)
		return d == "", d
	})
}

// gauge returns the value of an unlabelled metric of the running controller, or -1.
func (f *fixture) gauge(name string) float64 {
	f.t.Helper()
	mfs, err := f.registry.Gather()
	if err != nil {
		f.t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
