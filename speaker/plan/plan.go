// Package plan computes what one speaker announces: which load-balancer IPs it answers ARP/NDP for
// and on which interfaces, which BGP sessions it keeps and which routes it advertises on them, and
// which IPs no advertisement covers. It is pure: the speaker's wiring gathers the validated config,
// the Services with their IPs and endpoints, and the nodes with their memberlist liveness, and hands
// the plan to the layer-2 announcer and the BGP speaker.
//
// Every speaker computes the same plan for the same inputs, so the per-IP layer-2 owner chosen by
// package election is the same everywhere.
package plan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
)

// Service is one Service of type LoadBalancer with its assigned IPs.
type Service struct {
	// Key is namespace/name.
	Key    string
	Labels map[string]string
	// IPs are the addresses in the Service's status.
	IPs []netip.Addr
	// LocalTraffic is externalTrafficPolicy: Local.
	LocalTraffic bool
	// ReadyEndpointNodes names the nodes with a ready endpoint of the Service.
	ReadyEndpointNodes []string
	// NoEndpoints is true when no endpoint of the Service, on any node or none, is ready (or
	// serving while terminating): kube-proxy would drop the traffic, so the IP is not announced
	// for this Service, whatever its traffic policy (see Compute).
	NoEndpoints bool
}

// Input is everything a plan depends on.
type Input struct {
	Config *config.Config
	// Self is this speaker's node name.
	Self string
	// Nodes are all nodes, with Alive from memberlist and SpeakerReady and the interfaces from the
	// members' metadata (for Self, from the speaker's own state).
	Nodes    []election.Node
	Services []Service
}

// L2Assignment says that this node answers for IP of Service on Interfaces.
type L2Assignment struct {
	Service    string
	IP         netip.Addr
	Interfaces []string
}

// BGPAssignment says that this node advertises IP of Service to Peers.
type BGPAssignment struct {
	Service string
	IP      netip.Addr
	Peers   []string
}

// Route is one prefix this node advertises, with its attributes, to the named peers.
type Route struct {
	Prefix      netip.Prefix
	Communities []config.Community
	LocalPref   *uint32
	Peers       []string
}

// NoEndpointsReason is the Unannounced reason of a Service without any ready endpoint.
const NoEndpointsReason = "the Service has no ready endpoint, so traffic to it would be dropped; it is announced again as soon as one is ready"

// Unannounced is an IP of a Service that no advertisement announces, with the reason.
type Unannounced struct {
	Service string
	IP      netip.Addr
	Reason  string
}

// Plan is what this node announces.
type Plan struct {
	// L2Owned maps every IP this node answers ARP/NDP for to its interfaces.
	L2Owned map[netip.Addr][]string
	// L2Owners maps every IP announced over layer 2 to its owner, this node or another.
	L2Owners map[netip.Addr]string
	// L2 lists this node's layer-2 assignments, by Service then IP.
	L2 []L2Assignment
	// Peers are the BGP sessions this node keeps, by name.
	Peers []*config.Peer
	// Routes are the BGP routes this node advertises, by prefix.
	Routes []Route
	// BGP lists this node's BGP assignments, by Service then IP.
	BGP []BGPAssignment
	// Unannounced lists the IPs no advertisement covers, by Service then IP.
	Unannounced []Unannounced
}

// Matcher turns label selectors into an election.LabelMatcher that matches when any selector does;
// nil (everything) when there are none.
func Matcher(sels []labels.Selector) election.LabelMatcher {
	if len(sels) == 0 {
		return nil
	}
	return func(m map[string]string) bool {
		for _, s := range sels {
			if s.Matches(labels.Set(m)) {
				return true
			}
		}
		return false
	}
}

func selects(m election.LabelMatcher, l map[string]string) bool { return m == nil || m(l) }

