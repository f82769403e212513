package archtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const self = "github.com/herald-lb/herald/internal/testing/archtest"

func TestCheckDeps(t *testing.T) {
	tests := []struct {
		name      string
		forbidden []string
		want      []string
	}{
		{
			name:      "nothing forbidden is reached",
			forbidden: []string{"k8s.io/client-go", "github.com/mdlayher"},
		},
		{
			name:      "a direct import is reported with its chain",
			forbidden: []string{"os/exec"},
			want:      []string{self + " must not depend on os/exec, but imports it via " + self + " -> os/exec"},
		},
		{
			name:      "a prefix forbids the packages below it",
			forbidden: []string{"os/"},
			want:      []string{self + " must not depend on os/exec, but imports it via " + self + " -> os/exec"},
		},
		{
			name:      "a prefix does not match a longer name",
			forbidden: []string{"os/ex"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			CheckDeps(r, self, tt.forbidden...)
			if diff := cmp.Diff(tt.want, r.errs); diff != "" {
				t.Errorf("CheckDeps errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckDepsTransitive(t *testing.T) {
	r := &recorder{TB: t}
	// archtest does not import unicode/utf8 itself, only through bytes, fmt, strings...
	CheckDeps(r, self, "unicode/utf8")
	if len(r.errs) != 1 {
		t.Fatalf("CheckDeps errors = %q, want one", r.errs)
	}
	_, chain, _ := strings.Cut(r.errs[0], "imports it via ")
	if links := strings.Split(chain, " -> "); len(links) != 3 || links[0] != self || links[2] != "unicode/utf8" {
		t.Errorf("CheckDeps chain = %q, want %s -> (a direct import) -> unicode/utf8", chain, self)
	}
}

func TestCheckImports(t *testing.T) {
	r := &recorder{TB: t}
	// os is a prefix of os/exec but matches only itself here; execenv is not a direct import.
	CheckImports(r, self, "os", "os/exec", "internal/syscall/execenv")
	want := []string{self + " must not import os/exec"}
	if diff := cmp.Diff(want, r.errs); diff != "" {
		t.Errorf("CheckImports errors mismatch (-want +got):\n%s", diff)
	}
}

func TestCheckDepsUnknownPackage(t *testing.T) {
	r := &recorder{TB: t}
	CheckDeps(r, "github.com/herald-lb/herald/does-not-exist")
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "listing the dependencies") {
		t.Errorf("CheckDeps errors = %q, want one error about listing", r.errs)
	}
}

func TestCheckOnlyImportedBy(t *testing.T) {
	r := &recorder{TB: t}
	CheckOnlyImportedBy(r, self, []string{"os/exec"}, "example.com/other")
	want := []string{self + " imports os/exec; only example.com/other may"}
	if diff := cmp.Diff(want, r.errs); diff != "" {
		t.Errorf("CheckOnlyImportedBy errors (-want +got):\n%s", diff)
	}
	r = &recorder{TB: t}
	CheckOnlyImportedBy(r, self, []string{"os/exec"}, self)
	if len(r.errs) != 0 {
		t.Errorf("CheckOnlyImportedBy of an allowed package: %q, want no error", r.errs)
	}
}
