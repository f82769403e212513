package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/nodemeta"
)

// oneInterface is a node with eth0 up, holding the default route.
var oneInterface = layer2.Host{
	Links:         []layer2.HostLink{{Index: 2, Name: "eth0", Up: true, Ethernet: true}},
	DefaultRoutes: []int{2},
}

// fakeLinks is a host whose interfaces the test changes; each change is reported to Watch.
type fakeLinks struct {
	mu     sync.Mutex
	host   layer2.Host
	scans  int
	events chan struct{}
}

func newFakeLinks(h layer2.Host) *fakeLinks {
	return &fakeLinks{host: h, events: make(chan struct{}, 1)}
}

func (f *fakeLinks) Scan() (layer2.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans++
	return f.host, nil
}

func (f *fakeLinks) Watch(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.events:
			changed()
		}
	}
}

func (f *fakeLinks) set(h layer2.Host) {
	f.mu.Lock()
	f.host = h
	f.mu.Unlock()
	select {
	case f.events <- struct{}{}:
	default:
	}
}

func (f *fakeLinks) scanCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.scans }

// tape is a journal of what the agent told memberlist and the announcer, in order.
type tape struct {
	mu       sync.Mutex
	lines    []string
	meta     nodemeta.Meta
	metas    int
	sets     int // SetOwned calls: one per computation
	owned    map[netip.Addr][]string
	prepared []string
	members  []string
	join     func(addrs []string) (int, error)
	changes  chan struct{}
}

func (r *tape) add(l string) { r.lines = append(r.lines, l) }

func (r *tape) snapshot() []string { r.mu.Lock(); defer r.mu.Unlock(); return slices.Clone(r.lines) }

// recMembers is memberlist as seen by the agent: the others publish legacy metadata (ready on eth0).
type recMembers struct{ r *tape }

func (m recMembers) Members() []string {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	return slices.Clone(m.r.members)
}
func (m recMembers) MemberMeta() map[string][]byte {
	out := map[string][]byte{}
	for _, n := range m.Members() {
		out[n] = []byte(`{"ifaces":["eth0"]}`)
	}
	return out
}
func (m recMembers) SetMeta(b []byte, _ time.Duration) error {
	meta, err := nodemeta.Decode(b)
	if err != nil {
		return err
	}
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.meta = meta
	m.r.metas++
	m.r.add(fmt.Sprintf("meta ready=%v %v", meta.Ready, meta.Interfaces))
	return nil
}
func (m recMembers) Changes() <-chan struct{} { return m.r.changes }
func (m recMembers) Join(addrs []string) (int, error) {
	if m.r.join != nil {
		return m.r.join(addrs)
	}
	return 0, nil
}
func (m recMembers) Leave(time.Duration) error { return nil }

type recL2 struct{ r *tape }

func (l recL2) SetOwned(o map[netip.Addr][]string) error {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if !equalOwned(l.r.owned, o) {
		var ips []string
		for ip, ifs := range o {
			ips = append(ips, ip.String()+"@"+strings.Join(ifs, ","))
		}
		slices.Sort(ips)
		l.r.add(fmt.Sprintf("own %v", ips))
	}
	l.r.owned = maps.Clone(o) // the agent changes o after the call
	l.r.sets++
	return nil
}

func (l recL2) Prepare(names []string) ([]string, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.r.prepared = slices.Clone(names)
	l.r.add("prepare")
	return names, nil
}

