package election

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces that the package stays pure: standard library only, and nothing that
// reaches the network, the file system or the process environment.
func TestImports(t *testing.T) {
	forbidden := map[string]bool{"net": true, "os": true, "os/exec": true, "syscall": true, "unsafe": true, "net/http": true}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatalf("reading package directory: %v", err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: bad import %s: %v", name, imp.Path.Value, err)
			}
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %q: the election package must use the standard library only", name, path)
			}
			if forbidden[path] {
				t.Errorf("%s imports %q: the election package must not touch sockets, files or the environment", name, path)
			}
		}
	}
}
