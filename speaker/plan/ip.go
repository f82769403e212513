package plan

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
)

// A plan is computed per IP: what happens to one address depends only on the configuration, the
// nodes and the Services that hold that address. Context holds the first two, prepared once;
// Context.IP decides one address; Assemble puts the per-IP results together into a Plan. A speaker
// that keeps the per-IP results recomputes, on a Service or EndpointSlice change, only the
// addresses of that Service, and Compute(in) is the same as assembling every address.

// Context is what the plans of all IPs share: the configuration reduced to what the election
// reads, the nodes, and this node's BGP sessions. It is immutable once built.
type Context struct {
	cfg       *config.Config
	selfName  string
	self      election.Node
	nodes     []election.Node
	pools     []*config.Pool // by name
	l2ads     []election.Advertisement
	bgpads    []election.Advertisement
	l2ByName  map[string]*config.L2Advertisement
	bgpByName map[string]*config.BGPAdvertisement
	peers     []*config.Peer
	selfPeers map[string]bool
}

// NewContext prepares the election of every IP for node self among nodes under cfg. A nil cfg
// announces nothing.
func NewContext(cfg *config.Config, self string, nodes []election.Node) *Context {
	c := &Context{cfg: cfg, selfName: self, nodes: nodes, selfPeers: map[string]bool{}}
	for _, n := range nodes {
		if n.Name == self {
			c.self = n
		}
	}
	if cfg == nil {
		return c
	}
	for _, name := range cfg.PoolNames() {
		c.pools = append(c.pools, cfg.Pools[name])
	}
	c.l2ads, c.bgpads = advertisements(cfg)
	c.l2ByName = make(map[string]*config.L2Advertisement, len(cfg.L2Advertisements))
	for _, a := range cfg.L2Advertisements {
		c.l2ByName[a.Name] = a
	}
	c.bgpByName = make(map[string]*config.BGPAdvertisement, len(cfg.BGPAdvertisements))
	for _, a := range cfg.BGPAdvertisements {
		c.bgpByName[a.Name] = a
	}
	// The sessions this node keeps: peers whose node selectors match it.
	for _, name := range sortedKeys(cfg.Peers) {
		peer := cfg.Peers[name]
		if selects(Matcher(peer.NodeSelectors), c.self.Labels) {
			c.peers = append(c.peers, peer)
			c.selfPeers[name] = true
		}
	}
	return c
}

// Peers returns the BGP sessions this node keeps, by name.
func (c *Context) Peers() []*config.Peer { return c.peers }

// PeerRoute is a route this node sends one peer for one IP; the routes of IPs that aggregate
// into the same prefix are merged by MergeRoute when the plans are assembled.
type PeerRoute struct {
	Peer  string
	Route Route
}

// IPPlan is the part of a plan that one IP decides.
type IPPlan struct {
	IP netip.Addr
	// L2Owner is the node that answers ARP/NDP for IP, this one or another; empty when none.
	L2Owner string
	// L2Interfaces are the interfaces this node answers on; nil unless it owns IP and has one.
	L2Interfaces []string
	// L2 and BGP list this node's assignments of IP, by Service.
	L2  []L2Assignment
	BGP []BGPAssignment
	// Routes are this node's routes for IP, by peer then prefix.
	Routes []PeerRoute
	// Elsewhere are the prefixes other nodes advertise for IP over BGP (Plan.BGPElsewhere).
	Elsewhere []netip.Prefix
	// Unannounced lists the Services of IP that no node announces it for, by Service.
	Unannounced []Unannounced
}

// IP decides ip, held by svcs (every Service whose status lists ip; their order does not matter).
// The plan does not refer to svcs: the caller may reuse it.
func (c *Context) IP(ip netip.Addr, svcs []Service) IPPlan {
	p := IPPlan{IP: ip}
	if c.cfg == nil {
		return p
	}
	// A Service without any usable endpoint is not announced (as MetalLB does): traffic to it
	// would be dropped by kube-proxy anyway, and withdrawing lets routers and clients fail over
	// elsewhere (another cluster announcing the same IP, a DNS health check). It takes part
	// again as soon as an endpoint is ready, from the same owner, since ownership does not
	// depend on it.
	var es []election.Service
	for _, s := range svcs {
		if s.NoEndpoints {
			p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: NoEndpointsReason})
			continue
		}
		es = append(es, election.Service{Key: s.Key, Labels: s.Labels, LocalTraffic: s.LocalTraffic, ReadyEndpointNodes: s.ReadyEndpointNodes})
	}
	if len(es) > 0 {
		c.elect(&p, es)
	}
	sortIPPlan(&p)
	return p
}

