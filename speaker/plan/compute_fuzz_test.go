package plan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/config/configtest"
	"github.com/herald-lb/herald/speaker/election"
)

// randomInput builds the nodes and Services of a plan from the fuzzer's choices, with IPs inside
// and outside cfg's pools.
func randomInput(s *configtest.Source, cfg *config.Config) Input {
	in := Input{Config: cfg}
	for i := range 1 + s.Intn(5) {
		n := election.Node{Name: fmt.Sprintf("n%d", i), Alive: s.Intn(4) != 0, Ready: s.Intn(4) != 0, NetworkUnavailable: s.Intn(8) == 0,
			Labels: map[string]string{"rack": s.Pick("r1", "r2"), "zone": s.Pick("a", "b")}}
		if s.Intn(8) == 0 {
			n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
		}
		for _, ifi := range []string{"eth0", "eth1", "bond0.100"} {
			if s.Bool() {
				n.Interfaces = append(n.Interfaces, ifi)
			}
		}
		in.Nodes = append(in.Nodes, n)
	}
	var candidates []netip.Addr
	if cfg != nil {
		for _, name := range cfg.PoolNames() {
			for _, r := range cfg.Pools[name].Ranges {
				candidates = append(candidates, r.First, r.Last, r.First.Next())
			}
		}
	}
	candidates = append(candidates, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8:ffff::7"))
	for i := range s.Intn(6) {
		svc := Service{Key: fmt.Sprintf("app/svc%d", i), Labels: map[string]string{"app": s.Pick("web", "db")}, LocalTraffic: s.Intn(3) == 0}
		for range 1 + s.Intn(2) {
			if ip := candidates[s.Intn(len(candidates))]; !slices.Contains(svc.IPs, ip) {
				svc.IPs = append(svc.IPs, ip)
			}
		}
		for _, n := range in.Nodes {
			if s.Bool() {
				svc.ReadyEndpointNodes = append(svc.ReadyEndpointNodes, n.Name)
			}
		}
		in.Services = append(in.Services, svc)
	}
	return in
}

var planCmp = gocmp.Options{
	gocmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	gocmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	gocmp.Comparer(func(a, b labels.Selector) bool { return a.String() == b.String() }),
}

// FuzzCompute computes the plans of every node for random configurations, nodes and Services.
// Compute must not panic and must be deterministic and independent of the order of nodes and
// Services; all nodes must agree on the layer-2 owner of each IP, at most one node owns an IP, the
// owner is an eligible node (alive, Ready, network available, not excluded), every owned or
// advertised IP is in a pool, and routes go only to this node's peers.
func FuzzCompute(f *testing.F) {
	for i := range 12 {
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte(i*41 + j*7)
		}
		f.Add(b, b[i:])
	}
	f.Fuzz(func(t *testing.T, cfgBytes, inBytes []byte) {
		cfg, err := config.Parse(configtest.RandomSnapshot(cfgBytes))
		if err != nil {
			cfg = nil // a speaker without a valid configuration announces nothing
		}
		in := randomInput(configtest.NewSource(inBytes), cfg)
		byNode := map[netip.Addr]string{}
		var owners map[netip.Addr]string
		elected := map[netip.Addr]string{}
		for _, e := range Elections(in) {
			if e.Layer2Owner != "" {
				elected[e.IP] = e.Layer2Owner
			}
		}
		for _, self := range in.Nodes {
			in.Self = self.Name
			p := Compute(in)

			shuffled := in
			shuffled.Nodes = slices.Clone(in.Nodes)
			slices.Reverse(shuffled.Nodes)
			shuffled.Services = slices.Clone(in.Services)
			slices.Reverse(shuffled.Services)
			if diff := gocmp.Diff(p, Compute(shuffled), planCmp); diff != "" {
				t.Fatalf("node %s: plan depends on the order of nodes and Services (-given +reversed):\n%s", self.Name, diff)
			}

			if diff := gocmp.Diff(elected, p.L2Owners, planCmp); diff != "" {
				t.Fatalf("node %s: Elections and Compute disagree on the layer-2 owners (-Elections +Compute):\n%s", self.Name, diff)
			}
			if owners == nil {
				owners = p.L2Owners
			} else if diff := gocmp.Diff(owners, p.L2Owners, planCmp); diff != "" {
				t.Fatalf("nodes disagree on the layer-2 owners (-first node +%s):\n%s", self.Name, diff)
			}
			for ip := range p.L2Owned {
				if other, dup := byNode[ip]; dup {
					t.Fatalf("%v is owned by %s and %s", ip, other, self.Name)
				}
				byNode[ip] = self.Name
				if p.L2Owners[ip] != self.Name {
					t.Fatalf("%s owns %v, whose owner is %q", self.Name, ip, p.L2Owners[ip])
				}
				if len(p.L2Owned[ip]) == 0 {
					t.Fatalf("%s owns %v on no interface", self.Name, ip)
				}
			}
			for ip, owner := range p.L2Owners {
				checkInPool(t, cfg, ip)
				i := slices.IndexFunc(in.Nodes, func(n election.Node) bool { return n.Name == owner })
				if i < 0 {
					t.Fatalf("owner %q of %v is not a node", owner, ip)
				}
				if n := in.Nodes[i]; !n.Alive || !n.Ready || n.NetworkUnavailable {
					t.Fatalf("owner %s of %v is not eligible: %+v", owner, ip, n)
				}
				if _, excluded := in.Nodes[i].Labels["node.kubernetes.io/exclude-from-external-load-balancers"]; excluded {
					t.Fatalf("owner %s of %v is excluded from load balancers", owner, ip)
				}
			}
			peers := map[string]bool{}
			for _, peer := range p.Peers {
				peers[peer.Name] = true
			}
			for name, table := range p.Routes {
				if !peers[name] {
					t.Fatalf("routes %v go to peer %q, which this node (%s) has no session with", table, name, self.Name)
				}
				if len(table) == 0 {
					t.Fatalf("peer %q has an empty route table; peers without routes have none", name)
				}
				for i, r := range table {
					checkInPool(t, cfg, r.Prefix.Addr())
					if prev := table[max(i-1, 0)].Prefix; i > 0 && cmp.Or(prev.Addr().Compare(r.Prefix.Addr()), prev.Bits()-r.Prefix.Bits()) >= 0 {
						t.Fatalf("route table of peer %q is not sorted by prefix or lists %v twice: %v", name, r.Prefix, table)
					}
					if !slices.IsSortedFunc(r.Communities, func(a, b config.Community) int { return strings.Compare(a.String(), b.String()) }) ||
						len(slices.Compact(slices.Clone(r.Communities))) != len(r.Communities) {
						t.Fatalf("communities of %v to peer %q are not sorted or repeat: %v", r.Prefix, name, r.Communities)
					}
				}
			}
			for _, a := range p.BGP {
				checkInPool(t, cfg, a.IP)
			}
			for _, u := range p.Unannounced {
				if _, owned := p.L2Owners[u.IP]; owned && (cfg == nil || poolOf(cfg, u.IP) == nil) {
					t.Fatalf("%v of %s is in no pool but has owner %s", u.IP, u.Service, p.L2Owners[u.IP])
				}
			}
		}
	})
}

// checkInPool fails unless ip (or, for an aggregate, its first address) is in a pool of cfg.
func checkInPool(t *testing.T, cfg *config.Config, ip netip.Addr) {
	t.Helper()
	if cfg == nil {
		t.Fatalf("%v announced without a configuration", ip)
	}
	for _, name := range cfg.PoolNames() {
		if cfg.Pools[name].Contains(ip) {
			return
		}
	}
	t.Fatalf("%v is announced but in no pool", ip)
}
