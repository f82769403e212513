package config

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// ParseUsable translates a snapshot into the Config that the controller and the speaker run
// with: every object that is valid, so that a bad or incomplete object disables only what
// depends on it. Parse, which the webhook uses to refuse objects at the door, is the strict
// form of the same translation: it fails when ParseUsable reports any error.
//
// lastGood is the Config the caller ran with until now (the previous result of ParseUsable),
// nil at start-up. The rules:
//
//   - An object that is invalid on its own (a bad field, a BGPPeer whose password Secret, Secret
//     key or BFDProfile is missing or unusable, a BGPAdvertisement naming an unknown community
//     alias) is replaced by its version in lastGood when lastGood has it (run time: nothing that
//     works is lost; a peer whose Secret was deleted keeps the password it had), and is left out
//     otherwise (start-up, or a new object). Report.Fates says which.
//   - Conflicts between objects (two pools sharing addresses, two peers with the same address on
//     the same nodes) are errors of one object only, the one that ranks later: objects in force
//     rank first (those in lastGood that are unchanged, or invalid now and kept at their last
//     version), then edited objects in force, then new ones; within each group the older
//     creationTimestamp ranks first, then the name. At start-up that is simply "the older object
//     keeps working". An edited object in force that conflicts keeps its last version; the last
//     versions of edited objects are reserved while the edits are placed, so no object in force
//     is ever left out because of another object.
//   - Conflicts that concern part of an advertisement (an aggregationLength shorter than a CIDR
//     of a pool, a localPref that disagrees with an earlier-ranked BGPAdvertisement for the same
//     pools and peers) remove the pools concerned from the later-ranked advertisement only; the
//     advertisement keeps working for its other pools.
//   - Community aliases stand alone: a bad alias entry, or one that redefines an alias an
//     earlier-ranked Community object declares, is left out; the other aliases work.
//   - References that resolve to nothing (an advertisement naming a pool or peer that does not
//     exist, a pool selector that matches no pool) are warnings, not errors: the advertisement
//     works for what it can resolve. A reference to an object that exists but is not usable is
//     neither: that object has its own errors.
//   - Objects that depend only on a left-out object are left out, never more: an advertisement
//     covers the pools and peers in force; a peer whose BFDProfile is left out is an error of
//     that peer.
//
// Known limit: the run-time ranking depends on lastGood, the start-up one only on the
// snapshot. An older object edited (webhook off) into a conflict with a newer one in force
// loses at run time, but wins after a restart; the webhook refuses such an edit.
//
// ParseUsable never returns a nil Config, does not modify the snapshot or lastGood, and its
// result depends only on their content, not on the order of the snapshot's slices.
func ParseUsable(s Snapshot, lastGood *Config) (*Config, Report) {
	p := newParser(s, lastGood)
	bfds := uniqueByName(p, KindBFDProfile, s.BFDProfiles)
	communities := uniqueByName(p, KindCommunity, s.Communities)
	pools := uniqueByName(p, KindIPAddressPool, s.Pools)
	peers := uniqueByName(p, KindBGPPeer, s.Peers)
	l2s := uniqueByName(p, KindL2Advertisement, s.L2Advertisements)
	bgps := uniqueByName(p, KindBGPAdvertisement, s.BGPAdvertisements)

	p.parseBFDProfiles(bfds)
	p.parseCommunities(communities)
	p.parsePools(pools)
	p.parsePeers(peers)
	p.parseL2Advertisements(l2s)
	p.parseBGPAdvertisements(bgps)
	return p.cfg, p.report()
}

// Report is what ParseUsable found, and what it did about it.
type Report struct {
	// Errors are the problems that keep an object, or a part of one, out of the Config, in a
	// deterministic order (by kind, then object, then as found).
	Errors Errors
	// Warnings are references that resolve to nothing; the objects that make them still work.
	Warnings Errors
	// Fates says, for every object that has errors, what the Config holds of it.
	Fates map[ObjectRef]Fate
}