func equalOwned(a, b map[netip.Addr][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for ip, ifs := range a {
		if !slices.Equal(ifs, b[ip]) {
			return false
		}
	}
	return true
}

// readyLab is one agent against the real API server, with recording doubles for memberlist and the
// announcer, and a configuration of its own (pool in lbRange, one L2Advertisement).
type readyLab struct {
	t     *testing.T
	hns   string
	self  string
	rec   *tape
	links *fakeLinks
	agent *Agent
	ip    netip.Addr
}

func newReadyLab(t *testing.T, lbRange string, ip string, opts func(*Options, *tape)) *readyLab {
	t.Helper()
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	self := "self-" + hns
	mkNode(t, self, "")
	rl := &readyLab{t: t, hns: hns, self: self, ip: netip.MustParseAddr(ip),
		rec: &tape{members: []string{self}, changes: make(chan struct{}, 8)}, links: newFakeLinks(oneInterface)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{lbRange}}}))
	must(c.Create(ctx, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}))
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: app}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
	must(c.Create(ctx, s))
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	must(c.Status().Update(ctx, s))
	createReadyEndpoint(t, c, app, "web")

	ch, err := cache.New(testWatcher(t), cache.Options{})
	must(err)
	o := Options{
		NodeName: self, Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: &record.FakeRecorder{},
		Members: recMembers{rl.rec}, L2: recL2{rl.rec}, BGP: fakeBGP{&journal{}}, Links: rl.links,
		Resync: time.Hour, JoinTimeout: time.Hour,
	}
	if opts != nil {
		opts(&o, rl.rec)
	}
	rl.agent, err = New(o)
	must(err)
	actx, stop := context.WithCancel(context.Background())
	go func() { _ = ch.Start(actx) }()
	done := make(chan error, 1)
	go func() { done <- rl.agent.Start(actx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v", err)
		}
	})
	return rl
}

// mkNode creates a Ready Node, with an InternalIP when addr is not empty.
func mkNode(t *testing.T, name, addr string) {
	t.Helper()
	var addrs []corev1.NodeAddress
	if addr != "" {
		addrs = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
	}
	createReadyNode(t, env.Client, name, addrs...)
}

func (rl *readyLab) meta() (nodemeta.Meta, int) {
	rl.rec.mu.Lock()
	defer rl.rec.mu.Unlock()
	return rl.rec.meta, rl.rec.metas
}

func (rl *readyLab) ownsIP() bool {
	rl.rec.mu.Lock()
	defer rl.rec.mu.Unlock()
	return len(rl.rec.owned[rl.ip]) > 0
}

// before checks that the first line of the journal containing a comes before the first one
// containing b (both must exist).
func before(t *testing.T, lines []string, a, b string) {
	t.Helper()
	ia := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, a) })
	ib := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, b) })
	if ia < 0 || ib < 0 || ia > ib {
		t.Errorf("want %q before %q in:\n%s", a, b, strings.Join(lines, "\n"))
	}
}

// TestAgentStaysReadyWithAScopedConfigError: an invalid object (a new pool overlapping the one in
// force) is an error of that object only: the speaker keeps telling the others it is ready and
// keeps answering for the IP of the pool in force. (A speaker with no readable configuration
// publishes nothing, so the others never elect it: see TestAgentJoinsInBackground for the order
// of "ready" and "answering".)
func TestAgentStaysReadyWithAScopedConfigError(t *testing.T) {
	testenv.Require(t, env)
	rl := newReadyLab(t, "198.51.100.120-198.51.100.123", "198.51.100.121", nil)
	eventually(t, "ready and answering", func() bool {
		m, _ := rl.meta()
		return m.Ready && slices.Equal(m.Interfaces, []string{"eth0"}) && rl.ownsIP()
	})
	overlap := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "overlap", Namespace: rl.hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.120/30"}}}
	if err := env.Client.Create(t.Context(), overlap); err != nil {
		t.Fatal(err)
	}
	rl.agent.Trigger()
	// Wait until the agent saw it, then for one more computation.
	eventually(t, "the invalid pool to be seen", func() bool { return rl.agent.lastConfigError() != "" })
	sets := func() int { rl.rec.mu.Lock(); defer rl.rec.mu.Unlock(); return rl.rec.sets }
	seen := sets()
	rl.agent.Trigger()
	eventually(t, "a whole computation with the invalid pool", func() bool { return sets() > seen })
	if m, _ := rl.meta(); !m.Ready || !slices.Equal(m.Interfaces, []string{"eth0"}) {
		t.Fatalf("with an invalid extra pool the speaker published %+v, want ready on eth0", m)
	}
	if !rl.ownsIP() {
		t.Fatal("with an invalid extra pool the speaker stopped answering for the IP of the pool in force")
	}
}

