package election

import (
	"fmt"
	"slices"
	"strings"
)

// Cause says why a node may not announce an IP. Explain reports every cause that applies to a
// node, not only the first, so that a caller that does not know some facts (a client of the API
// server cannot see memberlist) can set them optimistically and ignore the causes they produce
// (see Cause.SpeakerOnly).
type Cause string

// Causes, in the order Explain checks them.
const (
	// CauseNotMember: the node's speaker is not a live memberlist member (not running, not
	// joined, or cut off from the others).
	CauseNotMember Cause = "NotMember"
	// CauseSpeakerNotReady: the node's speaker is a member but does not say it can answer yet
	// (no readable configuration, still joining the others, or its responders not open).
	CauseSpeakerNotReady Cause = "SpeakerNotReady"
	// CauseNodeNotReady: the Node's Ready condition is not True.
	CauseNodeNotReady Cause = "NodeNotReady"
	// CauseNetworkUnavailable: the Node's NetworkUnavailable condition is True.
	CauseNetworkUnavailable Cause = "NetworkUnavailable"
	// CauseExcluded: the Node carries ExcludeFromLBLabel.
	CauseExcluded Cause = "ExcludedByLabel"
	// CauseNoLocalEndpoint: a Service of the IP has externalTrafficPolicy Local and no ready
	// endpoint on the node.
	CauseNoLocalEndpoint Cause = "NoLocalEndpoint"
	// CauseNotSelected: no advertisement that announces a Service of the IP selects the node
	// with its nodeSelectors.
	CauseNotSelected Cause = "NotSelected"
	// CauseNoInterface (layer 2 only): advertisements select the node, but none of them allows
	// an interface the node has up.
	CauseNoInterface Cause = "NoInterface"
)

// SpeakerOnly reports whether only the speakers know the facts behind c (memberlist membership
// and the interfaces a speaker can answer on), as opposed to facts any client reads from the
// API server (Node conditions and labels, EndpointSlices, the configuration).
func (c Cause) SpeakerOnly() bool {
	return c == CauseNotMember || c == CauseSpeakerNotReady || c == CauseNoInterface
}

// Reason is one cause that keeps a node from announcing an IP.
type Reason struct {
	Cause Cause `json:"cause"`
	// Service is the Service ("namespace/name") the reason is about, for the causes that depend
	// on a Service (NoLocalEndpoint, NotSelected, NoInterface).
	Service string `json:"service,omitempty"`
	// Advertisements names the advertisements involved: for NotSelected those announcing the
	// Service, whose node selectors miss the node; for NoInterface those selecting the node.
	Advertisements []string `json:"advertisements,omitempty"`
	// Interfaces, for NoInterface: the node's interfaces that are up, as the speakers see them.
	Interfaces []string `json:"interfaces,omitempty"`
	// Allowed, for NoInterface: the interfaces the advertisements allow; empty when they allow
	// any interface.
	Allowed []string `json:"allowed,omitempty"`
}

// String says the reason in a few words, for one line of an event or a command's output.
func (r Reason) String() string {
	switch r.Cause {
	case CauseNotMember:
		return "its speaker is not a live memberlist member"
	case CauseSpeakerNotReady:
		return "its speaker does not say it can answer yet (configuration, joining, or responders)"
	case CauseNodeNotReady:
		return "the Node is not Ready"
	case CauseNetworkUnavailable:
		return "the Node is NetworkUnavailable"
	case CauseExcluded:
		return "the Node has the label " + ExcludeFromLBLabel
	case CauseNoLocalEndpoint:
		return fmt.Sprintf("no ready endpoint of %s on it (externalTrafficPolicy: Local)", r.Service)
	case CauseNotSelected:
		return fmt.Sprintf("not selected by the nodeSelectors of %s (announcing %s)", strings.Join(r.Advertisements, ", "), r.Service)
	case CauseNoInterface:
		have := "no interface up"
		if len(r.Interfaces) > 0 {
			have = "interfaces up: " + strings.Join(r.Interfaces, ", ")
		}
		if len(r.Allowed) == 0 {
			return fmt.Sprintf("no interface to answer on (%s)", have)
		}
		return fmt.Sprintf("none of the interfaces %s allows is up on it (%s)", strings.Join(r.Advertisements, ", "), have)
	default:
		return string(r.Cause)
	}
}

// NodeVerdict says whether one node may announce an IP, and if not, every reason why.
type NodeVerdict struct {
	Node string `json:"node"`
	// Reasons is empty when the node is eligible.
	Reasons []Reason `json:"reasons,omitempty"`
}

// Eligible reports whether the node may announce the IP.
func (v NodeVerdict) Eligible() bool { return len(v.Reasons) == 0 }

