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
	w := NewWriter(c, hns, "me", slog.New(slog.DiscardHandler), func() []string { return alive })
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
}
