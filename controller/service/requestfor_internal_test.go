package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
)

func TestRequestFor(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want types.NamespacedName
	}{
		{name: "namespaced", key: "default/web", want: types.NamespacedName{Namespace: "default", Name: "web"}},
		{name: "cluster-scoped", key: "web", want: types.NamespacedName{Name: "web"}},
		{name: "not a key", key: "a/b/c", want: types.NamespacedName{Name: "a/b/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, requestFor(tt.key).NamespacedName); diff != "" {
				t.Errorf("requestFor(%q) mismatch (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}
