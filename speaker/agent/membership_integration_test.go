package agent

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// countingMembers counts the readings of memberlist.
type countingMembers struct {
	fakeMembers
	reads *atomic.Int32
}

func (m countingMembers) Members() []string {
	m.reads.Add(1)
	return m.fakeMembers.Members()
}

func (m countingMembers) MemberMeta() map[string][]byte {
	m.reads.Add(1)
	return m.fakeMembers.MemberMeta()
}

// TestMembershipReadOncePerComputation: a computation reads memberlist once and plans, reports
// events and writes status with that one reading; reading it several times let a membership change
// in the middle of a computation make the events and the status disagree with the plan.
func TestMembershipReadOncePerComputation(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	var names []string
	for _, n := range []string{"n1", "n2"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n + "-" + hns}}
		if err := c.Create(ctx, node); err != nil {
			t.Fatal(err)
		}
		names = append(names, node.Name)
	}
	ch, err := cache.New(testWatcher(t), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ch.Start(ctx) }()
	if !ch.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	j := &journal{members: names}
	reads := &atomic.Int32{}
	// The agent is not started: the test runs its computations itself, so nothing else (joins,
	// the status writer's sweep) reads memberlist meanwhile.
	a, err := New(Options{
		NodeName: names[0], Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: record.NewFakeRecorder(100),
		Members: countingMembers{fakeMembers{j: j, changes: make(chan struct{}, 8)}, reads},
		L2:      fakeL2{j}, BGP: fakeBGP{j}, Resync: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, cause := range []string{syncStart, syncMembers, syncResync, syncAPI} {
		before := reads.Load()
		a.Trigger()
		a.sync(ctx, cause)
		if got := reads.Load() - before; got != 1 {
			t.Errorf("a computation (%s) read memberlist %d times, want once", cause, got)
		}
	}
	if got, want := a.members.alive, names; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("the computation planned with members %q, want %q", got, want)
	}
}

// gateL2 is a layer-2 announcer whose SetOwned can be held, to keep a computation running.
type gateL2 struct {
	fakeL2
	mu      sync.Mutex
	hold    chan struct{} // not nil: SetOwned waits for it to close
	entered chan struct{}
}

func (g *gateL2) SetOwned(o map[netip.Addr][]string) error {
	g.mu.Lock()
	hold := g.hold
	g.mu.Unlock()
	if hold != nil {
		g.entered <- struct{}{}
		<-hold
	}
	return g.fakeL2.SetOwned(o)
}

// TestChangesDuringAComputationCoalesce: the membership changes and object changes that come while
// a computation runs make one more computation, not one per notification; and a membership change
// still re-elects at once.
func TestChangesDuringAComputationCoalesce(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	self := "n1-" + hns
	if err := c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: self}}); err != nil {
		t.Fatal(err)
	}
	ch, err := cache.New(testWatcher(t), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{members: []string{self}}
	fm := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	g := &gateL2{fakeL2: fakeL2{j}, entered: make(chan struct{}, 1)}
	a, err := New(Options{
		NodeName: self, Namespace: hns, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: record.NewFakeRecorder(1000),
		Members: fm, L2: g, BGP: fakeBGP{j}, Resync: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	type computation struct {
		cause string
		alive []string
	}
	var (
		mu   sync.Mutex
		seen []computation
	)
	a.observeSync = func(cause string, _ time.Duration) {
		mu.Lock()
		seen = append(seen, computation{cause, a.members.alive})
		mu.Unlock()
	}
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = ch.Start(actx) }()
	go func() { _ = a.Start(actx) }()
	eventually(t, "the first computation", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) > 0 })

	// A membership change starts a computation, held in the announcer.
	g.mu.Lock()
	g.hold = make(chan struct{})
	g.mu.Unlock()
	fm.setAlive(self, "a")
	<-g.entered
	mu.Lock()
	first := len(seen)
	mu.Unlock()
	// Meanwhile: three more membership changes and a burst of object changes. They are added to
	// the queue here, not sent on the members channel: its forwarding goroutine could still be
	// adding one after the held computation ends, and a change that comes after a computation
	// rightly makes another (CI saw that). The channel's path is taken by the first and last change.
	for _, m := range []string{"b", "c", "d"} {
		fm.j.mu.Lock()
		fm.j.members = []string{self, m}
		fm.j.mu.Unlock()
		a.enqueue(syncMembers)
	}
	for range 20 {
		a.Trigger()
	}
	g.mu.Lock()
	close(g.hold)
	g.hold = nil
	g.mu.Unlock()
	eventually(t, "the computation after the held one", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= first+2 })
	// Then a last membership change: its computation comes after those of the burst.
	fm.setAlive(self, "z")
	eventually(t, "the computation of the last membership change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && slices.Contains(seen[len(seen)-1].alive, "z")
	})
	mu.Lock()
	defer mu.Unlock()
	burst := seen[first+1 : len(seen)-1]
	members := 0
	for _, s := range burst {
		if s.cause == syncMembers {
			members++
		}
	}
	t.Logf("computations after the held one: %+v", seen[first+1:])
	if members > 1 {
		t.Errorf("the burst made %d computations for membership changes, want 1 (coalesced): %+v", members, burst)
	}
	if got := seen[first+1]; got.cause != syncMembers || !slices.Contains(got.alive, "d") {
		t.Errorf("the computation after the held one is %+v, want a re-election with the last members (d)", got)
	}
}
