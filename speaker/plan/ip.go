package plan

import (
	"fmt"
	"net/netip"
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
	bgpNodes  []election.LabelMatcher // node selectors of cfg.BGPAdvertisements, in order
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
	for _, a := range cfg.L2Advertisements {
		c.l2ads = append(c.l2ads, election.Advertisement{Name: a.Name, Pools: a.Pools, Nodes: Matcher(a.NodeSelectors), Services: Matcher(a.ServiceSelectors), Interfaces: a.Interfaces})
	}
	for _, a := range cfg.BGPAdvertisements {
		nodes := Matcher(a.NodeSelectors)
		c.bgpads = append(c.bgpads, election.Advertisement{Name: a.Name, Pools: a.Pools, Nodes: nodes, Services: Matcher(a.ServiceSelectors)})
		c.bgpNodes = append(c.bgpNodes, nodes)
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

// RouteShare is what one advertisement makes this node send for one IP to one peer, before the
// routes of IPs that aggregate into the same prefix are merged (FlattenRoutes).
type RouteShare struct {
	Prefix      netip.Prefix
	Peer        string
	Communities []config.Community
	LocalPref   *uint32
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
	// Routes are this node's route shares for IP, in advertisement then peer order.
	Routes []RouteShare
	// Unannounced lists the Services of IP that no node announces it for, by Service.
	Unannounced []Unannounced
}

// IP decides ip, held by svcs (every Service whose status lists ip; their order does not matter).
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
	if owner, ok := election.Layer2Owner(l2in); ok {
		p.L2Owner = owner
		markAnnounced(announced, svcs, c.l2ads, pool.Name)
		if owner == c.selfName {
			if ifaces := l2Interfaces(c.l2ads, pool.Name, svcs, c.self); len(ifaces) > 0 {
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
	if announcers := election.BGPAnnouncers(bgpin); len(announcers) > 0 {
		markAnnounced(announced, svcs, c.bgpads, pool.Name)
		if slices.Contains(announcers, c.selfName) {
			p.Routes = c.routeShares(ip, pool.Name, svcs)
			var peersOfIP []string
			for _, r := range p.Routes {
				peersOfIP = append(peersOfIP, r.Peer)
			}
			slices.Sort(peersOfIP)
			peersOfIP = slices.Compact(peersOfIP)
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

func (c *Context) poolOf(ip netip.Addr) *config.Pool {
	for _, pool := range c.pools {
		if pool.Contains(ip) {
			return pool
		}
	}
	return nil
}

// routeShares returns what every BGP advertisement that covers the pool, selects this node and one
// of the Services, makes this node send for ip to each of its peers.
func (c *Context) routeShares(ip netip.Addr, pool string, svcs []election.Service) []RouteShare {
	var out []RouteShare
	for i, a := range c.cfg.BGPAdvertisements {
		if !slices.Contains(a.Pools, pool) || !selects(c.bgpNodes[i], c.self.Labels) {
			continue
		}
		sm := c.bgpads[i].Services
		if !slices.ContainsFunc(svcs, func(s election.Service) bool { return selects(sm, s.Labels) }) {
			continue
		}
		bits := a.AggregationLength
		if ip.Is6() {
			bits = a.AggregationLengthV6
		}
		prefix, err := ip.Prefix(bits)
		if err != nil {
			continue // config.Parse bounds the lengths; unreachable with a validated config
		}
		for _, peer := range a.Peers {
			if c.selfPeers[peer] {
				out = append(out, RouteShare{Prefix: prefix, Peer: peer, Communities: a.Communities, LocalPref: a.LocalPref})
			}
		}
	}
	return out
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
	p := Plan{L2Owned: map[netip.Addr][]string{}, L2Owners: map[netip.Addr]string{}}
	if c.cfg == nil {
		return p
	}
	p.Peers = c.peers
	sorted := slices.Clone(ips)
	slices.SortFunc(sorted, func(a, b IPPlan) int { return a.IP.Compare(b.IP) })
	var shares []RouteShare
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
		shares = append(shares, ip.Routes...)
	}
	p.Routes = FlattenRoutes(shares)
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

type routeAttrs struct {
	communities map[config.Community]bool
	localPref   *uint32
}

// FlattenRoutes merges route shares (of IPs in ascending order, so that the first localPref of a
// prefix and peer is the same on every node) into one Route per prefix and distinct attribute set,
// listing the peers that get it, sorted by prefix.
func FlattenRoutes(shares []RouteShare) []Route {
	routes := map[netip.Prefix]map[string]*routeAttrs{}
	for _, s := range shares {
		byPeer := routes[s.Prefix]
		if byPeer == nil {
			byPeer = map[string]*routeAttrs{}
			routes[s.Prefix] = byPeer
		}
		attrs := byPeer[s.Peer]
		if attrs == nil {
			attrs = &routeAttrs{communities: map[config.Community]bool{}}
			byPeer[s.Peer] = attrs
		}
		for _, cm := range s.Communities {
			attrs.communities[cm] = true
		}
		if attrs.localPref == nil && s.LocalPref != nil {
			lp := *s.LocalPref
			attrs.localPref = &lp
		}
	}
	var out []Route
	for prefix, byPeer := range routes {
		groups := map[string]*Route{}
		for _, peer := range sortedKeys(byPeer) {
			attrs := byPeer[peer]
			comms := make([]config.Community, 0, len(attrs.communities))
			for cm := range attrs.communities {
				comms = append(comms, cm)
			}
			slices.SortFunc(comms, func(a, b config.Community) int { return strings.Compare(a.String(), b.String()) })
			key := fmt.Sprint(comms, attrs.localPref != nil)
			if attrs.localPref != nil {
				key += fmt.Sprint(*attrs.localPref)
			}
			r := groups[key]
			if r == nil {
				r = &Route{Prefix: prefix, Communities: comms, LocalPref: attrs.localPref}
				groups[key] = r
			}
			r.Peers = append(r.Peers, peer)
		}
		for _, k := range sortedKeys(groups) {
			out = append(out, *groups[k])
		}
	}
	slices.SortStableFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}
