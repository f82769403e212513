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

// Route is one prefix this node advertises to one peer, with its attributes.
type Route struct {
	Prefix netip.Prefix
	// Communities are sorted by their text and without duplicates.
	Communities []config.Community
	LocalPref   *uint32
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
	// Routes is the route table of every peer this node advertises to, by peer name: one Route
	// per prefix, sorted by prefix. Several advertisements of one prefix to one peer merge into
	// one Route by the rule of MergeRoute.
	Routes map[string][]Route
	// BGP lists this node's BGP assignments, by Service then IP.
	BGP []BGPAssignment
	// BGPElsewhere holds the prefixes other nodes advertise over BGP. When this node stops
	// advertising one of them, another node carries it on: the speaker withdraws it a moment
	// later rather than at once, so that the router has the new next hop before it loses the
	// old one (make-before-break).
	BGPElsewhere map[netip.Prefix]bool
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
	p := Plan{L2Owned: map[netip.Addr][]string{}, L2Owners: map[netip.Addr]string{}, BGPElsewhere: map[netip.Prefix]bool{}}
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

	l2ByName := make(map[string]*config.L2Advertisement, len(in.Config.L2Advertisements))
	for _, a := range in.Config.L2Advertisements {
		l2ByName[a.Name] = a
	}
	bgpByName := make(map[string]*config.BGPAdvertisement, len(in.Config.BGPAdvertisements))
	for _, a := range in.Config.BGPAdvertisements {
		bgpByName[a.Name] = a
	}
	routes := map[string]map[netip.Prefix]Route{}
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
		if owner, ok := election.Layer2Admission(l2in); ok {
			p.L2Owners[ip] = owner.Node
			markAnnounced(announced, svcs, l2ads, pool.Name)
			if owner.Node == in.Self {
				ifaces := l2Interfaces(l2ByName, owner.Advertisements, self)
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
		if announcers := election.Admit(election.BGP, bgpin); len(announcers) > 0 {
			markAnnounced(announced, svcs, bgpads, pool.Name)
			for _, a := range announcers {
				if a.Node != in.Self {
					addPrefixes(p.BGPElsewhere, bgpByName, a.Advertisements, ip)
				}
			}
			if i := slices.IndexFunc(announcers, func(a election.Admission) bool { return a.Node == in.Self }); i >= 0 {
				peersOfIP := addRoutes(routes, bgpByName, announcers[i].Advertisements, ip, selfPeers)
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
	p.Routes = routeTables(routes)
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

// l2Interfaces is the union, over the advertisements that admitted this node (see
// election.Admission), of the interfaces they allow: those they name among this node's
// Interfaces, or this node's DefaultInterfaces when they name none.
func l2Interfaces(ads map[string]*config.L2Advertisement, admitted []string, self election.Node) []string {
	set := map[string]bool{}
	for _, name := range admitted {
		a := ads[name]
		if a == nil {
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

// addRoutes adds to routes, the route tables by peer, the routes for ip from every BGP
// advertisement that admitted this node for it (see election.Admission), and returns the peers ip
// goes to.
func addRoutes(routes map[string]map[netip.Prefix]Route, ads map[string]*config.BGPAdvertisement, admitted []string, ip netip.Addr, selfPeers map[string]bool) []string {
	peersOfIP := map[string]bool{}
	for _, name := range admitted {
		a := ads[name]
		if a == nil {
			continue
		}
		prefix, err := advertisedPrefix(a, ip)
		if err != nil {
			continue // config.Parse bounds the lengths; unreachable with a validated config
		}
		r := Route{Prefix: prefix, Communities: a.Communities, LocalPref: a.LocalPref}
		for _, peer := range a.Peers {
			if !selfPeers[peer] {
				continue
			}
			peersOfIP[peer] = true
			table := routes[peer]
			if table == nil {
				table = map[netip.Prefix]Route{}
				routes[peer] = table
			}
			if old, ok := table[prefix]; ok {
				table[prefix] = MergeRoute(old, r)
			} else {
				table[prefix] = MergeRoute(r, Route{Prefix: prefix})
			}
		}
	}
	return sortedKeys(peersOfIP)
}

// addPrefixes adds to set the prefixes that the advertisements a node was admitted by advertise
// for ip.
func addPrefixes(set map[netip.Prefix]bool, ads map[string]*config.BGPAdvertisement, admitted []string, ip netip.Addr) {
	for _, name := range admitted {
		if a := ads[name]; a != nil {
			if prefix, err := advertisedPrefix(a, ip); err == nil {
				set[prefix] = true
			}
		}
	}
}

// advertisedPrefix is the prefix advertisement a advertises for ip: ip itself, or its aggregate.
func advertisedPrefix(a *config.BGPAdvertisement, ip netip.Addr) (netip.Prefix, error) {
	bits := a.AggregationLength
	if ip.Is6() {
		bits = a.AggregationLengthV6
	}
	return ip.Prefix(bits)
}

// MergeRoute is the one rule by which two advertisements of the same prefix to the same peer
// from this node become one route: the communities (standard and large) are united, and the
// highest localPref set by either wins (none when neither sets one). The rule is commutative and
// associative, so the result does not depend on the order of the advertisements. config.Parse
// refuses advertisements that could send one prefix to one peer with different localPrefs, so
// the localPref part only matters as a defence; MergeRoute never modifies its arguments.
func MergeRoute(a, b Route) Route {
	out := Route{Prefix: a.Prefix}
	seen := map[config.Community]bool{}
	for _, c := range slices.Concat(a.Communities, b.Communities) {
		if !seen[c] {
			seen[c] = true
			out.Communities = append(out.Communities, c)
		}
	}
	slices.SortFunc(out.Communities, func(x, y config.Community) int { return strings.Compare(x.String(), y.String()) })
	for _, lp := range []*uint32{a.LocalPref, b.LocalPref} {
		if lp != nil && (out.LocalPref == nil || *lp > *out.LocalPref) {
			v := *lp
			out.LocalPref = &v
		}
	}
	return out
}

// routeTables turns the routes by peer and prefix into sorted route tables.
func routeTables(routes map[string]map[netip.Prefix]Route) map[string][]Route {
	if len(routes) == 0 {
		return nil
	}
	out := make(map[string][]Route, len(routes))
	for peer, table := range routes {
		rs := make([]Route, 0, len(table))
		for _, r := range table {
			rs = append(rs, r)
		}
		slices.SortFunc(rs, func(a, b Route) int {
			return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
		})
		out[peer] = rs
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
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
