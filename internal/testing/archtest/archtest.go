// Package archtest enforces the import rules of Herald's architecture from tests: a pure package
// such as config or allocator must not reach client-go, controller-runtime, GoBGP, memberlist or
// raw sockets, not even through another package. It asks the go command for the import graph,
// so it only works in tests run by `go test` inside the module.
package archtest

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// CheckDeps fails t for every package that pkg depends on, directly or transitively (tests
// excluded), whose import path is one of forbidden or lies below one of them: forbidding
// "github.com/mdlayher" also forbids "github.com/mdlayher/arp". The failure shows the chain of
// imports that leads to the forbidden package. pkg is anything `go list` accepts, usually an
// import path such as "github.com/herald-lb/herald/config".
func CheckDeps(t testing.TB, pkg string, forbidden ...string) {
	t.Helper()
	g, roots, err := importGraph(pkg)
	if err != nil {
		t.Errorf("archtest: listing the dependencies of %s: %v", pkg, err)
		return
	}
	for _, root := range roots {
		for _, chain := range g.forbiddenChains(root, forbidden) {
			t.Errorf("%s must not depend on %s, but imports it via %s",
				root, chain[len(chain)-1], strings.Join(chain, " -> "))
		}
	}
}

// CheckImports fails t for every package that pkg imports directly (tests excluded) whose
// import path is exactly one of forbidden (unlike CheckDeps, "net" does not forbid
// "net/netip"). Use it for rules that only hold for a package's own code, such as "config does
// not import net or os itself", where a dependency may still use them.
func CheckImports(t testing.TB, pkg string, forbidden ...string) {
	t.Helper()
	g, roots, err := importGraph(pkg)
	if err != nil {
		t.Errorf("archtest: listing the imports of %s: %v", pkg, err)
		return
	}
	for _, root := range roots {
		for _, imp := range g[root] {
			if slices.Contains(forbidden, imp) {
				t.Errorf("%s must not import %s", root, imp)
			}
		}
	}
}

// graph maps an import path to the import paths it imports.
type graph map[string][]string

// importGraph runs `go list -deps` on pkg. roots are the packages pkg names (not only deps).
func importGraph(pkg string) (graph, []string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.DepOnly}} {{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	g := graph{}
	var roots []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		g[f[1]] = f[2:]
		if f[0] == "false" {
			roots = append(roots, f[1])
		}
	}
	if len(roots) == 0 {
		return nil, nil, fmt.Errorf("go list matched no package for %q", pkg)
	}
	slices.Sort(roots)
	return g, roots, nil
}

// forbiddenChains returns, for every forbidden package reachable from root, the shortest chain
// of imports from root to it, in a deterministic order.
func (g graph) forbiddenChains(root string, forbidden []string) [][]string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	var found []string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != root && matches(p, forbidden) {
			found = append(found, p)
			continue // one report per forbidden package is enough; its own deps add nothing
		}
		imps := slices.Clone(g[p])
		slices.Sort(imps)
		for _, imp := range imps {
			if _, seen := parent[imp]; !seen {
				parent[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	slices.Sort(found)
	chains := make([][]string, 0, len(found))
	for _, f := range found {
		var chain []string
		for p := f; p != ""; p = parent[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		chains = append(chains, chain)
	}
	return chains
}

// matches reports whether path is one of prefixes or lies below one of them.
func matches(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// CheckOnlyImportedBy fails t for every package matched by pattern (anything `go list` accepts,
// such as "github.com/herald-lb/herald/...") that imports directly, in its code or its tests, a
// package whose path is one of forbidden or lies below one of them, unless the package is one of
// allowed. It enforces rules such as "only speaker/bgp uses GoBGP": packages that import an
// allowed package still depend on the library, but none of its types can appear in their code.
func CheckOnlyImportedBy(t testing.TB, pattern string, forbidden []string, allowed ...string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}", pattern)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("archtest: listing the imports of %s: go list: %v: %s", pattern, err, strings.TrimSpace(stderr.String()))
		return
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || slices.Contains(allowed, f[0]) {
			continue
		}
		seen := map[string]bool{}
		for _, imp := range f[1:] {
			if matches(imp, forbidden) && !seen[imp] {
				seen[imp] = true
				t.Errorf("%s imports %s; only %s may", f[0], imp, strings.Join(allowed, ", "))
			}
		}
	}
}
