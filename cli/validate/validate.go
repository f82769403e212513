// Package validate checks Herald configuration files offline with the rules the controller, the
// speakers and the validating webhook apply (config.Parse), and reports the same messages: one
// line per problem naming the kind, the namespace/name, the field, the value and the fix, plus
// the file and document it comes from.
//
// The package is pure: it takes objects already read (package manifest).
package validate

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli/manifest"
	"github.com/herald-lb/herald/config"
)

// Report is the result of a validation.
type Report struct {
	// Objects counts the Herald configuration objects validated.
	Objects int `json:"objects"`
	// Secrets counts the Secrets read (BGP passwords).
	Secrets int `json:"secrets"`
	// Ignored counts the objects of other kinds, which are not validated.
	Ignored  int       `json:"ignored"`
	Errors   []Problem `json:"errors,omitempty"`
	Warnings []Problem `json:"warnings,omitempty"`
}

// Valid reports whether no error was found.
func (r Report) Valid() bool { return len(r.Errors) == 0 }

// Problem is one error or warning.
type Problem struct {
	// Source is the file and document of the object ("pools.yaml (document 2)").
	Source    string `json:"source,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Field     string `json:"field,omitempty"`
	Value     string `json:"value,omitempty"`
	// Message is the problem as the webhook says it.
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Source == "" {
		return p.Message
	}
	return p.Source + ": " + p.Message
}

// Options change a validation.
type Options struct {
	// Namespace is Herald's namespace: objects without a namespace are put there, and objects
	// of other namespaces are reported (Herald ignores them) and left out.
	Namespace string
}

// Validate checks the Herald configuration made of objs.
func Validate(objs []manifest.Object, opts Options) Report {
	var r Report
	var snap config.Snapshot
	sources := map[string][]string{} // kind/namespace/name -> sources
	for _, o := range objs {
		gvk := o.Object.GroupVersionKind()
		switch {
		case gvk.Group == v1beta1.GroupVersion.Group:
			if !isConfigKind(gvk.Kind) {
				r.Ignored++ // the speakers' status kinds
				continue
			}
			if gvk.Version != v1beta1.GroupVersion.Version {
				r.Errors = append(r.Errors, Problem{Source: o.Source, Kind: gvk.Kind, Name: o.Object.GetName(),
					Message: fmt.Sprintf("%s: apiVersion %s is not served by Herald; use %s", gvk.Kind, o.Object.GetAPIVersion(), v1beta1.GroupVersion)})
				continue
			}
			ns := cmp.Or(o.Object.GetNamespace(), opts.Namespace)
			if ns != opts.Namespace {
				r.Warnings = append(r.Warnings, Problem{Source: o.Source, Kind: gvk.Kind, Namespace: ns, Name: o.Object.GetName(),
					Message: fmt.Sprintf("%s %s/%s is not in namespace %s; Herald ignores it: create Herald objects in %s", gvk.Kind, ns, o.Object.GetName(), opts.Namespace, opts.Namespace)})
				continue
			}
			strictErr, err := add(&snap, gvk.Kind, o.Raw, ns)
			for _, e := range []error{strictErr, err} {
				if e != nil {
					r.Errors = append(r.Errors, Problem{Source: o.Source, Kind: gvk.Kind, Namespace: ns, Name: o.Object.GetName(),
						Message: fmt.Sprintf("%s %s/%s: %v", gvk.Kind, ns, o.Object.GetName(), e)})
				}
			}
			if err != nil {
				continue
			}
			r.Objects++
			key := gvk.Kind + "/" + ns + "/" + o.Object.GetName()
			sources[key] = append(sources[key], o.Source)
		case gvk.Group == "" && gvk.Kind == "Secret":
			ns := cmp.Or(o.Object.GetNamespace(), opts.Namespace)
			if ns != opts.Namespace {
				r.Ignored++
				continue
			}
			var sec corev1.Secret
			if _, err := sigsjson.UnmarshalStrict(o.Raw, &sec); err != nil {
				r.Errors = append(r.Errors, Problem{Source: o.Source, Kind: "Secret", Namespace: ns, Name: o.Object.GetName(),
					Message: fmt.Sprintf("Secret %s/%s: %v", ns, o.Object.GetName(), err)})
				continue
			}
			sec.Namespace = ns
			// As the API server does: stringData is merged into data.
			for k, v := range sec.StringData {
				if sec.Data == nil {
					sec.Data = map[string][]byte{}
				}
				sec.Data[k] = []byte(v)
			}
			snap.Secrets = append(snap.Secrets, sec)
			r.Secrets++
		default:
			r.Ignored++
		}
	}

	at := func(kind, ns, name string) string {
		return strings.Join(sources[kind+"/"+ns+"/"+name], ", ")
	}
	// The rules the controller, the speakers and the webhook apply (config.ParseUsable): errors
	// keep an object out of the configuration, warnings (references to objects that do not exist)
	// do not.
	_, rep := config.ParseUsable(snap, nil)
	for _, fe := range rep.Errors {
		r.Errors = append(r.Errors, fromFieldError(fe, at(fe.Kind, fe.Namespace, fe.Name)))
	}
	for _, fe := range rep.Warnings {
		r.Warnings = append(r.Warnings, fromFieldError(fe, at(fe.Kind, fe.Namespace, fe.Name)))
	}
	for _, fe := range config.SecretsHiddenFromSpeakers(snap) {
		r.Warnings = append(r.Warnings, fromFieldError(fe, at(fe.Kind, fe.Namespace, fe.Name)))
	}
	return r
}

func fromFieldError(fe *config.FieldError, source string) Problem {
	return Problem{Source: source, Kind: fe.Kind, Namespace: fe.Namespace, Name: fe.Name, Field: fe.Field, Value: fe.Value, Message: fe.Error()}
}

var configKinds = []string{config.KindIPAddressPool, config.KindL2Advertisement, config.KindBGPAdvertisement,
	config.KindBGPPeer, config.KindBFDProfile, config.KindCommunity}

func isConfigKind(kind string) bool { return slices.Contains(configKinds, kind) }

// add decodes raw into the snapshot. Unknown and duplicate fields are reported in strictErr, as
// kubectl apply's server-side field validation does, and the object is still checked; err means
// the object could not be decoded at all (a field of the wrong type).
func add(s *config.Snapshot, kind string, raw []byte, ns string) (strictErr, err error) {
	switch kind {
	case config.KindIPAddressPool:
		return decodeInto(raw, ns, &s.Pools)
	case config.KindL2Advertisement:
		return decodeInto(raw, ns, &s.L2Advertisements)
	case config.KindBGPAdvertisement:
		return decodeInto(raw, ns, &s.BGPAdvertisements)
	case config.KindBGPPeer:
		return decodeInto(raw, ns, &s.Peers)
	case config.KindBFDProfile:
		return decodeInto(raw, ns, &s.BFDProfiles)
	case config.KindCommunity:
		return decodeInto(raw, ns, &s.Communities)
	}
	return nil, fmt.Errorf("%s is not a Herald configuration kind", kind)
}

func decodeInto[T any, PT interface {
	*T
	SetNamespace(string)
}](raw []byte, ns string, items *[]T) (strictErr, err error) {
	var obj T
	strict, err := sigsjson.UnmarshalStrict(raw, &obj)
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if len(strict) > 0 {
		msgs := make([]string, 0, len(strict))
		for _, e := range strict {
			msgs = append(msgs, e.Error())
		}
		strictErr = fmt.Errorf("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	PT(&obj).SetNamespace(ns)
	*items = append(*items, obj)
	return strictErr, nil
}

// WriteText prints the report for people: every problem on its own line, then a summary.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, p := range r.Errors {
		b.WriteString("error: " + p.String() + "\n")
	}
	for _, p := range r.Warnings {
		b.WriteString("warning: " + p.String() + "\n")
	}
	verdict := "valid"
	if !r.Valid() {
		verdict = fmt.Sprintf("invalid: %d error(s)", len(r.Errors))
	}
	b.WriteString(fmt.Sprintf("%d Herald object(s), %d Secret(s), %d other object(s) ignored: %s", r.Objects, r.Secrets, r.Ignored, verdict))
	if len(r.Warnings) > 0 {
		b.WriteString(fmt.Sprintf(", %d warning(s)", len(r.Warnings)))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
