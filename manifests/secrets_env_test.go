package manifests_test

import (
	"fmt"
	"testing"
)

// TestNoSecretInEnvironment: no Pod of the install carries a Secret in its environment. The
// speaker reads the memberlist keys from the API (and follows their rotation there); a copy in
// the environment would be readable by anything that can read the process's environment, and
// would go stale at the first rotation.
func TestNoSecretInEnvironment(t *testing.T) {
	for name, data := range map[string]func() []byte{
		"kustomize": func() []byte { return kustomize(t) },
		"helm":      func() []byte { return helmTemplate(t, "memberlist.key=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") },
	} {
		t.Run(name, func(t *testing.T) {
			workloads := 0
			for key, o := range parse(t, data()) {
				switch o["kind"] {
				case "DaemonSet", "Deployment", "StatefulSet":
				default:
					continue
				}
				workloads++
				for _, ref := range secretRefs(o) {
					t.Errorf("%s: %s", key, ref)
				}
			}
			if workloads < 2 {
				t.Fatalf("found %d workloads, want the controller and the speaker", workloads)
			}
		})
	}
}

// secretRefs lists the env and envFrom entries of a workload's containers that read a Secret.
func secretRefs(o object) []string {
	get := func(m any, k string) any {
		mm, _ := m.(map[string]any)
		return mm[k]
	}
	spec := get(get(get(o, "spec"), "template"), "spec")
	var out []string
	for _, field := range []string{"containers", "initContainers"} {
		cs, _ := get(spec, field).([]any)
		for _, c := range cs {
			envs, _ := get(c, "env").([]any)
			for _, e := range envs {
				if ref := get(get(e, "valueFrom"), "secretKeyRef"); ref != nil {
					out = append(out, fmt.Sprintf("container %v: env %v reads Secret %v", get(c, "name"), get(e, "name"), ref))
				}
			}
			froms, _ := get(c, "envFrom").([]any)
			for _, f := range froms {
				if ref := get(f, "secretRef"); ref != nil {
					out = append(out, fmt.Sprintf("container %v: envFrom reads Secret %v", get(c, "name"), ref))
				}
			}
		}
	}
	return out
}
