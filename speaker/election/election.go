// Package election decides which node or nodes announce a LoadBalancer IP.
//
// It owns two decisions and nothing else:
//
//   - eligibility: from plain facts about the nodes (alive in memberlist, its speaker ready to
//     answer, Ready, not NetworkUnavailable, not excluded by label, interfaces up), the
//     advertisements (pools,
//     node and service selectors as predicates over label maps, interfaces) and the Services
//     sharing the IP (labels, traffic policy, nodes with ready endpoints), which nodes may
//     announce the IP;
//   - ownership: in layer 2 mode exactly one of the eligible nodes answers for the IP, chosen by
//     rendezvous (highest-random-weight) hashing; in BGP mode every eligible node advertises.
//
// Election is per IP, not per Service, so Services that share an IP always have the same single
// layer 2 owner. Rendezvous hashing means a node joining or leaving the eligible set moves only
// the IPs it now wins or held; every other IP stays where it is. Every speaker computes the same
// answer from the same inputs, with no coordination.
//
// The package is pure: standard library only, no Kubernetes types, no sockets, no globals.
// The speaker's wiring adapts Nodes, EndpointSlices, config.Config and memberlist into Input.
package election

import (
	"net/netip"
	"slices"
	"strings"
)

// ExcludeFromLBLabel is the well-known Node label that removes a node from the set of
// load-balancer backends. Its presence, with any value, makes the node ineligible.
const ExcludeFromLBLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Mode is the announcement mode an election is held for.
type Mode int

const (
	// Layer2 announces with ARP/NDP: one owner per IP, interfaces matter.
	Layer2 Mode = iota + 1
	// BGP advertises routes: every eligible node advertises, interfaces do not matter.
	BGP
)

// String returns "layer2" or "bgp".
func (m Mode) String() string {
	switch m {
	case Layer2:
		return "layer2"
	case BGP:
		return "bgp"
	default:
		return "unknown"
	}
}

// LabelMatcher reports whether a label set is selected. A nil LabelMatcher selects everything,
// like an advertisement with no selectors. The wiring builds it from a list of
// labels.Selector that match when any of them does.
type LabelMatcher func(labels map[string]string) bool

// Matches reports whether the matcher selects labels; a nil matcher selects everything.
func (m LabelMatcher) Matches(labels map[string]string) bool {
	return m == nil || m(labels)
}

// Node is what the election needs to know about one node.
type Node struct {
	Name   string
	Labels map[string]string
	// Alive is true when memberlist counts the node's speaker as a live member.
	Alive bool
	// SpeakerReady is true when the node's speaker says, in the state it gossips, that it can
	// answer: it has a valid configuration, knows the other speakers and has set up its
	// responders. A live speaker that is not ready (starting, or without a usable configuration)
	// is never elected, so no IP is handed to a node that would not answer for it.
	SpeakerReady bool
	// Ready is the Node's Ready condition being True.
	Ready bool
	// NetworkUnavailable is the Node's NetworkUnavailable condition being True.
	NetworkUnavailable bool
	// Interfaces names the node's interfaces that are up and open for layer 2 announcements:
	// its default interfaces and those that advertisements name. An advertisement that names
	// interfaces may use the node when one of them is listed. Every speaker must see the same
	// lists for a node (they are published through memberlist metadata), or speakers may
	// disagree on the owner. Ignored in BGP mode.
	Interfaces []string
	// DefaultInterfaces names those of Interfaces chosen by the default rule (the node's own
	// addresses and default routes): an advertisement that names no interface answers on them,
	// and may use the node when there is one. Ignored in BGP mode.
	DefaultInterfaces []string
}

// Advertisement is an L2Advertisement or BGPAdvertisement reduced to what the election uses.
type Advertisement struct {
	Name string
	// Pools names every pool the advertisement covers.
	Pools []string
	// Nodes selects the nodes that may announce; nil selects every node.
	Nodes LabelMatcher
	// Services selects the Services announced; nil selects every Service.
	Services LabelMatcher
	// Interfaces restricts layer 2 announcements to these interfaces; empty allows any.
	// Ignored in BGP mode.
	Interfaces []string
}

// Service is one Service that holds the IP being elected.
type Service struct {
	// Key is namespace/name; the election does not use it, it helps callers and tests.
	Key    string
	Labels map[string]string
	// LocalTraffic is true for externalTrafficPolicy: Local.
	LocalTraffic bool
	// ReadyEndpointNodes names the nodes with at least one ready endpoint of the Service.
	// Only used when LocalTraffic is true.
	ReadyEndpointNodes []string
}

// Input is everything the election of one IP depends on.
type Input struct {
	IP netip.Addr
	// Pool is the pool the IP was allocated from.
	Pool string
	// Services are all the Services that hold IP (several when the IP is shared).
	Services []Service
	// Advertisements of the mode being elected (L2Advertisements for Layer2,
	// BGPAdvertisements for BGP).
	Advertisements []Advertisement
	// Nodes are all the nodes of the cluster.
	Nodes []Node
}

// Eligible returns the names of the nodes that may announce in.IP in the given mode, sorted
// and without duplicates.
//
// A node is eligible when it is alive in memberlist, its speaker is ready, it is Ready, not
// NetworkUnavailable, not labelled ExcludeFromLBLabel, and it can serve every announced Service
// of the IP:
//
//   - a Service is announced when at least one advertisement covers in.Pool and selects the
//     Service. Services no advertisement announces put no constraint on the nodes (they are
//     simply not announced in this mode); when no Service is announced no node is eligible;
//   - for each announced Service, some advertisement that announces it must select the node
//     and, in Layer2 mode, allow one of the node's Interfaces (when the advertisement names
//     none, the node must have one of its DefaultInterfaces up);
//   - for each announced Service with LocalTraffic, the node must have a ready endpoint.
//
// With a shared IP the result is therefore the intersection over the Services. One node has
// to answer for the IP on behalf of all of them, and a node that cannot serve one of them
// (no local endpoint, not selected) would black-hole that Service's traffic. When the
// intersection is empty the IP is not announced; the controller only lets Local Services share
// an IP when they select the same pods, so in practice the endpoint sets agree.
func Eligible(mode Mode, in Input) []string {
	return evaluate(mode, in, false).Eligible()
}

