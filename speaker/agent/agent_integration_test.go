package agent

import (
	"context"
	"maps"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/cache"
	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/plan"
	"github.com/herald-lb/herald/speaker/status"
)

var env *testenv.Env

// The service range holds the 10,000 Services of TestBenchSpeakerScale.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{ExtraFlags: map[string]string{
		"service-cluster-ip-range": "10.0.0.0/16,fd00:10::/108",
	}}, &env))
}

// testWatcher is the client an agent under test lists and watches Services and EndpointSlices
// with, as the speaker's.
// testWatcher returns a client of the test API server as the speaker makes one (the agent's
// Client and Watcher, and what its cache lists and watches through).
func testWatcher(t *testing.T) *kclient.REST {
	t.Helper()
	w, err := kclient.New(env.Config, nil, env.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// journal records the calls of the test doubles in order.
type journal struct {
	mu      sync.Mutex
	calls   []string
	owned   map[netip.Addr][]string
	routes  bgp.Routes
	members []string
}

func (j *journal) add(c string) { j.mu.Lock(); j.calls = append(j.calls, c); j.mu.Unlock() }

type fakeMembers struct {
	j       *journal
	changes chan struct{}
}

func (f fakeMembers) Members() []string {
	f.j.mu.Lock()
	defer f.j.mu.Unlock()
	return append([]string(nil), f.j.members...)
}
func (f fakeMembers) MemberMeta() map[string][]byte {
	m := map[string][]byte{}
	for _, n := range f.Members() {
		m[n] = []byte(`{"ifaces":["eth0"]}`)
	}
	return m
}
func (f fakeMembers) SetMeta([]byte, time.Duration) error { return nil }
func (f fakeMembers) Changes() <-chan struct{}            { return f.changes }
func (f fakeMembers) Join([]string) (int, error)          { return 0, nil }
func (f fakeMembers) Leave(time.Duration) error           { f.j.add("leave"); return nil }
func (f fakeMembers) setAlive(names ...string) {
	f.j.mu.Lock()
	f.j.members = names
	f.j.mu.Unlock()
	f.changes <- struct{}{}
}

type fakeL2 struct{ j *journal }

func (f fakeL2) Prepare(names []string) ([]string, error) { return names, nil }

func (f fakeL2) SetOwned(o map[netip.Addr][]string) error {
	f.j.mu.Lock()
	defer f.j.mu.Unlock()
	f.j.owned = maps.Clone(o) // the agent changes o after the call
	if len(o) == 0 {
		f.j.calls = append(f.j.calls, "l2-empty")
	}
	return nil
}

type fakeBGP struct{ j *journal }

func (f fakeBGP) SetPeers(context.Context, []bgp.Peer) error { return nil }
func (f fakeBGP) SetRoutes(_ context.Context, r bgp.Routes) error {
	f.j.mu.Lock()
	f.j.routes = r
	f.j.mu.Unlock()
	return nil
}
func (f fakeBGP) Status() []bgp.PeerStatus {
	return []bgp.PeerStatus{{Name: "tor", Address: netip.MustParseAddr("198.51.100.1"), State: bgp.StateActive,
		LastError: "no TCP connection: i/o timeout (peer unreachable, not accepting BGP, or TCP MD5 password mismatch)"}}
}
func (f fakeBGP) Changes() <-chan struct{}             { return nil }
func (f fakeBGP) Shutdown(context.Context) error       { f.j.add("bgp-shutdown"); return nil }
func (f fakeBGP) StopForRestart(context.Context) error { f.j.add("bgp-stop-for-restart"); return nil }

// eventually polls cond every 20ms until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 15*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestAgentAnnouncesReportsAndShutsDownInOrder(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")

	for _, n := range []string{"n1", "n2"} {
		createReadyNode(t, c, n+"-"+hns)
	}
	n1, n2 := "n1-"+hns, "n2-"+hns

	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119"}}})
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "dark", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.160/28"}}})
	mustCreate(&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}})

	svc := func(name, ip string) *corev1.Service { return createLBService(t, c, app, name, ip) }
	svc("web", "198.51.100.105")
	createReadyEndpoint(t, c, app, "web")
	svc("dark", "198.51.100.161")
	createReadyEndpoint(t, c, app, "dark")
	svc("idle", "198.51.100.106") // no endpoint: not announced

	// A status object left by a speaker that died: the first live speaker removes it.
	ghost := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "ghost-web", Namespace: hns,
		Labels: map[string]string{LabelNode: "ghost", LabelServiceName: "web", LabelServiceNamespace: app}}}
	mustCreate(ghost)
	// A status object of this node named as an older speaker named it: the agent replaces it.
	oldNamed := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: n1 + "-" + app + "-web", Namespace: hns,
		Labels: map[string]string{LabelNode: n1, LabelServiceName: "web", LabelServiceNamespace: app}}}
	mustCreate(oldNamed)

	// The cache and the agent as the speaker runs them, with doubles for memberlist and the announcers.
	opts := CacheOptions(hns, n1)
	ch, err := cache.New(testWatcher(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{members: []string{n1}}
	fm := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	rec := record.NewFakeRecorder(100)
	reg := prometheus.NewRegistry()
	a, err := New(Options{
		NodeName: n1, Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: rec, Members: fm,
		L2: fakeL2{j}, BGP: fakeBGP{j}, Links: newFakeLinks(oneInterface),
		Resync: time.Hour, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	go func() { _ = ch.Start(actx) }()
	done := make(chan error, 1)
	go func() { done <- a.Start(actx) }()

	ip := netip.MustParseAddr("198.51.100.105")
	eventually(t, "n1 to answer for 198.51.100.105 on eth0", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned[ip]) == 1 && j.owned[ip][0] == "eth0"
	})
	j.mu.Lock()
	_, idleOwned := j.owned[netip.MustParseAddr("198.51.100.106")]
	j.mu.Unlock()
	if idleOwned {
		t.Errorf("198.51.100.106 of a Service without endpoints is announced; want it withdrawn")
	}
	eventually(t, "ServiceL2Status naming n1", func() bool {
		var l v1beta1.ServiceL2StatusList
		if err := c.List(ctx, &l, client.InNamespace(hns)); err != nil || len(l.Items) != 1 {
			return false
		}
		st := l.Items[0].Status
		return l.Items[0].Name == status.Name(n1, app+"/web") &&
			st.Node == n1 && st.ServiceName == "web" && st.ServiceNamespace == app && len(st.Interfaces) == 1
	})
	// The status writer updates the status with a body of the object's name, resourceVersion and
	// status only (the store keeps no labels): the object keeps all three on the API server.
	var written v1beta1.ServiceL2Status
	if err := c.Get(ctx, client.ObjectKey{Namespace: hns, Name: status.Name(n1, app+"/web")}, &written); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{LabelNode: n1, LabelServiceName: "web", LabelServiceNamespace: app}, written.Labels); diff != "" {
		t.Errorf("labels of the written ServiceL2Status (-want +got):\n%s", diff)
	}
	eventually(t, "the ServiceL2Status named by the old scheme to be removed", func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(oldNamed), &v1beta1.ServiceL2Status{}))
	})
	eventually(t, "the dead speaker's ServiceL2Status to be removed", func() bool {
		return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(ghost), &v1beta1.ServiceL2Status{}))
	})
	eventually(t, "BGPSessionStatus saying why the session is down", func() bool {
		var l v1beta1.BGPSessionStatusList
		if err := c.List(ctx, &l, client.InNamespace(hns)); err != nil || len(l.Items) != 1 {
			return false
		}
		st := l.Items[0].Status
		return l.Items[0].Name == status.ObjectName(n1, "tor") && st.Node == n1 && st.Peer == "tor" && st.State == "Active" &&
			strings.Contains(st.LastError, "MD5 password mismatch")
	})
	var events []string
	eventually(t, "NodeAssigned and NotAnnounced events", func() bool {
		for {
			select {
			case e := <-rec.Events:
				events = append(events, e)
				continue
			default:
			}
			break
		}
		all := strings.Join(events, "\n")
		return strings.Contains(all, "Normal NodeAssigned announcing 198.51.100.105 from node "+n1) &&
			strings.Contains(all, `Warning NotAnnounced 198.51.100.161 is assigned but not announced: no L2Advertisement or BGPAdvertisement announces pool "dark"`) &&
			strings.Contains(all, "Warning NotAnnounced 198.51.100.106 is assigned but not announced: "+plan.NoEndpointsReason)
	})
	// The only live speaker reports both unannounced IPs in its metrics, by cause.
	for cause, want := range map[string]float64{causeNoAnnouncer: 1, causeNoEndpoints: 1} {
		if got := testutil.ToFloat64(a.metrics.unannounced.WithLabelValues(cause)); got != want {
			t.Errorf("herald_speaker_unannounced_ips{cause=%q} = %v, want %v", cause, got, want)
		}
	}

	// An invalid pool (newer, overlapping the one in use) is left out: the IP stays announced.
	// Checked after a sync that applied the configuration with the error, not merely read it.
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "overlap", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.96/27"}}})
	eventually(t, "the invalid pool to be seen", func() bool {
		return metricValue(t, reg, "herald_speaker_config_invalid_objects", "kind", "IPAddressPool") == 1
	})
	afterNextSync(t, a, reg)
	j.mu.Lock()
	kept := len(j.owned[ip]) == 1
	j.mu.Unlock()
	if !kept {
		t.Fatalf("an invalid pool dropped the announced IP")
	}

	// A dead owner loses the IP at once on the membership change: with only n2 alive, n1 must not answer.
	fm.setAlive(n2)
	eventually(t, "n1 to stop answering once it is not a live member", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned) == 0
	})
	// n2 dies in turn: n1 takes the IP over, and counts it.
	if got := testutil.ToFloat64(a.metrics.takeovers); got != 0 {
		t.Errorf("herald_speaker_layer2_takeovers_total = %v before any takeover, want 0", got)
	}
	fm.setAlive(n1)
	eventually(t, "n1 to take 198.51.100.105 over from n2", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return len(j.owned[ip]) == 1
	})
	if got := testutil.ToFloat64(a.metrics.takeovers); got != 1 {
		t.Errorf("herald_speaker_layer2_takeovers_total = %v after taking one IP over, want 1", got)
	}

	// Shutdown: stop answering first, then leave.
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Start returned %v", err)
	}
	j.mu.Lock()
	calls := strings.Join(j.calls, ",")
	j.mu.Unlock()
	if !strings.HasPrefix(calls, "l2-empty") || !strings.Contains(calls, "leave") || !strings.Contains(calls, "bgp-shutdown") {
		t.Errorf("shutdown calls = %q, want l2-empty first, then leave and bgp-shutdown", calls)
	}
}

