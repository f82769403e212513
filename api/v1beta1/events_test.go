package v1beta1_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var upperCamel = regexp.MustCompile(`^[A-Z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$`)

// TestEventReasonsUpperCamelCase checks every EventReason constant of events.go: UpperCamelCase,
// as Kubernetes' own reasons, and each value once.
func TestEventReasonsUpperCamelCase(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "EventReason") {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s is not a string literal", name.Name)
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if !upperCamel.MatchString(v) {
					t.Errorf("%s = %q: not UpperCamelCase", name.Name, v)
				}
				if other, dup := seen[v]; dup {
					t.Errorf("%s and %s are both %q", name.Name, other, v)
				}
				seen[v] = name.Name
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("found %d event reasons in events.go, want all of them (at least 10)", len(seen))
	}
}

// TestNoLiteralEventReasons checks that no Event, Eventf or AnnotatedEventf call of the module's
// non-test code passes its reason as a string literal: every reason is one of events.go.
func TestNoLiteralEventReasons(t *testing.T) {
	root := filepath.Join("..", "..")
	calls := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			reason := 2
			switch sel.Sel.Name {
			case "Event", "Eventf":
			case "AnnotatedEventf":
				reason = 3
			default:
				return true
			}
			if len(c.Args) <= reason {
				return true
			}
			calls++
			if lit, ok := c.Args[reason].(*ast.BasicLit); ok {
				t.Errorf("%s: event reason %s is a literal; use an EventReason constant of api/v1beta1", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("found no Event calls: the walk missed the module's code")
	}
}
