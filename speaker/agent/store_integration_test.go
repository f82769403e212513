package agent

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// The reflectors' lists page when the reflector asks them to (a list the watch cache cannot
// serve, after the watch fell too far behind): every page holds at most the limit, and following
// the continue tokens gives every Service once.
func TestListWatchPages(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "pages-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.WithoutCancel(ctx), ns) })
	mine := map[string]bool{}
	for i := range 5 {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i), Namespace: ns.Name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		mine[objectKey(ns.Name, s.Name)] = false
	}
	lw := listWatch(testWatcher(t), "", func() kclient.ObjectList { return &corev1.ServiceList{} })
	opts := metav1.ListOptions{Limit: 2}
	pages := 0
	for {
		o, err := lw.ListWithContext(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		l := o.(*corev1.ServiceList)
		pages++
		if len(l.Items) > 2 {
			t.Fatalf("page %d holds %d Services, more than the limit of 2", pages, len(l.Items))
		}
		for _, s := range l.Items {
			k := objectKey(s.Namespace, s.Name)
			if seen, ok := mine[k]; ok {
				if seen {
					t.Errorf("%s listed twice", k)
				}
				mine[k] = true
			}
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	for k, seen := range mine {
		if !seen {
			t.Errorf("%s was on no page", k)
		}
	}
	if pages < 3 {
		t.Errorf("5 Services or more listed in %d pages of 2", pages)
	}
}