// Compute returns the plan for in.
func Compute(in Input) Plan {
	p := Plan{L2Owned: map[netip.Addr][]string{}, L2Owners: map[netip.Addr]string{}}
	if in.Config == nil {
		return p
	}
	var self election.Node
	for _, n := range in.Nodes {
		if n.Name == in.Self {
			self = n
		}
	}

	l2ads, bgpads := advertisements(in.Config)

	// The sessions this node keeps: peers whose node selectors match it.
	selfPeers := map[string]bool{}
	for _, name := range sortedKeys(in.Config.Peers) {
		peer := in.Config.Peers[name]
		if selects(Matcher(peer.NodeSelectors), self.Labels) {
			p.Peers = append(p.Peers, peer)
			selfPeers[name] = true
		}
	}

	// Group the Services by IP (see groupByIP for the Services without endpoints).
	byIP, ips := groupByIP(in.Services, func(s Service, ip netip.Addr) {
		p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: NoEndpointsReason})
	})

	routes := map[netip.Prefix]map[string]*routeAttrs{}
	for _, ip := range ips {
		svcs := byIP[ip]
		pool := poolOf(in.Config, ip)
		if pool == nil {
			for _, s := range svcs {
				p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: fmt.Sprintf("%s is in no IPAddressPool", ip)})
			}
			continue
		}
		announced := map[string]bool{}

		l2in := election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: l2ads, Nodes: in.Nodes}
		if owner, ok := election.Layer2Owner(l2in); ok {
			p.L2Owners[ip] = owner
			markAnnounced(announced, svcs, l2ads, pool.Name)
			if owner == in.Self {
				ifaces := l2Interfaces(l2ads, pool.Name, svcs, self)
				if len(ifaces) > 0 {
					p.L2Owned[ip] = ifaces
					for _, s := range svcs {
						if covers(l2ads, pool.Name, s) {
							p.L2 = append(p.L2, L2Assignment{Service: s.Key, IP: ip, Interfaces: ifaces})
						}
					}
				}
			}
		}

		bgpin := election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: bgpads, Nodes: in.Nodes}
		if announcers := election.BGPAnnouncers(bgpin); len(announcers) > 0 {
			markAnnounced(announced, svcs, bgpads, pool.Name)
			if slices.Contains(announcers, in.Self) {
				peersOfIP := addRoutes(routes, in.Config, ip, pool.Name, svcs, self, selfPeers)
				if len(peersOfIP) > 0 {
					for _, s := range svcs {
						if covers(bgpads, pool.Name, s) {
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
			if covers(l2ads, pool.Name, s) || covers(bgpads, pool.Name, s) {
				reason = NoEligibleNodeReason(ip, pool.Name, election.Explain(election.Layer2, l2in), election.Explain(election.BGP, bgpin))
			}
			p.Unannounced = append(p.Unannounced, Unannounced{Service: s.Key, IP: ip, Reason: reason})
		}
	}
	p.Routes = flattenRoutes(routes)
	sortPlan(&p)
	return p
}

// NoEligibleNodeReason is the Unannounced reason of an IP that an advertisement covers but no
// node may announce: the per-node reasons of the elections (see election.Explanation.Summary)
// of the modes whose advertisements cover the IP's Services.
func NoEligibleNodeReason(ip netip.Addr, pool string, l2, bgp election.Explanation) string {
	var parts []string
	for _, e := range []struct {
		name string
		exp  election.Explanation
	}{{"layer 2", l2}, {"BGP", bgp}} {
		if len(e.exp.Announced) > 0 {
			parts = append(parts, e.name+": "+e.exp.Summary())
		}
	}
	return fmt.Sprintf("no node is eligible to announce %s of pool %q (%s)", ip, pool, strings.Join(parts, "; "))
}

// Election is how one IP is elected, in both modes, as Compute elects it.
type Election struct {
	IP netip.Addr
	// Pool is the IP's pool; empty when no pool holds the IP (it is then not announced).
	Pool string
	// Services holds the IP ("namespace/name", sorted); Services without any ready endpoint are
	// left out, as Compute leaves them out.
	Services []string
	// Layer2 and BGP explain the election of each mode, node by node.
	Layer2, BGP election.Explanation
	// Layer2Owner is the node that answers ARP/NDP for IP; empty when none.
	Layer2Owner string
}

// Elections returns the election of every IP that Compute elects, sorted by IP: the same
// inputs, the same rules, with every node's reasons. A client that knows only part of the
// inputs (not memberlist) uses it to say why an IP is not announced.
func Elections(in Input) []Election {
	if in.Config == nil {
		return nil
	}
	l2ads, bgpads := advertisements(in.Config)
	byIP, ips := groupByIP(in.Services, func(Service, netip.Addr) {})
	out := make([]Election, 0, len(ips))
	for _, ip := range ips {
		svcs := byIP[ip]
		e := Election{IP: ip}
		for _, s := range svcs {
			e.Services = append(e.Services, s.Key)
		}
		slices.Sort(e.Services)
		if pool := poolOf(in.Config, ip); pool != nil {
			e.Pool = pool.Name
			l2in := election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: l2ads, Nodes: in.Nodes}
			e.Layer2 = election.Explain(election.Layer2, l2in)
			e.Layer2Owner, _ = election.Owner(ip, e.Layer2.Eligible())
			e.BGP = election.Explain(election.BGP, election.Input{IP: ip, Pool: pool.Name, Services: svcs, Advertisements: bgpads, Nodes: in.Nodes})
		}
		out = append(out, e)
	}
	return out
}

// advertisements reduces the configuration's advertisements to what the election uses.
func advertisements(c *config.Config) (l2, bgp []election.Advertisement) {
	l2 = make([]election.Advertisement, 0, len(c.L2Advertisements))
	for _, a := range c.L2Advertisements {
		l2 = append(l2, election.Advertisement{Name: a.Name, Pools: a.Pools, Nodes: Matcher(a.NodeSelectors), Services: Matcher(a.ServiceSelectors), Interfaces: a.Interfaces})
	}
	bgp = make([]election.Advertisement, 0, len(c.BGPAdvertisements))
	for _, a := range c.BGPAdvertisements {
		bgp = append(bgp, election.Advertisement{Name: a.Name, Pools: a.Pools, Nodes: Matcher(a.NodeSelectors), Services: Matcher(a.ServiceSelectors)})
	}
	return l2, bgp
}

// groupByIP groups the Services by IP, sorted: shared IPs are elected once for all of their
// Services. A Service without any usable endpoint is not announced (as MetalLB does): traffic
// to it would be dropped by kube-proxy anyway, and withdrawing lets routers and clients fail
// over elsewhere (another cluster announcing the same IP, a DNS health check). It is left out,
// and noEndpoints is called for each of its IPs; it takes part again as soon as an endpoint is
// ready, from the same owner, since ownership does not depend on it.
func groupByIP(services []Service, noEndpoints func(Service, netip.Addr)) (map[netip.Addr][]election.Service, []netip.Addr) {
	byIP := map[netip.Addr][]election.Service{}
	for _, s := range services {
		for _, ip := range s.IPs {
			if s.NoEndpoints {
				noEndpoints(s, ip)
				continue
			}
			byIP[ip] = append(byIP[ip], election.Service{Key: s.Key, Labels: s.Labels, LocalTraffic: s.LocalTraffic, ReadyEndpointNodes: s.ReadyEndpointNodes})
		}
	}
	ips := make([]netip.Addr, 0, len(byIP))
	for ip := range byIP {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	return byIP, ips
}

func poolOf(c *config.Config, ip netip.Addr) *config.Pool {
	for _, name := range c.PoolNames() {
		if pool := c.Pools[name]; pool.Contains(ip) {
			return pool
		}
	}
	return nil
}

// covers reports whether some advertisement covers pool and selects the Service.
func covers(ads []election.Advertisement, pool string, s election.Service) bool {
	for _, a := range ads {
		if slices.Contains(a.Pools, pool) && selects(a.Services, s.Labels) {
			return true
		}
	}
	return false
}

func markAnnounced(announced map[string]bool, svcs []election.Service, ads []election.Advertisement, pool string) {
	for _, s := range svcs {
		if covers(ads, pool, s) {
			announced[s.Key] = true
		}
	}
}

// l2Interfaces is the union, over the advertisements that cover the pool, select this node and one
// of the Services, of the interfaces they allow: those they name among this node's Interfaces, or
// this node's DefaultInterfaces when they name none.
func l2Interfaces(ads []election.Advertisement, pool string, svcs []election.Service, self election.Node) []string {
	set := map[string]bool{}
	for _, a := range ads {
		if !slices.Contains(a.Pools, pool) || !selects(a.Nodes, self.Labels) {
			continue
		}
		if !slices.ContainsFunc(svcs, func(s election.Service) bool { return selects(a.Services, s.Labels) }) {
			continue
		}
		if len(a.Interfaces) == 0 {
			for _, ifi := range self.DefaultInterfaces {
				set[ifi] = true
			}
			continue
		}
		for _, ifi := range self.Interfaces {
			if slices.Contains(a.Interfaces, ifi) {
				set[ifi] = true
			}
		}
	}
	return sortedKeys(set)
}

type routeAttrs struct {
	communities map[config.Community]bool
	localPref   *uint32
}

// addRoutes adds the routes for ip from every BGP advertisement that covers its pool, selects this
// node and one of its Services, and returns the peers ip goes to.
func addRoutes(routes map[netip.Prefix]map[string]*routeAttrs, c *config.Config, ip netip.Addr, pool string, svcs []election.Service, self election.Node, selfPeers map[string]bool) []string {
	peersOfIP := map[string]bool{}
	for _, a := range c.BGPAdvertisements {
		if !slices.Contains(a.Pools, pool) || !selects(Matcher(a.NodeSelectors), self.Labels) {
			continue
		}
		sm := Matcher(a.ServiceSelectors)
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
		byPeer := routes[prefix]
		if byPeer == nil {
			byPeer = map[string]*routeAttrs{}
			routes[prefix] = byPeer
		}
		for _, peer := range a.Peers {
			if !selfPeers[peer] {
				continue
			}
			peersOfIP[peer] = true
			attrs := byPeer[peer]
			if attrs == nil {
				attrs = &routeAttrs{communities: map[config.Community]bool{}}
				byPeer[peer] = attrs
			}
			for _, cm := range a.Communities {
				attrs.communities[cm] = true
			}
			if attrs.localPref == nil && a.LocalPref != nil {
				lp := *a.LocalPref
				attrs.localPref = &lp
			}
		}
	}
	return sortedKeys(peersOfIP)
}

// flattenRoutes emits one Route per prefix and distinct attribute set, listing the peers that get it.
func flattenRoutes(routes map[netip.Prefix]map[string]*routeAttrs) []Route {
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
	return out
}

func sortPlan(p *Plan) {
	slices.SortFunc(p.L2, func(a, b L2Assignment) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), a.IP.Compare(b.IP))
	})
	slices.SortFunc(p.BGP, func(a, b BGPAssignment) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), a.IP.Compare(b.IP))
	})
	slices.SortFunc(p.Unannounced, func(a, b Unannounced) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), a.IP.Compare(b.IP))
	})
	slices.SortStableFunc(p.Routes, func(a, b Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