// elect fills in p for the Services of p.IP that have endpoints.
func (c *Context) elect(p *IPPlan, svcs []election.Service) {
	ip := p.IP
	pool := c.poolOf(ip)
	if pool == nil {
		for _, s := range svcs {
			p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: fmt.Sprintf("%s is in no IPAddressPool", ip)})
		}
		return
	}
	announced := map[string]bool{}

	l2in := election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: c.l2ads, Nodes: c.nodes}
	if owner, ok := election.Layer2Admission(l2in); ok {
		p.L2Owner = owner.Node
		markAnnounced(announced, svcs, c.l2ads, pool.Name)
		if owner.Node == c.selfName {
			if ifaces := l2Interfaces(c.l2ByName, owner.Advertisements, c.self); len(ifaces) > 0 {
				p.L2Interfaces = ifaces
				for _, s := range svcs {
					if covers(c.l2ads, pool.Name, s) {
						p.L2 = append(p.L2, L2Assignment{Service: s.Key, IP: ip, Interfaces: ifaces})
					}
				}
			}
		}
	}

	bgpin := election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: c.bgpads, Nodes: c.nodes}
	if announcers := election.Admit(election.BGP, bgpin); len(announcers) > 0 {
		markAnnounced(announced, svcs, c.bgpads, pool.Name)
		elsewhere := map[netip.Prefix]bool{}
		for _, a := range announcers {
			if a.Node != c.selfName {
				addPrefixes(elsewhere, c.bgpByName, a.Advertisements, ip)
			}
		}
		p.Elsewhere = slices.SortedFunc(maps.Keys(elsewhere), comparePrefixes)
		if i := slices.IndexFunc(announcers, func(a election.Admission) bool { return a.Node == c.selfName }); i >= 0 {
			routes := map[string]map[netip.Prefix]Route{}
			peersOfIP := addRoutes(routes, c.bgpByName, announcers[i].Advertisements, ip, c.selfPeers)
			for peer, table := range routeTables(routes) {
				for _, r := range table {
					p.Routes = append(p.Routes, PeerRoute{Peer: peer, Route: r})
				}
			}
			slices.SortFunc(p.Routes, func(a, b PeerRoute) int {
				return cmp.Or(strings.Compare(a.Peer, b.Peer), comparePrefixes(a.Route.Prefix, b.Route.Prefix))
			})
			if len(peersOfIP) > 0 {
				for _, s := range svcs {
					if covers(c.bgpads, pool.Name, s) {
						p.BGP = append(p.BGP, BGPAssignment{Service: s.Key, IP: ip, Peers: peersOfIP})
					}
				}
			}
		}
	}

	for _, s := range svcs {
		if announced[s.Key] {
			continue
		}
		reason := fmt.Sprintf("no L2Advertisement or BGPAdvertisement announces pool %q for this Service", pool.Name)
		if covers(c.l2ads, pool.Name, s) || covers(c.bgpads, pool.Name, s) {
			reason = NoEligibleNodeReason(ip, pool.Name, election.Explain(election.Layer2, l2in), election.Explain(election.BGP, bgpin))
		}
		p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: reason})
	}
}

