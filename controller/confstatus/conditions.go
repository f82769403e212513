package confstatus

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// maxMessage bounds a condition's message (the API allows 32768 bytes).
const maxMessage = 8192

// Ref names one configuration object.
type Ref struct {
	Kind, Name string
}

func (r Ref) String() string { return r.Kind + " " + r.Name }

// Problems are what a parse found, by the object they concern.
type Problems struct {
	// Errors make an object invalid.
	Errors config.Errors
	// Warnings leave it valid but say what it refers to that is missing or ignored.
	Warnings config.Errors
}

// Parse returns the problems of a snapshot: the errors and warnings of config.ParseUsable (read
// as at start-up: conflicts are the newer object's), plus config.SecretsHiddenFromSpeakers (a
// password Secret the speakers cannot see breaks the peer on every node, so it is an error here
// although the configuration, which sees every Secret, accepts it).
func Parse(s config.Snapshot) Problems {
	_, rep := config.ParseUsable(s, nil)
	p := Problems{Errors: slices.Clone(rep.Errors), Warnings: slices.Clone(rep.Warnings)}
	p.Errors = append(p.Errors, config.SecretsHiddenFromSpeakers(s)...)
	return p
}

// Conditions returns the Valid condition of every object of objs, given the problems of the
// snapshot they come from. Problems about objects not in objs are ignored. LastTransitionTime is
// left zero (meta.SetStatusCondition sets it when the status changes).
func Conditions(objs []Object, p Problems) map[Ref]metav1.Condition {
	errs, warns := byObject(p.Errors), byObject(p.Warnings)
	out := make(map[Ref]metav1.Condition, len(objs))
	for _, o := range objs {
		ref := Ref{Kind: o.Kind, Name: o.Name}
		c := metav1.Condition{Type: v1beta1.ConditionValid, ObservedGeneration: o.Generation}
		switch {
		case len(errs[ref]) > 0:
			c.Status, c.Reason = metav1.ConditionFalse, v1beta1.ReasonInvalid
			c.Message = message(fmt.Sprintf("%d problem(s) to fix: ", len(errs[ref])), errs[ref])
			if len(warns[ref]) > 0 {
				c.Message = message(c.Message+". Warnings: ", warns[ref])
			}
		case len(warns[ref]) > 0:
			c.Status, c.Reason = metav1.ConditionTrue, v1beta1.ReasonValidWithWarnings
			c.Message = message("Valid, with warnings: ", warns[ref])
		default:
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1beta1.ReasonValid, "No problem found."
		}
		out[ref] = c
	}
	return out
}

// Object is what Conditions needs of a configuration object.
type Object struct {
	Kind, Name string
	Generation int64
}

func byObject(es config.Errors) map[Ref][]*config.FieldError {
	out := map[Ref][]*config.FieldError{}
	for _, e := range es {
		r := Ref{Kind: e.Kind, Name: e.Name}
		out[r] = append(out[r], e)
	}
	return out
}

// message appends each problem as `field "value": reason`, separated by "; ", to prefix, cut at
// maxMessage.
func message(prefix string, es []*config.FieldError) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Field)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", e.Value)
		}
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	s := b.String()
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage-3], "") + "..."
	}
	return s
}

// InvalidByKind counts the objects whose Valid condition is False, by kind; every kind of kinds
// is in the result, with 0 when none of its objects is invalid.
func InvalidByKind(conds map[Ref]metav1.Condition, kinds []string) map[string]int {
	out := make(map[string]int, len(kinds))
	for _, k := range kinds {
		out[k] = 0
	}
	for ref, c := range conds {
		if c.Status == metav1.ConditionFalse {
			out[ref.Kind]++
		}
	}
	return out
}
