package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// summary is "source kind/name" per object.
func summary(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Source+" "+o.Object.GetKind()+"/"+o.Object.GetName())
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yaml"), "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n")
	write(t, filepath.Join(dir, "a.json"), `{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}}, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"}}]}`)
	write(t, filepath.Join(dir, "notes.txt"), "not read")
	write(t, filepath.Join(dir, "sub", "c.yml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n")

	tests := []struct {
		name      string
		paths     []string
		recursive bool
		stdin     string
		want      []string
	}{
		{
			name:  "a directory: its manifest files, sorted, not its subdirectories",
			paths: []string{dir},
			want: []string{
				filepath.Join(dir, "a.json") + " (document 1), item 1 Secret/s1",
				filepath.Join(dir, "a.json") + " (document 1), item 2 Secret/s2",
				filepath.Join(dir, "b.yaml") + " (document 2) ConfigMap/one",
				filepath.Join(dir, "b.yaml") + " (document 4) ConfigMap/two",
			},
		},
		{
			name:      "recursive",
			paths:     []string{filepath.Join(dir, "b.yaml"), filepath.Join(dir, "sub")},
			recursive: true,
			want: []string{
				filepath.Join(dir, "b.yaml") + " (document 2) ConfigMap/one",
				filepath.Join(dir, "b.yaml") + " (document 4) ConfigMap/two",
				filepath.Join(dir, "sub", "c.yml") + " (document 1) ConfigMap/three",
			},
		},
		{
			name:  "stdin",
			paths: []string{"-"},
			stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: piped}\n",
			want:  []string{"<stdin> (document 1) ConfigMap/piped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Load(tt.paths, tt.recursive, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, summary(objs)); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"not YAML", "a: [b\n", "bad.yaml (document 1): not valid YAML or JSON"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "bad.yaml (document 2): not a Kubernetes object (apiVersion and kind are required)"},
		{"list of scalars", "apiVersion: v1\nkind: List\nitems: [1, 2]\n", "bad.yaml (document 1): a List whose items are not objects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.yaml")
			content := tt.content
			if tt.name == "no kind" {
				content = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n" + content
			}
			write(t, path, content)
			_, err := Load([]string{path}, false, nil)
			if err == nil || !errors.Is(err, ErrRead) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want an ErrRead containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load([]string{filepath.Join(dir, "missing.yaml")}, false, nil); !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrRead and ErrNotExist", err)
	}
}

// FuzzDecode: Decode never panics, and every object it returns has a kind and a source.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"---\n---\napiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Secret, metadata: {name: s}}]\n",
		`{"apiVersion":"herald.dev/v1beta1","kind":"IPAddressPool","metadata":{"name":"p"},"spec":{"addresses":["192.0.2.0/24"]}}`,
		"a: [b\n", "# c\n", "kind: X\n---\n- 1\n", "apiVersion: v1\nkind: List\nitems: [{}]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		objs, err := Decode("fuzz.yaml", strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrRead) {
				t.Fatalf("error %v is not an ErrRead", err)
			}
			return
		}
		for _, o := range objs {
			if o.Object == nil || o.Object.GetKind() == "" || o.Source == "" || len(o.Raw) == 0 {
				t.Fatalf("incomplete object %+v", o)
			}
		}
	})
}
