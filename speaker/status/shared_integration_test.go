package status

import (
	"context"
	"log/slog"
	"reflect"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestWriterKeepsOneCopyOfAnUnchangedState: once everything is converged, the writer's desired
// and applied states are one set of maps (a speaker whose status does not change holds it once,
// and a resync copies nothing); a change made afterwards (Put) goes to a copy, so what was applied
// is still told from what is wanted until the change is written.
func TestWriterKeepsOneCopyOfAnUnchangedState(t *testing.T) {
	testenv.Require(t, env)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	w := NewWriter(crclient.Client(c), hns, "me", slog.New(slog.DiscardHandler), nil)
	go w.Run(ctx)
	st := func(svc string) v1beta1.ServiceL2StatusStatus {
		return v1beta1.ServiceL2StatusStatus{Node: "me", ServiceName: svc, ServiceNamespace: "app"}
	}
	w.Set(Desired{L2: map[string]v1beta1.ServiceL2StatusStatus{Name("me", "app/a"): st("a"), Name("me", "app/b"): st("b")}})
	eventually(t, "the first state to be written", w.Idle)

	same := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return reflect.ValueOf(w.cur.L2).UnsafePointer() == reflect.ValueOf(w.applied.L2).UnsafePointer()
	}
	if !same() {
		t.Error("after converging everything, the desired and applied states are two copies")
	}
	w.Recheck()
	w.Resync()
	eventually(t, "the resync to be written", w.Idle)
	if !same() {
		t.Error("after a resync, the desired and applied states are two copies")
	}

	newName := Name("me", "app/c")
	cst := st("c")
	w.Put(map[string]*v1beta1.ServiceL2StatusStatus{newName: &cst}, nil)
	if same() {
		t.Fatal("a change went into the applied state's maps")
	}
	w.mu.Lock()
	_, appliedHas := w.applied.L2[newName]
	w.mu.Unlock()
	if appliedHas {
		t.Error("the applied state names an object Put only just asked for")
	}
	eventually(t, "the change to be written", func() bool { return w.Wrote(newName) && w.Idle() })
	var l v1beta1.ServiceL2StatusList
	if err := c.List(ctx, &l, client.InNamespace(hns), client.MatchingLabels{LabelNode: "me"}); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 3 {
		t.Errorf("%d ServiceL2Status objects written, want 3", len(l.Items))
	}
	if !w.Wants(Name("me", "app/a")) || !w.Wants(newName) {
		t.Error("the desired state lost an object")
	}
}
