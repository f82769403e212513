package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

// labelledGauge returns the value of metric name with label=value of the running controller, or -1.
func (f *fixture) labelledGauge(name, label, value string) float64 {
	f.t.Helper()
	mfs, err := f.registry.Gather()
	if err != nil {
		f.t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// waitMetrics waits until the validity gauge and the invalid objects of each kind are as wanted.
func (f *fixture) waitMetrics(valid float64, invalid map[string]float64) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("herald_config_valid %v and invalid objects %v", valid, invalid), 20*time.Second, func() (bool, string) {
		seen := fmt.Sprintf("valid=%v", f.gauge("herald_config_valid"))
		ok := f.gauge("herald_config_valid") == valid
		for kind, want := range invalid {
			got := f.labelledGauge("herald_config_invalid_objects", "kind", kind)
			seen += fmt.Sprintf(" %s=%v", kind, got)
			ok = ok && got == want
		}
		return ok, seen
	})
}

func (f *fixture) peer(name, addr, secret string) {
	f.t.Helper()
	p := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: f.herald, Name: name},
		Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: addr, PasswordSecret: &v1beta1.SecretKeyReference{Name: secret}}}
	if err := f.c.Create(context.Background(), p); err != nil {
		f.t.Fatalf("creating BGPPeer %s: %v", name, err)
	}
}

// inRange reports whether every address lies in first..last (IPv4, same /24).
func inRange(ips []string, prefix string, first, last int) bool {
	if len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(ip, prefix), "%d", &n); err != nil || !strings.HasPrefix(ip, prefix) || n < first || n > last {
			return false
		}
	}
	return true
}

// TestErrorsAreScopedToTheirObject starts the controller while a BGPPeer references a Secret that
// does not exist: the peer is reported, and allocation works. An invalid edit of a pool in use
// keeps its last version (its addresses stay, new Services still get addresses from it); a new
// pool overlapping it is the new pool's error only; a new valid pool is used meanwhile.
func TestErrorsAreScopedToTheirObject(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.19"})
	f.peer("tor", "192.0.2.1", "tor-password")
	f.start()

	f.service("web")
	web := f.waitIPs("web", 1)
	if !inRange(web, "198.51.100.", 10, 19) {
		t.Fatalf("web got %v, want an address of pool a", web)
	}
	f.waitEvent(f.herald, "tor", service.ReasonInvalidConfiguration,
		`spec.passwordSecret.name "tor-password"`, "no Secret with this name", "the object is not used until this is fixed")
	f.waitMetrics(0, map[string]float64{"BGPPeer": 1, "IPAddressPool": 0})

	// An invalid edit of the pool in use (the API server accepts a reversed range).
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"198.51.100.19-198.51.100.10"} })
	f.waitEvent(f.herald, "a", service.ReasonInvalidConfiguration, "spec.addresses[0]", "its last valid version stays in force")
	f.waitMetrics(0, map[string]float64{"BGPPeer": 1, "IPAddressPool": 1})
	f.service("web2")
	if got := f.waitIPs("web2", 1); !inRange(got, "198.51.100.", 10, 19) {
		t.Errorf("web2 got %v, want an address of pool a's last valid version", got)
	}

	// A new pool overlapping a's addresses is b's error; a keeps working; a new valid pool works.
	f.pool("b", []string{"198.51.100.15-198.51.100.25"})
	f.pool("c", []string{"203.0.113.10-203.0.113.19"})
	f.waitEvent(f.herald, "b", service.ReasonInvalidConfiguration, "of IPAddressPool a (its last valid version, in force)", "the object is not used until this is fixed")
	f.waitMetrics(0, map[string]float64{"BGPPeer": 1, "IPAddressPool": 2})
	f.service("web3", svcAnnotation(v1beta1.AnnotationAddressPool, "c"))
	if got := f.waitIPs("web3", 1); !inRange(got, "203.0.113.", 10, 19) {
		t.Errorf("web3 got %v, want an address of the new pool c", got)
	}
	for _, m := range f.events(f.herald, "a", service.ReasonInvalidConfiguration) {
		if strings.Contains(m, "overlaps") {
			t.Errorf("pool a, in force, is blamed for b's overlap: %s", m)
		}
	}
	if got := ingressIPs(f.get("web")); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Errorf("web's address changed from %v to %v", web, got)
	}

	// Everything fixed: valid again.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"198.51.100.10-198.51.100.19"} })
	if err := f.c.Delete(context.Background(), &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: f.herald, Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.herald, Name: "tor-password"},
		StringData: map[string]string{"password": "s3cret"}}); err != nil {
		t.Fatal(err)
	}
	f.waitMetrics(1, map[string]float64{"BGPPeer": 0, "IPAddressPool": 0})
	if got := ingressIPs(f.get("web")); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Errorf("web's address changed from %v to %v", web, got)
	}
}

// TestRestartWithInvalidPool restarts the controller while a pool in use is invalid: its last
// valid version is unknown, so the pool is not used, but the Services holding its addresses keep
// them (reported, never released or moved), and the other pools work.
func TestRestartWithInvalidPool(t *testing.T) {
	f := newFixture(t)
	f.pool("a", []string{"198.51.100.10-198.51.100.19"})
	f.pool("c", []string{"203.0.113.10-203.0.113.19"})
	stop := f.start()
	f.service("web", svcAnnotation(v1beta1.AnnotationAddressPool, "a"))
	web := f.waitIPs("web", 1)
	f.waitPoolAnnotation("web", "a")
	stop()

	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"198.51.100.19-198.51.100.10"} })
	f.start()
	f.service("other")
	if got := f.waitIPs("other", 1); !inRange(got, "203.0.113.", 10, 19) {
		t.Errorf("a new Service got %v, want an address of the valid pool c", got)
	}
	f.waitEvent(f.ns, "web", service.ReasonPoolNotInForce, web[0], "IPAddressPool a is invalid")
	f.waitMetrics(0, map[string]float64{"IPAddressPool": 1})
	if got := ingressIPs(f.get("web")); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Fatalf("web's address changed from %v to %v while its pool was invalid", web, got)
	}

	// Fixed: web's address is restored into the pool and kept.
	f.updatePool("a", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"198.51.100.10-198.51.100.19"} })
	f.waitMetrics(1, map[string]float64{"IPAddressPool": 0})
	f.eventually("pool a counts web's address", 20*time.Second, func() (bool, string) {
		var p v1beta1.IPAddressPool
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.herald, Name: "a"}, &p); err != nil {
			return false, err.Error()
		}
		return p.Status.AssignedIPv4 == "1", p.Status.AssignedIPv4
	})
	if got := ingressIPs(f.get("web")); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Errorf("web's address changed from %v to %v once its pool was fixed", web, got)
	}
}
