package agent

import (
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/herald-lb/herald/internal/testenv"
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
	ch, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
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
		NodeName: names[0], Namespace: hns, Cache: ch, Client: c, Recorder: record.NewFakeRecorder(100),
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