// Explanation is the election of one IP in one mode, node by node.
type Explanation struct {
	Mode Mode `json:"-"`
	// Announced lists the Services of the IP that some advertisement of the mode covers (its
	// pools hold the IP's pool and its serviceSelectors select the Service), sorted.
	Announced []string `json:"announced,omitempty"`
	// NotCovered lists the other Services of the IP, sorted: no advertisement of the mode
	// announces them. When Announced is empty, no node is eligible and Nodes is empty.
	NotCovered []string `json:"notCovered,omitempty"`
	// Nodes holds one verdict per node name, sorted by name, when Announced is not empty.
	Nodes []NodeVerdict `json:"nodes,omitempty"`
}

// Eligible returns the names of the eligible nodes, sorted.
func (e Explanation) Eligible() []string {
	var out []string
	for _, v := range e.Nodes {
		if v.Eligible() {
			out = append(out, v.Node)
		}
	}
	return out
}

// Explain holds the election of in.IP in the given mode and says, for every node, whether it is
// eligible and every reason it is not. Eligible is Explain's list of eligible nodes: both run the
// same checks.
func Explain(mode Mode, in Input) Explanation {
	return evaluate(mode, in, true)
}

// constraint is what one announced Service asks of the nodes.
type constraint struct {
	service   string
	ads       []*Advertisement
	endpoints map[string]bool // nil unless Local
}

// constraintsOf returns what the announced Services of in ask of the nodes, sorted by Service,
// and (with detail) the announced and the not covered Services, sorted.
func constraintsOf(in Input, detail bool) (constraints []constraint, announced, notCovered []string) {
	for i := range in.Services {
		svc := &in.Services[i]
		c := constraint{service: svc.Key}
		for j := range in.Advertisements {
			ad := &in.Advertisements[j]
			if slices.Contains(ad.Pools, in.Pool) && ad.Services.Matches(svc.Labels) {
				c.ads = append(c.ads, ad)
			}
		}
		if len(c.ads) == 0 {
			// Not announced in this mode: no constraint.
			if detail {
				notCovered = append(notCovered, svc.Key)
			}
			continue
		}
		if svc.LocalTraffic {
			c.endpoints = make(map[string]bool, len(svc.ReadyEndpointNodes))
			for _, n := range svc.ReadyEndpointNodes {
				c.endpoints[n] = true
			}
		}
		constraints = append(constraints, c)
		if detail {
			announced = append(announced, svc.Key)
		}
	}
	// Reasons come in the order of the Services, whatever the order of in.Services.
	slices.SortStableFunc(constraints, func(a, b constraint) int { return strings.Compare(a.service, b.service) })
	slices.Sort(announced)
	announced = slices.Compact(announced)
	slices.Sort(notCovered)
	notCovered = slices.Compact(notCovered)
	return constraints, announced, notCovered
}

// evaluate is the election. With detail false it stops at a node's first reason and leaves the
// reasons without details (Eligible only needs to know whether there is one).
func evaluate(mode Mode, in Input, detail bool) Explanation {
	e := Explanation{Mode: mode}
	var constraints []constraint
	constraints, e.Announced, e.NotCovered = constraintsOf(in, detail)
	if len(constraints) == 0 {
		return e
	}

	byName := map[string]int{} // index in e.Nodes
	for i := range in.Nodes {
		node := &in.Nodes[i]
		if node.Name == "" {
			continue
		}
		v := NodeVerdict{Node: node.Name, Reasons: judge(mode, node, constraints, detail)}
		if j, dup := byName[node.Name]; dup {
			// The same name twice: eligible when either copy is; otherwise the copy with the
			// fewest reasons (then the first in text order), whatever the order of in.Nodes.
			if prev := e.Nodes[j]; !prev.Eligible() && (v.Eligible() || lessReasons(v.Reasons, prev.Reasons)) {
				e.Nodes[j] = v
			}
			continue
		}
		byName[node.Name] = len(e.Nodes)
		e.Nodes = append(e.Nodes, v)
	}
	slices.SortFunc(e.Nodes, func(a, b NodeVerdict) int { return strings.Compare(a.Node, b.Node) })
	return e
}

// refused reports whether judge gives node a reason, without making one: an election judges
// every node for every IP at each full computation, and most nodes of a large cluster are
// refused (not selected, no local endpoint) without the reason being read.
func refused(mode Mode, node *Node, constraints []constraint) bool {
	if !node.Alive || !node.SpeakerReady || !node.Ready || node.NetworkUnavailable {
		return true
	}
	if _, excluded := node.Labels[ExcludeFromLBLabel]; excluded {
		return true
	}
	for _, c := range constraints {
		if c.endpoints != nil && !c.endpoints[node.Name] {
			return true
		}
		allowed := false
		for _, ad := range c.ads {
			if ad.Nodes.Matches(node.Labels) && (mode != Layer2 || allowsInterface(ad, node)) {
				allowed = true
				break
			}
		}
		if !allowed {
			return true
		}
	}
	return false
}