// Err returns the Errors, or nil when there are none.
func (r Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return r.Errors
}

// Fate returns what the Config holds of the object that e is about (FateInForce when the object
// has no error).
func (r Report) Fate(e *FieldError) Fate {
	if f, ok := r.Fates[ObjectRef{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}]; ok {
		return f
	}
	return FateInForce
}

// InvalidObjects counts the objects that have at least one error, by kind. Every kind is
// present, with 0 when none of its objects has an error.
func (r Report) InvalidObjects() map[string]int {
	out := map[string]int{}
	for _, k := range Kinds {
		out[k] = 0
	}
	for ref := range r.Fates {
		out[ref.Kind]++
	}
	return out
}

// Kinds are the kinds of the configuration, in the order errors are reported.
var Kinds = []string{KindBFDProfile, KindCommunity, KindIPAddressPool, KindBGPPeer, KindL2Advertisement, KindBGPAdvertisement}

// ObjectRef names one object of a snapshot.
type ObjectRef struct {
	Kind, Namespace, Name string
}

// Fate is what a Config holds of an object that has errors.
type Fate int

// Fates.
const (
	// FateInForce: the object has no error; its current version is in force.
	FateInForce Fate = iota
	// FateReduced: the current version is in force without the parts the errors name (pools
	// taken out of an advertisement, alias entries taken out of a Community).
	FateReduced
	// FateLastGood: the current version is not used; the last valid one stays in force.
	FateLastGood
	// FateLeftOut: the object is not used at all until it is fixed.
	FateLeftOut
)

// Consequence says what the fate means, for a message that follows the error.
func (f Fate) Consequence() string {
	switch f {
	case FateReduced:
		return "the rest of the object stays in force"
	case FateLastGood:
		return "its last valid version stays in force until this is fixed"
	case FateLeftOut:
		return "the object is not used until this is fixed"
	}
	return "the object is in force"
}

func (f Fate) String() string {
	switch f {
	case FateInForce:
		return "InForce"
	case FateReduced:
		return "Reduced"
	case FateLastGood:
		return "LastGood"
	case FateLeftOut:
		return "LeftOut"
	}
	return "Fate(" + strconv.Itoa(int(f)) + ")"
}

// report sorts the errors and warnings and completes the fates.
func (p *parser) report() Report {
	rank := func(kind string) int {
		if i := slices.Index(Kinds, kind); i >= 0 {
			return i
		}
		return len(Kinds)
	}
	order := func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(rank(a.Kind), rank(b.Kind)), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Namespace, b.Namespace))
	}
	slices.SortStableFunc(p.errs, order)
	slices.SortStableFunc(p.warns, order)
	for _, e := range p.errs {
		ref := ObjectRef{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
		if _, ok := p.fates[ref]; !ok {
			p.fates[ref] = FateReduced
		}
	}
	return Report{Errors: p.errs, Warnings: p.warns, Fates: p.fates}
}

// precedence is how objects rank in a conflict: the earlier one keeps working.
type precedence struct {
	class    int // 0: in force and unchanged (or kept at its last version); 1: edited; 2: new
	created  time.Time
	name, ns string
}

func comparePrecedence(a, b precedence) int {
	return cmp.Or(cmp.Compare(a.class, b.class), a.created.Compare(b.created), cmp.Compare(a.name, b.name), cmp.Compare(a.ns, b.ns))
}

// conflict is a problem an object's version has with a version of another object in force.
type conflict struct {
	field, value, reason string
}

// entrant is one object competing for a place in the Config.
type entrant[V any] struct {
	obj object
	// cur is the current version, as far as it parses; valid on its own when curOK.
	cur   V
	curOK bool
	// last is the version in lastGood, when hasLast.
	last    V
	hasLast bool
}

