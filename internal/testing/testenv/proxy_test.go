package testenv

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequestResource(t *testing.T) {
	type res struct{ Resource, Namespace, Name, Sub string }
	tests := []struct {
		name string
		path string
		want res
		ok   bool
	}{
		{name: "core namespaced subresource", path: "/api/v1/namespaces/shop/services/web/status", want: res{"services", "shop", "web", "status"}, ok: true},
		{name: "core namespaced object", path: "/api/v1/namespaces/shop/services/web", want: res{"services", "shop", "web", ""}, ok: true},
		{name: "core collection", path: "/api/v1/namespaces/shop/events", want: res{"events", "shop", "", ""}, ok: true},
		{name: "namespace itself", path: "/api/v1/namespaces/shop", want: res{"namespaces", "", "shop", ""}, ok: true},
		{name: "cluster collection", path: "/api/v1/services", want: res{"services", "", "", ""}, ok: true},
		{name: "group", path: "/apis/herald.dev/v1beta1/namespaces/h/ipaddresspools/a/status", want: res{"ipaddresspools", "h", "a", "status"}, ok: true},
		{name: "not a resource", path: "/readyz"},
		{name: "discovery", path: "/api"},
		{name: "empty", path: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ns, n, sub, ok := Request{Path: tc.path}.Resource()
			if ok != tc.ok {
				t.Fatalf("ok = %t, want %t", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, res{r, ns, n, sub}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzRequestResource(f *testing.F) {
	f.Add("/api/v1/namespaces/a/services/b/status")
	f.Add("/apis/g/v/namespaces//x")
	f.Fuzz(func(t *testing.T, path string) {
		r, ns, n, sub, ok := Request{Path: path}.Resource()
		if !ok && (r != "" || ns != "" || n != "" || sub != "") {
			t.Errorf("not a resource path, but named %q %q %q %q", r, ns, n, sub)
		}
	})
}

func TestWriteSummary(t *testing.T) {
	reqs := []Request{
		{Method: "PATCH", Path: "/api/v1/namespaces/a/services/x/status"},
		{Method: "PATCH", Path: "/api/v1/namespaces/b/services/y/status"},
		{Method: "POST", Path: "/api/v1/namespaces/a/events"},
		{Method: "GET", Path: "/api/v1/namespaces/a/services/x"},
		{Method: "DELETE", Path: "/healthz"},
	}
	want := map[string]int{"PATCH services/status": 2, "POST events": 1, "DELETE /healthz": 1}
	if diff := cmp.Diff(want, WriteSummary(reqs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestProcessFigures(t *testing.T) {
	m, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS+m.RSS/10 {
		t.Errorf("implausible memory of this process: %+v", m)
	}
	cpu, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 0 {
		t.Errorf("CPU time %v", cpu)
	}
	if _, err := ProcessMemory(-1); err == nil {
		t.Error("memory of a process that does not exist")
	}
	if _, err := ChildPID("no-such-child"); err == nil {
		t.Error("found a child process that does not exist")
	}
}
