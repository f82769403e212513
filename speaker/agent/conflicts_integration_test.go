package agent

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-lb/herald/internal/kube/cache"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/nodemeta"
)

// fakeGuard is a layer-2 announcer with conflict detection whose conflicts the test sets.
type fakeGuard struct {
	fakeL2
	changes chan struct{}

	mu        sync.Mutex
	fresh     map[netip.Addr]bool // union of the fresh sets received
	owned     map[netip.Addr][]string
	conflicts []layer2.Conflict
	peers     map[string]string
}

func (f *fakeGuard) SetOwnedFresh(owned map[netip.Addr][]string, fresh map[netip.Addr]bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owned = owned
	for ip := range fresh {
		f.fresh[ip] = true
	}
	return nil
}
func (f *fakeGuard) Conflicts() []layer2.Conflict {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]layer2.Conflict(nil), f.conflicts...)
}
func (f *fakeGuard) ConflictChanges() <-chan struct{} { return f.changes }
func (f *fakeGuard) SetPeerMACs(m map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = maps.Clone(m)
}
func (f *fakeGuard) MACs() map[string]string { return map[string]string{"eth0": "02:00:00:00:00:01"} }
func (f *fakeGuard) setConflicts(c []layer2.Conflict) {
	f.mu.Lock()
	f.conflicts = c
	f.mu.Unlock()
	f.changes <- struct{}{}
}

// TestAgentReportsConflicts: the agent probes only addresses nobody announced before, learns the
// other speakers' MACs from their ServiceL2Status, and reports the announcer's conflicts on
// ServiceL2Status and as events. In conflict with another speaker (a split brain) it removes no
// other speaker's status objects, and writes its own again when the other side removes them.
func TestAgentReportsConflicts(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	n1, n2 := "n1-"+hns, "n2-"+hns
	for _, n := range []string{n1, n2} {
		createReadyNode(t, c, n)
	}
	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119"}}})
	mustCreate(&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}})
	// Addresses no other test of the package uses: Services outlive their namespaces here.
	for name, ip := range map[string]string{"new": "198.51.100.110", "old": "198.51.100.111"} {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		mustCreate(s)
		t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(ctx), s) })
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if err := c.Status().Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		createReadyEndpoint(t, c, app, name)
	}
	// n2 announced "old" before (n1 takes it over) and still answers for it: n1 does not see n2
	// in memberlist (a split brain).
	n2MAC := "02:00:00:00:00:02"
	n2Status := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: n2 + "-old", Namespace: hns,
		Labels: map[string]string{LabelNode: n2, LabelServiceName: "old", LabelServiceNamespace: app}}}
	mustCreate(n2Status)
	n2Status.Status = v1beta1.ServiceL2StatusStatus{Node: n2, ServiceName: "old", ServiceNamespace: app,
		Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0", MAC: strings.ToUpper(n2MAC)}}}
	if err := c.Status().Update(ctx, n2Status); err != nil {
		t.Fatal(err)
	}

	newIP, oldIP := netip.MustParseAddr("198.51.100.110"), netip.MustParseAddr("198.51.100.111")
	foreign, _ := net.ParseMAC("02:00:00:00:00:99")
	hw2, _ := net.ParseMAC(n2MAC)
	since := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	j := &journal{members: []string{n1}}
	g := &fakeGuard{fakeL2: fakeL2{j}, changes: make(chan struct{}, 8), fresh: map[netip.Addr]bool{},
		conflicts: []layer2.Conflict{
			{IP: newIP, Interface: "eth0", MAC: foreign, NeverAnnounced: true, Since: since},
			{IP: oldIP, Interface: "eth0", MAC: hw2, Node: n2, Since: since},
		}}
	ch, err := cache.New(testWatcher(t), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.NewFakeRecorder(100)
	a, err := New(Options{
		NodeName: n1, Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: rec,
		Members: fakeMembers{j: j, changes: make(chan struct{}, 8)},
		L2:      g, BGP: fakeBGP{j}, Links: newFakeLinks(oneInterface),
		Resync: time.Hour, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = ch.Start(actx) }()
	done := make(chan error, 1)
	go func() { done <- a.Start(actx) }()

	eventually(t, "n1 to own both addresses", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.owned[newIP] != nil && g.owned[oldIP] != nil
	})
	g.mu.Lock()
	fresh, peers := maps.Clone(g.fresh), maps.Clone(g.peers)
	g.mu.Unlock()
	if !fresh[newIP] || fresh[oldIP] {
		t.Errorf("fresh addresses %v: want %s (never announced) and not %s (announced by %s)", fresh, newIP, oldIP, n2)
	}
	if diff := cmp.Diff(map[string]string{n2MAC: n2}, peers); diff != "" {
		t.Errorf("peer MACs (-want +got):\n%s", diff)
	}

	statusOf := func(svc string) v1beta1.ServiceL2StatusStatus {
		var l v1beta1.ServiceL2StatusList
		if err := c.List(ctx, &l, client.InNamespace(hns), client.MatchingLabels{LabelNode: n1, LabelServiceName: svc, LabelServiceNamespace: app}); err != nil || len(l.Items) != 1 {
			return v1beta1.ServiceL2StatusStatus{}
		}
		return l.Items[0].Status
	}
	sinceT := metav1.NewTime(since.Truncate(time.Second))
	want := map[string][]v1beta1.L2Conflict{
		"new": {{IP: newIP.String(), Interface: "eth0", MAC: foreign.String(), Action: v1beta1.L2ConflictNotAnnounced, Since: sinceT}},
		"old": {{IP: oldIP.String(), Interface: "eth0", MAC: n2MAC, Node: n2, Action: v1beta1.L2ConflictYielded, Since: sinceT}},
	}
	for svc, w := range want {
		eventually(t, "the conflict on "+svc+"'s ServiceL2Status", func() bool {
			st := statusOf(svc)
			return cmp.Equal(w, st.Conflicts) && len(st.Interfaces) == 1 && st.Interfaces[0].MAC == "02:00:00:00:00:01"
		})
	}
	var events []string
	drain := func() string {
		for {
			select {
			case e := <-rec.Events:
				events = append(events, e)
				continue
			default:
			}
			return strings.Join(events, "\n")
		}
	}
	eventually(t, "AddressConflict events", func() bool {
		all := drain()
		return strings.Contains(all, "Warning AddressConflict 198.51.100.110 is already in use by 02:00:00:00:00:99, a host that is not a Herald speaker, on interface eth0 of node "+n1) &&
			strings.Contains(all, "Warning AddressConflict 198.51.100.111 is also announced by node "+n2+" (02:00:00:00:00:02)") &&
			strings.Contains(all, "port 7946") && strings.Contains(all, "node "+n1+" stopped answering and leaves the address to node "+n2)
	})
	// n1 sweeps the status objects of speakers it does not see, but not those of n2, which answers.
	if err := c.Get(ctx, client.ObjectKeyFromObject(n2Status), &v1beta1.ServiceL2Status{}); err != nil {
		t.Errorf("n2's ServiceL2Status during the conflict with n2: %v, want it kept", err)
	}

	// The other side of a split brain sees n1 as dead and removes its status objects: n1 writes
	// them again.
	var mine v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &mine, client.InNamespace(hns), client.MatchingLabels{LabelNode: n1, LabelServiceName: "old", LabelServiceNamespace: app}); err != nil || len(mine.Items) != 1 {
		t.Fatalf("n1's status of old: %v, %d objects", err, len(mine.Items))
	}
	if err := c.Delete(ctx, &mine.Items[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1's status of old written again after another speaker removed it", func() bool {
		var o v1beta1.ServiceL2Status
		return c.Get(ctx, client.ObjectKeyFromObject(&mine.Items[0]), &o) == nil && o.UID != mine.Items[0].UID &&
			cmp.Equal(want["old"], o.Status.Conflicts)
	})

	// The conflicts end.
	g.setConflicts(nil)
	eventually(t, "the conflicts to leave ServiceL2Status", func() bool {
		return len(statusOf("new").Conflicts) == 0 && len(statusOf("old").Conflicts) == 0 && statusOf("old").Node == n1
	})
	eventually(t, "AddressConflictResolved events", func() bool {
		all := drain()
		return strings.Count(all, "Normal AddressConflictResolved") == 2
	})
	eventually(t, "n2's ServiceL2Status swept once n2 is neither a member nor answering", func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(n2Status), &v1beta1.ServiceL2Status{}))
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Start returned %v", err)
	}
}