// TestAgentJoinsInBackground: dials to other speakers that do not answer (a NotReady Node whose
// speaker is gone) never hold the first computation, and the speaker says it is ready only once it
// knows the others, here when JoinTimeout has passed.
func TestAgentJoinsInBackground(t *testing.T) {
	testenv.Require(t, env)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var started time.Time
	joinTimeout := 1500 * time.Millisecond
	rl := newReadyLab(t, "198.51.100.124-198.51.100.127", "198.51.100.125", func(o *Options, r *tape) {
		mkNode(t, "ghost-"+o.Namespace, "198.51.100.250")
		o.JoinTimeout = joinTimeout
		r.join = func([]string) (int, error) { <-release; return 0, fmt.Errorf("dial timeout") }
		started = time.Now()
	})
	eventually(t, "a first computation while the join hangs", func() bool {
		_, n := rl.meta()
		return n > 0
	})
	if m, _ := rl.meta(); m.Ready {
		t.Fatalf("ready before knowing the other speakers: %+v", m)
	}
	eventually(t, "ready after JoinTimeout", func() bool { m, _ := rl.meta(); return m.Ready && rl.ownsIP() })
	if took := time.Since(started); took < joinTimeout {
		t.Errorf("ready %v after start, before JoinTimeout %v, while the join was still running", took, joinTimeout)
	}
	before(t, rl.rec.snapshot(), "meta ready=false", "meta ready=true")
}

// TestAgentInterfaceEvents: with no resync to rely on, link events alone make the speaker stop
// answering on an interface that lost its carrier (and then tell the others), take it back when it
// returns, reopen it when it is replaced under the same name, and ignore the churn of pod veths
// (no new metadata).
func TestAgentInterfaceEvents(t *testing.T) {
	rl := newReadyLab(t, "198.51.100.140-198.51.100.143", "198.51.100.141", nil)
	eventually(t, "ready and answering on eth0", func() bool {
		m, _ := rl.meta()
		return m.Ready && slices.Equal(m.Interfaces, []string{"eth0"}) && rl.ownsIP()
	})

	down := oneInterface
	down.Links = []layer2.HostLink{{Index: 2, Name: "eth0", Ethernet: true}}
	rl.links.set(down)
	eventually(t, "the dead interface to be dropped", func() bool { m, _ := rl.meta(); return m.Ready && len(m.Interfaces) == 0 && !rl.ownsIP() })
	lines := rl.rec.snapshot()
	before(t, lines[slices.Index(lines, "meta ready=true [eth0]"):], "own []", "meta ready=true []")

	rl.links.set(oneInterface)
	eventually(t, "eth0 back", func() bool { m, _ := rl.meta(); return len(m.Interfaces) == 1 && rl.ownsIP() })
	_, metas := rl.meta()

	// 300 pod veths come and go: rescanned, nothing published.
	scans := rl.links.scanCount()
	busy := oneInterface
	for i := range 300 {
		busy.Links = append(busy.Links, layer2.HostLink{Index: 100 + i, Name: fmt.Sprintf("cali%d", i), Up: true, Ethernet: true})
	}
	rl.links.set(busy)
	eventually(t, "the pod veths to be scanned", func() bool { return rl.links.scanCount() > scans })
	rl.links.set(oneInterface)
	eventually(t, "the pod veths to be scanned again", func() bool { return rl.links.scanCount() > scans+1 })

	// eth0 replaced under the same name: prepared again (the announcer reopens it), same metadata.
	rl.rec.mu.Lock()
	rl.rec.prepared = nil
	rl.rec.mu.Unlock()
	replaced := oneInterface
	replaced.Links = []layer2.HostLink{{Index: 9, Name: "eth0", Up: true, Ethernet: true}}
	replaced.DefaultRoutes = []int{9}
	rl.links.set(replaced)
	eventually(t, "eth0 prepared again after it was replaced", func() bool {
		rl.rec.mu.Lock()
		defer rl.rec.mu.Unlock()
		return slices.Equal(rl.rec.prepared, []string{"eth0"})
	})
	if m, n := rl.meta(); n != metas || !rl.ownsIP() || len(m.Interfaces) != 1 {
		t.Errorf("after pod churn and eth0 replaced: %d metadata updates (had %d), owns the IP %v; want no new metadata and the IP kept", n, metas, rl.ownsIP())
	}
}