// createReadyEndpoint gives the Service one ready endpoint, on no node in particular: enough for a
// Service of policy Cluster to be announced.
func createReadyEndpoint(t *testing.T, c client.Client, ns, svc string) {
	t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	if err := c.Create(t.Context(), es); err != nil {
		t.Fatalf("creating EndpointSlice %s/%s: %v", ns, es.Name, err)
	}
}

// createReadyNode creates a Node whose Ready condition is True, with the given addresses, deleted
// at the end of the test.
func createReadyNode(t *testing.T, c client.Client, name string, addrs ...corev1.NodeAddress) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(t.Context(), n); err != nil {
		t.Fatalf("creating Node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), n) })
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	n.Status.Addresses = addrs
	if err := c.Status().Update(t.Context(), n); err != nil {
		t.Fatalf("making Node %s ready: %v", name, err)
	}
	return n
}

// createLBService creates a Service of type LoadBalancer (port 80) with ip in its status, as the
// controller would have assigned it.
func createLBService(t *testing.T, c client.Client, ns, name, ip string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
	if err := c.Create(t.Context(), s); err != nil {
		t.Fatalf("creating Service %s/%s: %v", ns, name, err)
	}
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if err := c.Status().Update(t.Context(), s); err != nil {
		t.Fatalf("setting the IP of Service %s/%s: %v", ns, name, err)
	}
	return s
}
