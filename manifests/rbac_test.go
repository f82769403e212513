package manifests_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// controllerGenVersion must match CONTROLLER_GEN_VERSION in the Makefile.
const controllerGenVersion = "v0.23.0"

// rbacGen is how `make generate` makes each role file: the packages whose markers it reads and
// the default role name.
var rbacGen = []struct{ dir, paths, roleName string }{
	{"controller", "./controller/...", "herald-controller"},
	{"speaker", "./speaker/...", "herald-speaker"},
	{"metrics", "./internal/metrics", "herald-metrics-auth"},
}

// TestRBACIsGeneratedFromTheMarkers regenerates the roles from the code's +kubebuilder:rbac
// markers and compares them with manifests/rbac and the chart's copies: a permission added in the
// code but not regenerated (or a hand edit of the YAML) fails here, as in `make verify`.
func TestRBACIsGeneratedFromTheMarkers(t *testing.T) {
	r := root(t)
	cg := tool(t, filepath.Join(r, "bin", "controller-gen-"+controllerGenVersion), "run `make tools`")
	out := t.TempDir()
	for _, g := range rbacGen {
		t.Run(g.dir, func(t *testing.T) {
			dir := filepath.Join(out, g.dir)
			cmdOut := runIn(t, r, cg, "rbac:roleName="+g.roleName, "paths="+g.paths, "output:rbac:artifacts:config="+dir)
			want, err := os.ReadFile(filepath.Join(dir, "role.yaml"))
			if err != nil {
				t.Fatalf("controller-gen wrote no role.yaml: %v\n%s", err, cmdOut)
			}
			for _, f := range []string{
				filepath.Join("manifests", "rbac", g.dir, "role.yaml"),
				filepath.Join("manifests", "helm", "herald", "files", "rbac", g.dir+".yaml"),
			} {
				got, err := os.ReadFile(filepath.Join(r, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(want, got) {
					t.Errorf("%s is not what the markers generate: run `make manifests`", f)
				}
			}
		})
	}
}
