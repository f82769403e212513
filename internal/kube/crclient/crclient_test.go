package crclient

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/internal/kube/client"
)

// TestOptionsReachControllerRuntime: each option of a list, a patch and a DeleteAllOf made with
// internal/kube/client's names does on a controller-runtime client what it says.
func TestOptionsReachControllerRuntime(t *testing.T) {
	ctx := t.Context()
	var objs []*corev1.ConfigMap
	for _, o := range []struct{ ns, name, node string }{{"a", "x", "n1"}, {"a", "y", "n2"}, {"b", "x", "n1"}} {
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: o.ns, Name: o.name, Labels: map[string]string{"node": o.node}}})
	}
	b := fake.NewClientBuilder()
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	c := Client(b.Build())
	names := func(opts ...client.ListOption) []string {
		t.Helper()
		var l corev1.ConfigMapList
		if err := c.List(ctx, &l, opts...); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range l.Items {
			out = append(out, o.Namespace+"/"+o.Name)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		opts []client.ListOption
		want []string
	}{
		{"all", nil, []string{"a/x", "a/y", "b/x"}},
		{"namespace", []client.ListOption{client.InNamespace("a")}, []string{"a/x", "a/y"}},
		{"labels", []client.ListOption{client.MatchingLabels{"node": "n1"}}, []string{"a/x", "b/x"}},
		{"both, shared", []client.ListOption{client.InNamespace("a"), client.MatchingLabels{"node": "n1"}, client.UnsafeDisableDeepCopy}, []string{"a/x"}},
	}
	for _, tt := range tests {
		if got := names(tt.opts...); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}

	var got corev1.ConfigMap
	if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: "x"}, &got); err != nil {
		t.Fatal(err)
	}
	if err := c.Patch(ctx, &got, types.MergePatchType, []byte(`{"metadata":{"labels":{"patched":"yes"}}}`)); err != nil {
		t.Fatal(err)
	}
	if got.Labels["patched"] != "yes" || got.Labels["node"] != "n1" {
		t.Errorf("labels after the merge patch: %v", got.Labels)
	}

	sel, err := labels.Parse("node notin (n1)")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace("a"), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		t.Fatal(err)
	}
	if got, want := names(), []string{"a/x", "b/x"}; !slices.Equal(got, want) {
		t.Errorf("after deleting the n2 ones of a: %v, want %v", got, want)
	}
}
