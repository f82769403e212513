package agent

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/bgp"
)

// peersBGP is a BGP double that records the peers of every SetPeers call.
type peersBGP struct {
	mu    sync.Mutex
	calls int
	peers []bgp.Peer
}

func (b *peersBGP) SetPeers(_ context.Context, p []bgp.Peer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.peers = slices.Clone(p)
	return nil
}
func (b *peersBGP) SetRoutes(context.Context, bgp.Routes) error { return nil }
func (b *peersBGP) Status() []bgp.PeerStatus                    { return nil }
func (b *peersBGP) Changes() <-chan struct{}                    { return nil }
func (b *peersBGP) Shutdown(context.Context) error              { return nil }
func (b *peersBGP) StopForRestart(context.Context) error        { return nil }

// last returns the number of SetPeers calls and the peers of the last one, "name:password" each.
func (b *peersBGP) last() (int, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, p := range b.peers {
		out = append(out, p.Name+":"+p.Password)
	}
	slices.Sort(out)
	return b.calls, out
}

// metricValue returns the value of a gauge or counter (with label=value when label is set) or the
// sample count of a histogram, -1 when absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == label && l.GetValue() == value }) {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// afterNextSync triggers a sync and waits until one has completed (announcements applied) since
// the call: what the test checks next is the state that sync left.
func afterNextSync(t *testing.T, a *Agent, reg *prometheus.Registry) {
	t.Helper()
	n := metricValue(t, reg, "herald_speaker_sync_seconds", "", "")
	a.Trigger()
	eventually(t, "a sync to complete", func() bool { return metricValue(t, reg, "herald_speaker_sync_seconds", "", "") > n })
}

// runAgent starts a cache and an agent for node as the speaker runs them; stop ends both.
func runAgent(t *testing.T, node, hns string, l2 Layer2, b BGP, members Membership) (a *Agent, reg *prometheus.Registry, stop func()) {
	t.Helper()
	ch, err := cache.New(testWatcher(t), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg = prometheus.NewRegistry()
	a, err = New(Options{
		NodeName: node, Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: record.NewFakeRecorder(100), Members: members,
		L2: l2, BGP: b, Links: newFakeLinks(oneInterface),
		Resync: time.Hour, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	go func() { done <- ch.Start(ctx) }()
	go func() { done <- a.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		<-done
	}
	t.Cleanup(stop)
	return a, reg, stop
}

// TestAgentConfigErrorsAreScoped: a speaker started while a BGPPeer references a Secret that does
// not exist announces its layer-2 IP and keeps its other peer; once the Secret exists the peer is
// used, and when it is deleted again the peer keeps the password it had and the error is reported.
// A speaker restarted while the Secret is missing skips that peer only.
func TestAgentConfigErrorsAreScoped(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	node := "n1-" + hns
	createReadyNode(t, c, node)
	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: hns} }
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: meta("l2"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119"}}})
	mustCreate(&v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}})
	mustCreate(&v1beta1.BGPPeer{ObjectMeta: meta("good"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.1"}})
	mustCreate(&v1beta1.BGPPeer{ObjectMeta: meta("locked"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "192.0.2.2",
		PasswordSecret: &v1beta1.SecretKeyReference{Name: "locked-password"}}})
	createLBService(t, c, app, "web", "198.51.100.105")
	// Its own endpoint: without one, web is not announced, and the test passed only when an earlier
	// test's Service with the same IP and an endpoint still existed.
	createReadyEndpoint(t, c, app, "web")
	ip := netip.MustParseAddr("198.51.100.105")
	j := &journal{members: []string{node}}
	members := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	answered := func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned[ip]) == 1
	}
	peersAre := func(b *peersBGP, want ...string) func() bool {
		return func() bool { _, got := b.last(); return slices.Equal(got, want) }
	}

	// Start-up with the Secret missing: layer 2 and the other peer work, the error is counted.
	b := &peersBGP{}
	a, reg, stop := runAgent(t, node, hns, fakeL2{j}, b, members)
	eventually(t, "the layer-2 IP announced at start-up with a peer's Secret missing", answered)
	eventually(t, "the valid peer configured, the one without its Secret skipped", peersAre(b, "good:"))
	eventually(t, "one invalid BGPPeer counted", func() bool {
		return metricValue(t, reg, "herald_speaker_config_invalid_objects", "kind", "BGPPeer") == 1 &&
			metricValue(t, reg, "herald_speaker_config_valid", "", "") == 0
	})
	if msg := a.lastConfigError(); !strings.Contains(msg, `BGPPeer `+hns+`/locked: spec.passwordSecret.name "locked-password"`) {
		t.Errorf("configuration error = %q, want the missing Secret named", msg)
	}

	// The Secret appears: the peer is used with its password.
	secret := &corev1.Secret{ObjectMeta: meta("locked-password"), StringData: map[string]string{"password": "s3cret"}}
	mustCreate(secret)
	eventually(t, "the peer configured once its Secret exists", peersAre(b, "good:", "locked:s3cret"))
	eventually(t, "no invalid object", func() bool {
		return metricValue(t, reg, "herald_speaker_config_invalid_objects", "kind", "BGPPeer") == 0 &&
			metricValue(t, reg, "herald_speaker_config_valid", "", "") == 1
	})

	// The Secret is deleted at run time: reported, and the peer keeps the password it had.
	if err := c.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted Secret reported", func() bool {
		return metricValue(t, reg, "herald_speaker_config_invalid_objects", "kind", "BGPPeer") == 1 &&
			strings.Contains(a.lastConfigError(), "locked-password")
	})
	afterNextSync(t, a, reg)
	if _, got := b.last(); !slices.Equal(got, []string{"good:", "locked:s3cret"}) {
		t.Errorf("peers after the Secret was deleted = %v, want the peer kept with its last password", got)
	}
	if !answered() {
		t.Error("the layer-2 IP is no longer announced after the Secret was deleted")
	}

	// A speaker restarted while the Secret is missing: that peer is skipped, nothing else.
	stop()
	j.mu.Lock()
	j.owned = nil
	j.mu.Unlock()
	b2 := &peersBGP{}
	_, reg2, _ := runAgent(t, node, hns, fakeL2{j}, b2, members)
	eventually(t, "the layer-2 IP announced after a restart with a peer's Secret missing", answered)
	eventually(t, "only the valid peer after the restart", peersAre(b2, "good:"))
	eventually(t, "the invalid peer counted after the restart", func() bool {
		return metricValue(t, reg2, "herald_speaker_config_invalid_objects", "kind", "BGPPeer") == 1
	})
}
