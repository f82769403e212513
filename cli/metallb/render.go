package metallb

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// Manifests returns the Herald objects, the Secrets and the Services' annotations as YAML
// documents, ready for kubectl apply --server-side: the Services are partial (name, namespace
// and the annotations to add), which server-side apply merges into the existing Services.
func (r Result) Manifests() ([]byte, error) {
	var b bytes.Buffer
	objs := r.Objects()
	for _, sc := range r.Services {
		objs = append(objs, &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Namespace: sc.Namespace, Name: sc.Name, Annotations: sc.Annotations}})
	}
	for _, o := range objs {
		doc, err := cleanYAML(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(doc)
	}
	return b.Bytes(), nil
}

// cleanYAML marshals an object without the fields that are empty in every new object
// (metadata.creationTimestamp, status, an empty spec of a Service).
func cleanYAML(o any) ([]byte, error) {
	js, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", o, err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", o, err)
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok && len(spec) == 0 && m["kind"] == "Service" {
		delete(m, "spec")
	}
	return sigsyaml.Marshal(m)
}