// judge returns the reasons node may not announce for the constraints; with detail false, at
// most the first one.
func judge(mode Mode, node *Node, constraints []constraint, detail bool) []Reason {
	var out []Reason
	add := func(r Reason) bool {
		out = append(out, r)
		return !detail // stop
	}
	if !node.Alive && add(Reason{Cause: CauseNotMember}) {
		return out
	}
	if node.Alive && !node.SpeakerReady && add(Reason{Cause: CauseSpeakerNotReady}) {
		return out
	}
	if !node.Ready && add(Reason{Cause: CauseNodeNotReady}) {
		return out
	}
	if node.NetworkUnavailable && add(Reason{Cause: CauseNetworkUnavailable}) {
		return out
	}
	if _, excluded := node.Labels[ExcludeFromLBLabel]; excluded && add(Reason{Cause: CauseExcluded}) {
		return out
	}
	for _, c := range constraints {
		if c.endpoints != nil && !c.endpoints[node.Name] && add(Reason{Cause: CauseNoLocalEndpoint, Service: c.service}) {
			return out
		}
		var selecting []*Advertisement
		for _, ad := range c.ads {
			if ad.Nodes.Matches(node.Labels) {
				selecting = append(selecting, ad)
			}
		}
		if len(selecting) == 0 {
			if add(Reason{Cause: CauseNotSelected, Service: c.service, Advertisements: adNames(c.ads, detail)}) {
				return out
			}
			continue
		}
		if mode != Layer2 || slices.ContainsFunc(selecting, func(ad *Advertisement) bool { return allowsInterface(ad, node) }) {
			continue
		}
		r := Reason{Cause: CauseNoInterface, Service: c.service}
		if detail {
			r.Advertisements = adNames(selecting, true)
			r.Interfaces = slices.Clone(node.Interfaces)
			for _, ad := range selecting {
				if len(ad.Interfaces) == 0 {
					r.Allowed = nil // one of them allows any interface
					break
				}
				r.Allowed = append(r.Allowed, ad.Interfaces...)
			}
			slices.Sort(r.Allowed)
			r.Allowed = slices.Compact(r.Allowed)
		}
		if add(r) {
			return out
		}
	}
	return out
}

// lessReasons orders two lists of reasons: the shorter first, then by their text.
func lessReasons(a, b []Reason) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

// allowsInterface reports whether ad lets node answer on one of its interfaces (layer 2): one of
// the node's default interfaces when ad names none (the node must have one up), otherwise one of
// those ad names.
func allowsInterface(ad *Advertisement, node *Node) bool {
	if len(ad.Interfaces) == 0 {
		return len(node.DefaultInterfaces) > 0
	}
	return slices.ContainsFunc(node.Interfaces, func(ifi string) bool { return slices.Contains(ad.Interfaces, ifi) })
}

func adNames(ads []*Advertisement, detail bool) []string {
	if !detail {
		return nil
	}
	out := make([]string, 0, len(ads))
	for _, ad := range ads {
		out = append(out, ad.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Summary says in one line why no node is eligible, grouping the nodes that have the same
// reasons: "n1, n3: the Node is not Ready; n2: no ready endpoint of ns/web on it
// (externalTrafficPolicy: Local)". Long lists are cut ("and 7 more"). It returns "" when a node
// is eligible, and "no node" when there is none at all.
func (e Explanation) Summary() string {
	return e.SummaryWith(Reason.String)
}

// SummaryWith is Summary with the reasons said by text.
func (e Explanation) SummaryWith(text func(Reason) string) string {
	const maxNames, maxGroups = 4, 4
	if len(e.Nodes) == 0 {
		return "no node"
	}
	type group struct {
		text  string
		nodes []string
	}
	var groups []*group
	index := map[string]*group{}
	for _, v := range e.Nodes {
		if v.Eligible() {
			return ""
		}
		parts := make([]string, 0, len(v.Reasons))
		for _, r := range v.Reasons {
			parts = append(parts, text(r))
		}
		text := strings.Join(parts, " and ")
		g := index[text]
		if g == nil {
			g = &group{text: text}
			index[text] = g
			groups = append(groups, g)
		}
		g.nodes = append(g.nodes, v.Node)
	}
	// The most common reasons first; ties in the order of their first node.
	slices.SortStableFunc(groups, func(a, b *group) int { return len(b.nodes) - len(a.nodes) })
	var out []string
	for i, g := range groups {
		if i == maxGroups {
			rest := 0
			for _, g := range groups[i:] {
				rest += len(g.nodes)
			}
			out = append(out, fmt.Sprintf("%d more node(s) for other reasons", rest))
			break
		}
		names := g.nodes
		more := ""
		if len(names) > maxNames {
			more = fmt.Sprintf(" and %d more", len(names)-maxNames)
			names = names[:maxNames]
		}
		out = append(out, strings.Join(names, ", ")+more+": "+g.text)
	}
	return strings.Join(out, "; ")
}