// Admission is one eligible node and what admitted it.
type Admission struct {
	Node string
	// Advertisements names, in the order of Input.Advertisements and without duplicates, every
	// advertisement that covers the pool, announces at least one of the IP's Services and
	// selects the node (in Layer2 mode, also allowing one of its interfaces, see Eligible).
	// Callers take the attributes of the announcement (interfaces, communities, peers) from
	// these advertisements and need not evaluate any selector again.
	Advertisements []string
}

// Admit returns the nodes Eligible returns, sorted by name and without duplicates, each with the
// advertisements that admitted it. When a name appears more than once in in.Nodes, the
// advertisements are those selecting any of its eligible copies.
func Admit(mode Mode, in Input) []Admission {
	constraints, _, _ := constraintsOf(in, false)
	if len(constraints) == 0 {
		return nil
	}
	announcing := make([]bool, len(in.Advertisements)) // announces at least one Service
	for j := range in.Advertisements {
		ad := &in.Advertisements[j]
		for _, c := range constraints {
			if slices.Contains(c.ads, ad) {
				announcing[j] = true
				break
			}
		}
	}
	admitting := map[string][]bool{} // eligible node name: admitting advertisements by index
	for i := range in.Nodes {
		node := &in.Nodes[i]
		if node.Name == "" || refused(mode, node, constraints) {
			continue
		}
		set := admitting[node.Name]
		if set == nil {
			set = make([]bool, len(in.Advertisements))
			admitting[node.Name] = set
		}
		for j := range in.Advertisements {
			ad := &in.Advertisements[j]
			if announcing[j] && ad.Nodes.Matches(node.Labels) && (mode != Layer2 || allowsInterface(ad, node)) {
				set[j] = true
			}
		}
	}
	out := make([]Admission, 0, len(admitting))
	for name, set := range admitting {
		a := Admission{Node: name}
		for j, ok := range set {
			if ok && !slices.Contains(a.Advertisements, in.Advertisements[j].Name) {
				a.Advertisements = append(a.Advertisements, in.Advertisements[j].Name)
			}
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Admission) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Owner returns the node among eligible that owns ip: the one with the highest rendezvous
// weight for ip, ties broken by the smaller name. The order of eligible and duplicates in it
// do not matter. It returns false when eligible has no non-empty name.
func Owner(ip netip.Addr, eligible []string) (string, bool) {
	var (
		best  string
		bestW uint64
		found bool
	)
	for _, n := range eligible {
		if n == "" {
			continue
		}
		if w := weight(n, ip); !found || outranks(n, w, best, bestW) {
			best, bestW, found = n, w, true
		}
	}
	return best, found
}

// Outranks reports whether node a wins ip over node b when both are eligible: what Owner decides
// between the two.
func Outranks(ip netip.Addr, a, b string) bool {
	return a != b && outranks(a, weight(a, ip), b, weight(b, ip))
}

// outranks reports whether node with weight w wins the IP over best with weight bestW: the higher
// weight wins, and the smaller name on a tie. Owner and Layer2Admission rank with it alone.
func outranks(node string, w uint64, best string, bestW uint64) bool {
	return w > bestW || (w == bestW && node < best)
}

// Layer2Owner returns the single node that answers ARP/NDP for in.IP, and false when no node
// is eligible.
func Layer2Owner(in Input) (string, bool) {
	return Owner(in.IP, Eligible(Layer2, in))
}

// BGPAnnouncers returns every node that advertises a route to in.IP, sorted: all eligible
// nodes, which for a Local Service means only the nodes with a ready endpoint.
func BGPAnnouncers(in Input) []string {
	return Eligible(BGP, in)
}

// Layer2Admission returns the single node that answers ARP/NDP for in.IP with the
// advertisements that admitted it, and false when no node is eligible: the Admission of the
// Owner among Admit(Layer2, in). It judges each node once and gathers advertisements for the
// owner only, so that re-electing every IP of a large cluster stays cheap (a failover re-elects
// them all on every speaker at the same moment).
func Layer2Admission(in Input) (Admission, bool) {
	constraints, _, _ := constraintsOf(in, false)
	if len(constraints) == 0 {
		return Admission{}, false
	}
	var (
		best  string
		bestW uint64
		found bool
	)
	eligible := make([]bool, len(in.Nodes))
	for i := range in.Nodes {
		node := &in.Nodes[i]
		if node.Name == "" || refused(Layer2, node, constraints) {
			continue
		}
		eligible[i] = true
		if w := weight(node.Name, in.IP); !found || outranks(node.Name, w, best, bestW) {
			best, bestW, found = node.Name, w, true
		}
	}
	if !found {
		return Admission{}, false
	}
	a := Admission{Node: best}
	for j := range in.Advertisements {
		ad := &in.Advertisements[j]
		if slices.Contains(a.Advertisements, ad.Name) || !slices.ContainsFunc(constraints, func(c constraint) bool { return slices.Contains(c.ads, ad) }) {
			continue
		}
		for i := range in.Nodes {
			node := &in.Nodes[i]
			if eligible[i] && node.Name == best && ad.Nodes.Matches(node.Labels) && allowsInterface(ad, node) {
				a.Advertisements = append(a.Advertisements, ad.Name)
				break
			}
		}
	}
	return a, true
}
