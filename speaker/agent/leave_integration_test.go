package agent

import (
	"context"
	"log/slog"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestReadStopFacts reads the Node, the speaker's Pod and its DaemonSet from the API server and
// tells a rolling update (the DaemonSet's template changed after the Pod was made) from the node
// being drained (cordoned) and from a Pod of the current template.
func TestReadStopFacts(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	ns := env.NewNamespace(t, "leave")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "leave-"}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	labels := map[string]string{"app": "speaker"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "speaker"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "s", Image: "speaker:1"}}}},
	}}
	if err := c.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "speaker-x",
		Labels:          map[string]string{"app": "speaker", podTemplateGeneration: "1"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "s", Image: "speaker:1"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	a := &Agent{opts: Options{NodeName: node.Name, Namespace: ns, PodName: pod.Name, Client: testWatcher(t), Reader: testWatcher(t)}, log: slog.New(slog.DiscardHandler)}
	check := func(step string, wantRestart bool) {
		t.Helper()
		f := a.readStopFacts(ctx)
		if f.Err != nil {
			t.Fatalf("%s: %v", step, f.Err)
		}
		if restart, why := decideStop(f); restart != wantRestart {
			t.Errorf("%s: restart = %v (%s), want %v", step, restart, why, wantRestart)
		}
	}
	check("Pod of the current template", false)
	ds.Spec.Template.Spec.Containers[0].Image = "speaker:2"
	if err := c.Update(ctx, ds); err != nil {
		t.Fatal(err)
	}
	check("DaemonSet template changed (rolling update)", true)
	node.Spec.Unschedulable = true
	if err := c.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	check("node cordoned", false)
	a.opts.PodName = ""
	node.Spec.Unschedulable = false
	if err := c.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	check("no Pod name", false)
}
