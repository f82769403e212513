package status

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, &env))
}

// eventually polls cond every 20ms until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// TestStatusSweepSparesSpeakersAliveNow: a sweep computed while a speaker was gone does not remove
// the objects that speaker wrote after it came back; and recheck makes a writer write again an
// object removed behind its back.
func TestStatusSweepSparesSpeakersAliveNow(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	back := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "back-web", Namespace: hns,
		Labels: map[string]string{LabelNode: "back", LabelServiceName: "web", LabelServiceNamespace: "app"}}}
	if err := c.Create(ctx, back); err != nil {
		t.Fatal(err)
	}
	alive := []string{"me", "back"}
	w := NewWriter(crclient.Client(c), hns, "me", slog.New(slog.DiscardHandler), func() []string { return alive })
	stale := Desired{L2: map[string]v1beta1.ServiceL2StatusStatus{
		"me-app-db": {Node: "me", ServiceName: "db", ServiceNamespace: "app"},
	}, Sweep: map[string]bool{"me": true}} // computed while "back" was gone
	if err := w.apply(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(back), &v1beta1.ServiceL2Status{}); err != nil {
		t.Fatalf("the status of a speaker alive now was swept: %v", err)
	}
	alive = []string{"me"}
	if err := w.apply(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(back), &v1beta1.ServiceL2Status{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the status of a dead speaker was kept: %v", err)
	}

	// Written, removed behind the writer's back, written again after recheck.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(wctx)
	mine := Desired{L2: stale.L2}
	w.Set(mine)
	key := client.ObjectKey{Namespace: hns, Name: "me-app-db"}
	eventually(t, "the status to be written", func() bool { return c.Get(ctx, key, &v1beta1.ServiceL2Status{}) == nil })
	eventually(t, "the write to be recorded", w.Idle)
	if err := c.Delete(ctx, &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: hns}}); err != nil {
		t.Fatal(err)
	}
	w.Recheck()
	w.Set(mine)
	eventually(t, "the removed status to be written again", func() bool { return c.Get(ctx, key, &v1beta1.ServiceL2Status{}) == nil })

	// The same after Recheck and Resync, without a Set: the speaker's resync when its desired
	// state has not changed.
	eventually(t, "the write to be recorded", w.Idle)
	if err := c.Delete(ctx, &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: hns}}); err != nil {
		t.Fatal(err)
	}
	w.Resync()
	if !w.Idle() {
		t.Fatal("Resync with the applied state known queued a convergence")
	}
	w.Recheck()
	w.Resync()
	eventually(t, "the removed status to be written again by Resync", func() bool { return c.Get(ctx, key, &v1beta1.ServiceL2Status{}) == nil })
	eventually(t, "the writer to be idle", w.Idle)
	if !w.Wrote(key.Name) {
		t.Error("after Resync the writer does not count the object as written")
	}
}

// TestSweepDeletesDeadSpeakersBGPObjectsByLabel: the sweeping speaker deletes the
// ServiceBGPStatus and BGPSessionStatus objects of speakers that are not alive on the API server,
// by label (no speaker caches them), spares those of live speakers and objects without the node
// label, and asks again only when the live speakers change or bgpSweepEvery has passed.
func TestSweepDeletesDeadSpeakersBGPObjectsByLabel(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	bgp := func(name string, labels map[string]string) client.Object {
		o := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hns, Labels: labels}}
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	session := func(name, node string) client.Object {
		o := &v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hns, Labels: map[string]string{LabelNode: node, LabelPeer: "rt"}}}
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	exists := func(o client.Object) bool {
		err := c.Get(ctx, client.ObjectKeyFromObject(o), o)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	svcLabels := func(node string) map[string]string {
		return map[string]string{LabelNode: node, LabelServiceName: "web", LabelServiceNamespace: "app"}
	}
	gone, goneSession := bgp("gone-app-web", svcLabels("gone")), session("gone-rt", "gone")
	back, mine := bgp("back-app-web", svcLabels("back")), bgp("me-app-web", svcLabels("me"))
	foreign := bgp("someone-elses", map[string]string{"app": "other"})

	alive := []string{"me", "back"}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	w := NewWriter(crclient.Client(c), hns, "me", slog.New(slog.DiscardHandler), func() []string { return alive })
	w.now = func() time.Time { return now }
	sweep := Desired{Sweep: map[string]bool{"me": true},
		BGP: map[string]v1beta1.ServiceBGPStatusStatus{"me-app-web": {Node: "me", ServiceName: "web", ServiceNamespace: "app"}}}
	check := func(step string, want map[client.Object]bool) {
		t.Helper()
		for o, kept := range want {
			if got := exists(o); got != kept {
				t.Errorf("%s: %s exists %v, want %v", step, o.GetName(), got, kept)
			}
		}
	}
	if err := w.apply(ctx, sweep); err != nil {
		t.Fatal(err)
	}
	check("first sweep", map[client.Object]bool{gone: false, goneSession: false, back: true, mine: true, foreign: true})

	// The same live speakers: no new deletion until bgpSweepEvery has passed.
	late := bgp("gone-app-db", svcLabels("gone"))
	if err := w.apply(ctx, sweep); err != nil {
		t.Fatal(err)
	}
	check("same speakers alive", map[client.Object]bool{late: true})
	now = now.Add(bgpSweepEvery)
	if err := w.apply(ctx, sweep); err != nil {
		t.Fatal(err)
	}
	check("after bgpSweepEvery", map[client.Object]bool{late: false, back: true, mine: true})

	// A speaker dies: its objects go at the next sweep.
	alive = []string{"me"}
	if err := w.apply(ctx, sweep); err != nil {
		t.Fatal(err)
	}
	check("back died", map[client.Object]bool{back: false, mine: true, foreign: true})
}
