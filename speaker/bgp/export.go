package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"
)

// Policy names of every GoBGP server of the speaker.
const (
	importPolicyName = "herald-import-local-only"
	exportPolicyName = "herald-export"
)

// exportPeer is what the export policy needs of one session of a server.
type exportPeer struct {
	peer   Peer
	routes table
}

// defaultIBGPLocalPref is the LOCAL_PREF an iBGP peer is sent for a route that sets none.
const defaultIBGPLocalPref = 100

// serverPolicies defines the policies of one GoBGP server (SetPolicies replaces the definitions
// and keeps the assignments, which policyAssignments makes once per server):
//
//   - import: accept only the paths the speaker adds itself (GoBGP runs local paths through the
//     global import policy too) and reject everything peers send: the speaker is not a router;
//   - export: per-neighbour statements. GoBGP v4 assigns policies per neighbour only to
//     route-server clients (which would not prepend our AS), so the per-neighbour policy is one
//     global export policy whose statements each match one neighbour (a neighbor set holding its
//     address) and the prefixes of one attribute group of its table (a prefix set of one
//     family), set exactly the attributes of that group, and accept; everything else is rejected
//     (default action). The RIB holds each prefix once, without attributes; each peer gets
//     exactly its table:
//   - communities and large communities are replaced by the group's (the RIB path has none);
//   - LOCAL_PREF is set for iBGP peers: the group's, or 100 when it sets none. GoBGP cannot set
//     a LOCAL_PREF of 0 in a policy, so the RIB paths carry LOCAL_PREF 0 and a group asking for 0
//     sets nothing; GoBGP strips LOCAL_PREF towards eBGP peers;
//   - a route of the other family than the session's gets the node's address of the route's
//     family as next hop; routes of the session's family keep the unspecified next hop, which
//     GoBGP replaces by the session's local address.
//
// peers must each have a distinct address (one GoBGP server never holds two neighbours of the
// same address) and routes that sendable accepted.
func serverPolicies(peers []exportPeer, nodeIPv4, nodeIPv6 netip.Addr) *api.SetPoliciesRequest {
	req := &api.SetPoliciesRequest{
		Policies: []*api.Policy{{
			Name: importPolicyName,
			Statements: []*api.Statement{{
				Name:       "accept-local",
				Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
				Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
			}},
		}},
	}
	export := &api.Policy{Name: exportPolicyName}
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b exportPeer) int { return a.peer.Address.Compare(b.peer.Address) })
	for i, ep := range peers {
		if len(ep.routes) == 0 {
			continue
		}
		neighbors := fmt.Sprintf("n%d", i)
		req.DefinedSets = append(req.DefinedSets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
			Name:        neighbors,
			List:        []string{ep.peer.Address.Unmap().WithZone("").String()},
		})
		for j, g := range groupRoutes(ep.routes) {
			prefixes := fmt.Sprintf("n%d-%d", i, j)
			set := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: prefixes}
			for _, p := range g.prefixes {
				bits := uint32(p.Bits())
				set.Prefixes = append(set.Prefixes, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: bits, MaskLengthMax: bits})
			}
			req.DefinedSets = append(req.DefinedSets, set)
			export.Statements = append(export.Statements, &api.Statement{
				Name: prefixes,
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: neighbors},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: prefixes},
				},
				Actions: exportActions(ep.peer, g, nodeIPv4, nodeIPv6),
			})
		}
	}
	req.Policies = append(req.Policies, export)
	return req
}

// policyAssignments assign the policies of serverPolicies to the server's global RIB, each
// rejecting what it does not accept.
func policyAssignments() []*api.PolicyAssignment {
	return []*api.PolicyAssignment{{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: importPolicyName}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}, {
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}
}

// routeGroup is the prefixes of one family of a peer's table that share their attributes.
type routeGroup struct {
	v4       bool
	attrs    attrs
	prefixes []netip.Prefix
}

// groupRoutes splits t into groups of one family and equal attributes, in a stable order.
func groupRoutes(t table) []routeGroup {
	var out []routeGroup
	for _, p := range sortedPrefixes(t) {
		a := t[p]
		i := slices.IndexFunc(out, func(g routeGroup) bool { return g.v4 == p.Addr().Is4() && g.attrs.equal(a) })
		if i < 0 {
			out = append(out, routeGroup{v4: p.Addr().Is4(), attrs: a})
			i = len(out) - 1
		}
		out[i].prefixes = append(out[i].prefixes, p)
	}
	return out
}

func exportActions(p Peer, g routeGroup, nodeIPv4, nodeIPv6 netip.Addr) *api.Actions {
	act := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
	if len(g.attrs.communities) > 0 {
		cs := make([]string, 0, len(g.attrs.communities))
		for _, c := range g.attrs.communities {
			cs = append(cs, strconv.FormatUint(uint64(c>>16), 10)+":"+strconv.FormatUint(uint64(c&0xffff), 10))
		}
		act.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE, Communities: cs}
	}
	if len(g.attrs.large) > 0 {
		cs := make([]string, 0, len(g.attrs.large))
		for _, l := range g.attrs.large {
			cs = append(cs, fmt.Sprintf("%d:%d:%d", l[0], l[1], l[2]))
		}
		act.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_TYPE_REPLACE, Communities: cs}
	}
	if p.ibgp() {
		lp := uint32(defaultIBGPLocalPref)
		if g.attrs.localPref != nil {
			lp = *g.attrs.localPref
		}
		if lp != 0 {
			act.LocalPref = &api.LocalPrefAction{Value: lp}
		}
	}
	if p.Interface == "" && g.v4 != p.Address.Unmap().Is4() {
		nh := nodeIPv6
		if g.v4 {
			nh = nodeIPv4.Unmap()
		}
		act.Nexthop = &api.NexthopAction{Address: nh.String()}
	}
	return act
}

func policiesEqual(a, b *api.SetPoliciesRequest) bool { return proto.Equal(a, b) }