// rankEntrants returns the precedence of each entrant, and the entrants' indexes in that order.
func rankEntrants[V any](es []entrant[V], equal func(a, b V) bool) ([]precedence, []int) {
	ranks := make([]precedence, len(es))
	order := make([]int, len(es))
	for i, e := range es {
		pr := precedence{class: 2, created: e.obj.GetCreationTimestamp().Time, name: e.obj.GetName(), ns: e.obj.GetNamespace()}
		switch {
		case e.hasLast && (!e.curOK || equal(e.cur, e.last)):
			pr.class = 0
		case e.hasLast:
			pr.class = 1
		}
		ranks[i], order[i] = pr, i
	}
	slices.SortFunc(order, func(a, b int) int { return comparePrecedence(ranks[a], ranks[b]) })
	return ranks, order
}

// index holds versions in force of one kind and finds the conflicts of another version with them.
type index[V any] interface {
	add(v V)
	conflicts(v V) []conflict
}

// noIndex is the index of the kinds whose objects never conflict.
type noIndex[V any] struct{}

// The linter does not see these used through index[V].
func (noIndex[V]) add(V)                  {}             //nolint:unused // see above
func (noIndex[V]) conflicts(V) []conflict { return nil } //nolint:unused // see above

func newNoIndex[V any]() index[V] { return noIndex[V]{} }

// place decides which version of each entrant is in force, following the ranking ParseUsable
// documents, and records the conflicts and fates. newIndex returns an empty index of the kind;
// equal reports whether two versions are the same. The result holds the version in force of
// each entrant, by index; an entrant left out is absent.
func place[V any](p *parser, kind string, es []entrant[V], equal func(a, b V) bool, newIndex func() index[V]) map[int]V {
	ranks, order := rankEntrants(es, equal)

	out := map[int]V{}
	inForce := newIndex()
	// reserved holds the last versions of the edited objects not placed yet (few: the edits of
	// one snapshot), in the order of precedence.
	var reserved []int
	for _, i := range order {
		if ranks[i].class == 1 {
			reserved = append(reserved, i)
		}
	}
	// conflicts of v with the versions in force and, unless reserved is false, the reserved ones
	// of the others.
	conflicts := func(v V, self int, withReserved bool) []conflict {
		cs := inForce.conflicts(v)
		if withReserved && len(reserved) > 0 {
			others := newIndex()
			for _, j := range reserved {
				if j != self {
					others.add(es[j].last)
				}
			}
			cs = append(cs, others.conflicts(v)...)
		}
		return cs
	}
	for _, i := range order {
		e := es[i]
		ref := ObjectRef{Kind: kind, Namespace: e.obj.GetNamespace(), Name: e.obj.GetName()}
		r := p.reporter(kind, e.obj)
		accept := func(v V) {
			out[i] = v
			inForce.add(v)
			reserved = slices.DeleteFunc(reserved, func(j int) bool { return j == i })
		}
		if !e.curOK {
			// Not used, but reported in full: its conflicts too, so that the webhook names
			// every problem at once.
			for _, c := range conflicts(e.cur, i, true) {
				r.errorf(c.field, c.value, "%s", c.reason)
			}
		}
		if ranks[i].class == 0 && !e.curOK {
			// Invalid now, in force before: its last version, which nothing placed yet
			// conflicts with unless lastGood itself was inconsistent.
			if len(conflicts(e.last, i, false)) == 0 {
				accept(e.last)
				p.fates[ref] = FateLastGood
			} else {
				p.fates[ref] = FateLeftOut
			}
			continue
		}
		if e.curOK {
			cs := conflicts(e.cur, i, true)
			if len(cs) == 0 {
				accept(e.cur)
				continue
			}
			for _, c := range cs {
				r.errorf(c.field, c.value, "%s", c.reason)
			}
		}
		if e.hasLast && len(conflicts(e.last, i, false)) == 0 {
			accept(e.last)
			p.fates[ref] = FateLastGood
			continue
		}
		reserved = slices.DeleteFunc(reserved, func(j int) bool { return j == i })
		p.fates[ref] = FateLeftOut
	}
	return out
}