// NodesChanged compares c with old, a context made earlier. It returns the names of the nodes
// whose state differs as the election sees it (added, removed, or changed as sameForElection
// tells: a label no advertisement selects on changes nothing), and true when
// nothing else differs: the same configuration and the same self. Then the plan of an IP under c
// differs from its plan under old only where MayChange says it may. A node name listed twice in
// either context returns false.
func (c *Context) NodesChanged(old *Context) (map[string]bool, bool) {
	if old == nil || c.selfName != old.selfName || !reflect.DeepEqual(c.self, old.self) ||
		(c.cfg != old.cfg && !reflect.DeepEqual(c.cfg, old.cfg)) {
		return nil, false
	}
	before := make(map[string]*election.Node, len(old.nodes))
	for i := range old.nodes {
		n := &old.nodes[i]
		if _, dup := before[n.Name]; dup {
			return nil, false
		}
		before[n.Name] = n
	}
	changed := map[string]bool{}
	seen := make(map[string]bool, len(c.nodes))
	for i := range c.nodes {
		n := &c.nodes[i]
		if seen[n.Name] {
			return nil, false
		}
		seen[n.Name] = true
		if b, ok := before[n.Name]; !ok || !c.sameForElection(b, n) {
			changed[n.Name] = true
		}
	}
	for name := range before {
		if !seen[name] {
			changed[name] = true
		}
	}
	return changed, true
}

// sameForElection reports whether the election treats nodes a and b (the same node at two
// moments) alike for every IP under c: the same liveness, readiness, conditions and interfaces,
// and labels that every advertisement, and the exclusion label, judge alike. Every field of
// election.Node is either compared here or only read through the advertisements' selectors
// (TestSameForElectionKnowsEveryField).
func (c *Context) sameForElection(a, b *election.Node) bool {
	if a.Alive != b.Alive || a.SpeakerReady != b.SpeakerReady || a.Ready != b.Ready || a.NetworkUnavailable != b.NetworkUnavailable ||
		!slices.Equal(a.Interfaces, b.Interfaces) || !slices.Equal(a.DefaultInterfaces, b.DefaultInterfaces) {
		return false
	}
	_, ea := a.Labels[election.ExcludeFromLBLabel]
	_, eb := b.Labels[election.ExcludeFromLBLabel]
	if ea != eb {
		return false
	}
	for _, ads := range [][]election.Advertisement{c.l2ads, c.bgpads} {
		for _, ad := range ads {
			if ad.Nodes.Matches(a.Labels) != ad.Nodes.Matches(b.Labels) {
				return false
			}
		}
	}
	return true
}

// MayChange reports whether p, the plan of p.IP under a context that differs from c only in the
// state of the nodes named by changed (NodesChanged), may be different under c. It is false only
// when the change provably leaves p as it is:
//   - every Service of the IP is announced (an Unannounced reason may name any node's state) and
//     no BGPAdvertisement covers the IP's pool (the BGP announcers, and so the prefixes other
//     nodes advertise, may be any nodes);
//   - the IP has a layer-2 owner, which is not a changed node, and no changed node outranks it
//     for the IP: a node's eligibility depends on its own state only, so the owner stays
//     eligible, and a changed node that became eligible still loses the election to it.
//
// A change of this node always may change p. It costs a few hashes per changed node.
func (c *Context) MayChange(p IPPlan, changed map[string]bool) bool {
	if len(changed) == 0 {
		return false
	}
	if changed[c.selfName] || len(p.Unannounced) > 0 || p.L2Owner == "" || changed[p.L2Owner] {
		return true
	}
	if pool := c.poolOf(p.IP); pool == nil || slices.ContainsFunc(c.bgpads, func(a election.Advertisement) bool { return slices.Contains(a.Pools, pool.Name) }) {
		return true
	}
	for n := range changed {
		if election.Outranks(p.IP, n, p.L2Owner) {
			return true
		}
	}
	return false
}

func (c *Context) poolOf(ip netip.Addr) *config.Pool {
	for _, pool := range c.pools {
		if pool.Contains(ip) {
			return pool
		}
	}
	return nil
}

func sortIPPlan(p *IPPlan) {
	byService := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortStableFunc(p.L2, func(a, b L2Assignment) int { return byService(a.Service, b.Service) })
	slices.SortStableFunc(p.BGP, func(a, b BGPAssignment) int { return byService(a.Service, b.Service) })
	slices.SortStableFunc(p.Unannounced, func(a, b Unannounced) int { return byService(a.Service, b.Service) })
}

