package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Parse validates a snapshot and translates it into a Config. It checks every object and
// every rule that spans objects (overlapping pools, peers with the same address, localPrefs,
// references to BFD profiles, Secrets and community aliases), and returns all problems as
// Errors (which matches ErrInvalid), with a nil Config. It is the strict form of ParseUsable
// (with no last good configuration): the webhook uses it to refuse objects at the door, and
// it fails exactly when ParseUsable reports an error. ParseUsable's warnings (references to
// pools or peers that do not exist) do not make it fail; the Config then ignores them. Parse
// does not modify the snapshot, and its result depends only on the snapshot's content, not on
// the order of its slices.
func Parse(s Snapshot) (*Config, error) {
	cfg, rep := ParseUsable(s, nil)
	if len(rep.Errors) > 0 {
		return nil, rep.Errors
	}
	return cfg, nil
}

// parser holds the state of one ParseUsable call.
type parser struct {
	cfg   *Config
	last  *Config // lastGood, nil at start-up
	errs  Errors
	warns Errors
	fates map[ObjectRef]Fate

	secrets map[string]*corev1.Secret // by namespace/name
	// aliases are the community aliases in force, by name.
	aliases map[string]alias
	// poolNames, poolLabels, peerNames and bfdNames describe every object of the snapshot
	// (sorted by name), usable or not, so that a reference to an unusable object is not also
	// reported as a reference to a missing one. The Config holds the usable ones.
	poolNames  []string
	poolLabels map[string]labels.Set
	peerNames  []string
	bfdNames   []string
}

func newParser(s Snapshot, lastGood *Config) *parser {
	p := &parser{
		cfg: &Config{
			Pools:       map[string]*Pool{},
			Peers:       map[string]*Peer{},
			BFDProfiles: map[string]*BFDProfile{},
		},
		last:       lastGood,
		fates:      map[ObjectRef]Fate{},
		secrets:    map[string]*corev1.Secret{},
		poolLabels: map[string]labels.Set{},
	}
	for i := range s.Secrets {
		sec := &s.Secrets[i]
		key := sec.Namespace + "/" + sec.Name
		if _, dup := p.secrets[key]; !dup {
			p.secrets[key] = sec
		}
	}
	return p
}

// object is what the parser needs of a Herald object.
type object interface {
	GetName() string
	GetNamespace() string
	GetCreationTimestamp() metav1.Time
}

// reporter records errors about one object.
type reporter struct {
	p                     *parser
	kind, namespace, name string
}

func (p *parser) reporter(kind string, o object) reporter {
	return reporter{p: p, kind: kind, namespace: o.GetNamespace(), name: o.GetName()}
}

// errorf records that field, holding value, is wrong for the formatted reason.
func (r reporter) errorf(field, value, format string, args ...any) {
	r.p.errs = append(r.p.errs, r.fieldError(field, value, format, args...))
}

// warnf records that field, holding value, refers to nothing, for the formatted reason.
func (r reporter) warnf(field, value, format string, args ...any) {
	r.p.warns = append(r.p.warns, r.fieldError(field, value, format, args...))
}

func (r reporter) fieldError(field, value, format string, args ...any) *FieldError {
	return &FieldError{
		Kind:      r.kind,
		Namespace: r.namespace,
		Name:      r.name,
		Field:     field,
		Value:     value,
		Reason:    fmt.Sprintf(format, args...),
	}
}

// clean runs f and reports whether it recorded no error.
func (p *parser) clean(f func()) bool {
	n := len(p.errs)
	f()
	return len(p.errs) == n
}

// uniqueByName returns pointers to the items sorted by name (then namespace), reporting and
// dropping every item whose name an earlier one already has.
func uniqueByName[T any, PT interface {
	*T
	object
}](p *parser, kind string, items []T) []PT {
	out := make([]PT, 0, len(items))
	for i := range items {
		out = append(out, PT(&items[i]))
	}
	slices.SortStableFunc(out, func(a, b PT) int {
		return cmp.Or(cmp.Compare(a.GetName(), b.GetName()), cmp.Compare(a.GetNamespace(), b.GetNamespace()))
	})
	kept := out[:0]
	for i, o := range out {
		if i > 0 && o.GetName() == out[i-1].GetName() {
			prev := out[i-1]
			p.reporter(kind, o).errorf("metadata.name", o.GetName(),
				"%s %s has the same name; Herald configuration names must be unique, rename one of them",
				kind, namespacedName(prev))
			p.fates[ObjectRef{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}] = FateLeftOut
			continue
		}
		kept = append(kept, o)
	}
	return kept
}

func namespacedName(o object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// selectors converts label selectors, reporting each bad label or expression at its own
// field path under field (such as "spec.nodeSelectors"). It returns nil for no selectors.
func (r reporter) selectors(field string, sels []metav1.LabelSelector) []labels.Selector {
	var out []labels.Selector
	for i := range sels {
		if s, ok := r.selector(fmt.Sprintf("%s[%d]", field, i), &sels[i]); ok {
			out = append(out, s)
		}
	}
	return out
}

func (r reporter) selector(field string, sel *metav1.LabelSelector) (labels.Selector, bool) {
	ok := true
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		one := &metav1.LabelSelector{MatchLabels: map[string]string{k: sel.MatchLabels[k]}}
		if _, err := metav1.LabelSelectorAsSelector(one); err != nil {
			r.errorf(fmt.Sprintf("%s.matchLabels[%s]", field, k), sel.MatchLabels[k],
				"not a valid label selector: %v", err)
			ok = false
		}
	}
	for j, e := range sel.MatchExpressions {
		one := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}}
		if _, err := metav1.LabelSelectorAsSelector(one); err != nil {
			r.errorf(fmt.Sprintf("%s.matchExpressions[%d]", field, j),
				fmt.Sprintf("%s %s %v", e.Key, e.Operator, e.Values),
				"not a valid label selector requirement: %v; use an operator In, NotIn, Exists or DoesNotExist with a valid label key and values", err)
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil { // not expected once every part converted on its own
		r.errorf(field, "", "not a valid label selector: %v", err)
		return nil, false
	}
	return s, true
}

// knownNames lists names for an error message, shortened when there are many.
func knownNames(kind string, names []string) string {
	const limit = 20
	if len(names) == 0 {
		return "there is no " + kind
	}
	if len(names) > limit {
		return fmt.Sprintf("known: %s and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
	}
	return "known: " + strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// intersect returns the strings both sorted slices hold, sorted.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); ok {
			out = append(out, s)
		}
	}
	return out
}

// selectorsMayOverlap reports whether two lists of selectors (empty meaning everything) may
// select a common object. Different non-empty selectors are assumed to select different objects.
func selectorsMayOverlap(a, b []labels.Selector) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x.String() == y.String() {
				return true
			}
		}
	}
	return false
}