// metaMembers is memberlist with one other live speaker, which publishes otherMeta; it keeps what
// this speaker publishes.
type metaMembers struct {
	self, other string
	otherMeta   []byte

	mu        sync.Mutex
	published nodemeta.Meta
}

func (m *metaMembers) Members() []string { return []string{m.self, m.other} }
func (m *metaMembers) MemberMeta() map[string][]byte {
	return map[string][]byte{m.other: m.otherMeta}
}
func (m *metaMembers) SetMeta(b []byte, _ time.Duration) error {
	meta, err := nodemeta.Decode(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.published = meta
	return nil
}
func (m *metaMembers) Changes() <-chan struct{}   { return nil }
func (m *metaMembers) Join([]string) (int, error) { return 0, nil }
func (m *metaMembers) Leave(time.Duration) error  { return nil }

// TestAgentLearnsSpeakerMACsFromMembership: a speaker publishes the hardware addresses of the
// interfaces it answers on in its memberlist metadata, and learns the other speakers' from
// theirs, before any of them has written a ServiceL2Status: duplicate address detection tells a
// speaker from a foreign host from the moment it joins (at 10,000 Services a speaker's status
// objects take minutes to write).
func TestAgentLearnsSpeakerMACsFromMembership(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	n1, n2 := "n1-"+hns, "n2-"+hns
	for _, n := range []string{n1, n2} {
		createReadyNode(t, c, n)
	}
	for _, o := range []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.120-198.51.100.121"}}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	m := &metaMembers{self: n1, other: n2,
		otherMeta: []byte(`{"v":2,"ready":true,"ifaces":["eth0"],"dflt":["eth0"],"macs":["02:00:00:00:00:02"]}`)}
	j := &journal{members: []string{n1, n2}}
	g := &fakeGuard{fakeL2: fakeL2{j}, changes: make(chan struct{}, 8), fresh: map[netip.Addr]bool{}}
	runAgent(t, n1, hns, g, fakeBGP{j}, m)

	eventually(t, "n2's MAC learnt from its metadata", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.peers["02:00:00:00:00:02"] == n2
	})
	var l v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &l, client.InNamespace(hns)); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("%d ServiceL2Status objects exist: the test means to show the MAC learnt without any", len(l.Items))
	}
	eventually(t, "n1 to publish its interface's MAC", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.published.Ready && slices.Equal(m.published.MACs, []string{"02:00:00:00:00:01"})
	})
}