// Assemble puts the plans of single IPs (each IP once, in any order) together into the plan of
// this node.
func Assemble(c *Context, ips []IPPlan) Plan {
	p := Plan{L2Owned: map[netip.Addr][]string{}, L2Owners: map[netip.Addr]string{}, BGPElsewhere: map[netip.Prefix]bool{}}
	if c.cfg == nil {
		return p
	}
	p.Peers = c.peers
	sorted := slices.Clone(ips)
	slices.SortFunc(sorted, func(a, b IPPlan) int { return a.IP.Compare(b.IP) })
	var routes []PeerRoute
	for _, ip := range sorted {
		if ip.L2Owner != "" {
			p.L2Owners[ip.IP] = ip.L2Owner
		}
		if ip.L2Interfaces != nil {
			p.L2Owned[ip.IP] = ip.L2Interfaces
		}
		p.L2 = append(p.L2, ip.L2...)
		p.BGP = append(p.BGP, ip.BGP...)
		p.Unannounced = append(p.Unannounced, ip.Unannounced...)
		routes = append(routes, ip.Routes...)
		for _, prefix := range ip.Elsewhere {
			p.BGPElsewhere[prefix] = true
		}
	}
	p.Routes = RouteTables(routes)
	sortPlan(&p)
	return p
}

// Compute returns the plan for in.
func Compute(in Input) Plan {
	c := NewContext(in.Config, in.Self, in.Nodes)
	if in.Config == nil {
		return Assemble(c, nil)
	}
	// Shared IPs are elected once for all of their Services.
	byIP := map[netip.Addr][]Service{}
	for _, s := range in.Services {
		for _, ip := range s.IPs {
			byIP[ip] = append(byIP[ip], s)
		}
	}
	ips := make([]IPPlan, 0, len(byIP))
	for ip, svcs := range byIP {
		ips = append(ips, c.IP(ip, svcs))
	}
	return Assemble(c, ips)
}

// RouteTables merges the routes of several IPs (in any order: MergeRoute is commutative and
// associative) into the route table of every peer, one Route per prefix, sorted by prefix.
func RouteTables(routes []PeerRoute) map[string][]Route {
	byPeer := map[string]map[netip.Prefix]Route{}
	for _, pr := range routes {
		table := byPeer[pr.Peer]
		if table == nil {
			table = map[netip.Prefix]Route{}
			byPeer[pr.Peer] = table
		}
		if old, ok := table[pr.Route.Prefix]; ok {
			table[pr.Route.Prefix] = MergeRoute(old, pr.Route)
		} else {
			table[pr.Route.Prefix] = pr.Route
		}
	}
	return routeTables(byPeer)
}

func comparePrefixes(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// Equal reports whether p and q plan the same: reflect.DeepEqual without its allocations (the
// engine compares every IP's plans at each full computation), except that a nil and an empty
// list are equal.
func (p IPPlan) Equal(q IPPlan) bool {
	return p.IP == q.IP && p.L2Owner == q.L2Owner && slices.Equal(p.L2Interfaces, q.L2Interfaces) &&
		slices.EqualFunc(p.L2, q.L2, func(a, b L2Assignment) bool {
			return a.Service == b.Service && a.IP == b.IP && slices.Equal(a.Interfaces, b.Interfaces)
		}) &&
		slices.EqualFunc(p.BGP, q.BGP, func(a, b BGPAssignment) bool {
			return a.Service == b.Service && a.IP == b.IP && slices.Equal(a.Peers, b.Peers)
		}) &&
		p.SameRoutes(q) && slices.Equal(p.Unannounced, q.Unannounced)
}

// SameRoutes reports whether p and q have the same routes and prefixes elsewhere.
func (p IPPlan) SameRoutes(q IPPlan) bool {
	return slices.EqualFunc(p.Routes, q.Routes, func(a, b PeerRoute) bool {
		return a.Peer == b.Peer && a.Route.Prefix == b.Route.Prefix && slices.Equal(a.Route.Communities, b.Route.Communities) &&
			(a.Route.LocalPref == nil) == (b.Route.LocalPref == nil) && (a.Route.LocalPref == nil || *a.Route.LocalPref == *b.Route.LocalPref)
	}) && slices.Equal(p.Elsewhere, q.Elsewhere)
}
