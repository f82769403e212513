package client

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestApply: options apply in order, a later one wins for its field, and the query sent keeps the
// reflector's Raw fields with the label selector on top.
func TestApply(t *testing.T) {
	raw := &metav1.ListOptions{ResourceVersion: "7", Limit: 500, Continue: "c", LabelSelector: "raw=1"}
	sel := labels.SelectorFromSet(labels.Set{"b": "2"})
	tests := []struct {
		name          string
		opts          []ListOption
		ns, selector  string
		shared        bool
		rv, cont      string
		limit         int64
		queryLabelSel string
	}{
		{name: "none"},
		{name: "namespace", opts: []ListOption{InNamespace("x")}, ns: "x"},
		{name: "later namespace wins", opts: []ListOption{InNamespace("x"), InNamespace("y")}, ns: "y"},
		{name: "labels", opts: []ListOption{MatchingLabels{"a": "1"}}, selector: "a=1", queryLabelSel: "a=1"},
		{name: "selector after labels", opts: []ListOption{MatchingLabels{"a": "1"}, MatchingLabelsSelector{sel}}, selector: "b=2", queryLabelSel: "b=2"},
		{name: "shared", opts: []ListOption{UnsafeDisableDeepCopy}, shared: true},
		{name: "raw keeps its fields", opts: []ListOption{&ListOptions{Raw: raw, Namespace: "x"}}, ns: "x", rv: "7", cont: "c", limit: 500, queryLabelSel: "raw=1"},
		{name: "raw with a selector", opts: []ListOption{&ListOptions{Raw: raw, LabelSelector: sel}}, selector: "b=2", rv: "7", cont: "c", limit: 500, queryLabelSel: "b=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Apply(tt.opts)
			got := ""
			if o.LabelSelector != nil {
				got = o.LabelSelector.String()
			}
			if o.Namespace != tt.ns || got != tt.selector || o.UnsafeDisableDeepCopy != tt.shared {
				t.Errorf("options = namespace %q, selector %q, shared %v; want %q, %q, %v", o.Namespace, got, o.UnsafeDisableDeepCopy, tt.ns, tt.selector, tt.shared)
			}
			q := o.raw()
			if q.ResourceVersion != tt.rv || q.Continue != tt.cont || q.Limit != tt.limit || q.LabelSelector != tt.queryLabelSel {
				t.Errorf("query = %+v", q)
			}
		})
	}
	if raw.LabelSelector != "raw=1" {
		t.Errorf("the query changed the caller's Raw options: %+v", raw)
	}
}
