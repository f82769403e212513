package status

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestObjectNamesDoNotCollide(t *testing.T) {
	long := strings.Repeat("n", 253)
	pairs := []struct {
		name string
		a, b []string
	}{
		{"dash moves from node to namespace", []string{"a-b", "c", "web"}, []string{"a", "b-c", "web"}},
		{"dash moves from namespace to Service", []string{"n1", "a-b", "c"}, []string{"n1", "a", "b-c"}},
		{"dash moves from node to peer", []string{"n1-a", "b"}, []string{"n1", "a-b"}},
		{"long names cut to the same prefix", []string{long, "ns", "a"}, []string{long, "ns", "b"}},
	}
	for _, tc := range pairs {
		t.Run(tc.name, func(t *testing.T) {
			x, y := ObjectName(tc.a...), ObjectName(tc.b...)
			if x == y {
				t.Errorf("ObjectName(%q) = ObjectName(%q) = %q", tc.a, tc.b, x)
			}
		})
	}
	if Name("a-b", "c/web") == Name("a", "b-c/web") {
		t.Error("Name: node a-b with Service c/web collides with node a with Service b-c/web")
	}
}

func TestObjectNamesAreValidStableAndReadable(t *testing.T) {
	for _, parts := range [][]string{
		{"n1", "default", "web"},
		{"node-1.example.com", "kube-system", "dns"},
		{"n1", "tor.rack-1"},
		{strings.Repeat("a", 253), strings.Repeat("b", 63), strings.Repeat("c", 63)},
		{strings.Repeat("a", 240) + ".-b", "ns", "svc"},
	} {
		got := ObjectName(parts...)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("ObjectName(%q) = %q: not a valid object name: %v", parts, got, errs)
		}
		if got != ObjectName(parts...) {
			t.Errorf("ObjectName(%q) is not stable", parts)
		}
		if joined := strings.Join(parts, "-"); len(joined) < 200 && !strings.HasPrefix(got, joined+"-") {
			t.Errorf("ObjectName(%q) = %q does not start with the readable %q", parts, got, joined)
		}
	}
}
