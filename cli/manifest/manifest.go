// Package manifest reads Kubernetes objects from YAML and JSON files, as kubectl apply -f does:
// files or directories (their .yaml, .yml and .json files, recursively on request), several
// documents per file separated by "---", and List objects expanded into their items. Each object
// keeps where it came from, so that problems can name the file and the document.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// Object is one object read from a file.
type Object struct {
	// Source says where it came from: "path (document N)", with ", item M" for an item of a List.
	Source string
	Object *unstructured.Unstructured
	// Raw is the object as JSON, for strict decoding into a Go type.
	Raw []byte
}

// ErrRead is wrapped by the errors of Load: a path that cannot be read or a document that is
// not a Kubernetes object.
var ErrRead = errors.New("reading manifests")

// extensions are the file names a directory is read for.
var extensions = []string{".yaml", ".yml", ".json"}

// Load reads every object of the paths. A path is a file, a directory (its files with the
// extensions .yaml, .yml and .json, and with recursive those of its subdirectories), or "-" for
// stdin. Empty documents are skipped. The first unreadable path or malformed document stops it.
func Load(paths []string, recursive bool, stdin io.Reader) ([]Object, error) {
	var out []Object
	for _, p := range paths {
		if p == "-" {
			objs, err := Decode("<stdin>", stdin)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		files, err := expand(p, recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			objs, err := loadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

// expand lists the files of a path, sorted.
func expand(path string, recursive bool) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if slices.Contains(extensions, strings.ToLower(filepath.Ext(p))) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %w", ErrRead, path, err)
	}
	slices.Sort(files)
	return files, nil
}

func loadFile(path string) ([]Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	defer f.Close()
	return Decode(path, f)
}

// Decode reads the objects of one stream of YAML or JSON documents; name says where it comes
// from in Object.Source and in errors.
func Decode(name string, r io.Reader) ([]Object, error) {
	reader := yaml.NewYAMLReader(bufio.NewReader(r))
	var out []Object
	for doc := 1; ; doc++ {
		data, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s (document %d): %w", ErrRead, name, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(data))) == 0 {
			continue
		}
		src := fmt.Sprintf("%s (document %d)", name, doc)
		objs, err := decodeDocument(src, data)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
}

// stripComments drops the comment lines of a YAML document, to tell an empty one.
func stripComments(data []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(data, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func decodeDocument(src string, data []byte) ([]Object, error) {
	js, err := sigsyaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not valid YAML or JSON: %w", ErrRead, src, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("%w: %s: not a Kubernetes object (apiVersion and kind are required): %w", ErrRead, src, err)
	}
	if !u.IsList() {
		return []Object{{Source: src, Object: u, Raw: js}}, nil
	}
	list, err := u.ToList()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: a %s whose items are not objects: %w", ErrRead, src, u.GetKind(), err)
	}
	out := make([]Object, 0, len(list.Items))
	for i := range list.Items {
		item := &list.Items[i]
		if item.GetKind() == "" || item.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%w: %s, item %d: not a Kubernetes object (apiVersion and kind are required)", ErrRead, src, i+1)
		}
		raw, err := item.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: %s, item %d: %w", ErrRead, src, i+1, err)
		}
		out = append(out, Object{Source: fmt.Sprintf("%s, item %d", src, i+1), Object: item, Raw: raw})
	}
	return out, nil
}
