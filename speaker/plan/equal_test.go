package plan

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/herald-lb/herald/config"
)

// IPPlan.Equal tells apart every change reflect.DeepEqual tells apart, field by field and inside
// the lists, and takes a nil list for an empty one.
func TestIPPlanEqual(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	pref := uint32(100)
	base := func() IPPlan {
		lp := pref
		return IPPlan{IP: ip, L2Owner: "n1", L2Interfaces: []string{"eth0"},
			L2:  []L2Assignment{{Service: "app/a", IP: ip, Interfaces: []string{"eth0"}}},
			BGP: []BGPAssignment{{Service: "app/a", IP: ip, Peers: []string{"tor1", "tor2"}}},
			Routes: []PeerRoute{{Peer: "tor1", Route: Route{Prefix: netip.PrefixFrom(ip, 32),
				Communities: []config.Community{{Value: 65000<<16 | 1}}, LocalPref: &lp}}},
			Elsewhere:   []netip.Prefix{netip.PrefixFrom(ip, 32)},
			Unannounced: []Unannounced{{Service: "app/b", IP: ip, Reason: "no endpoints"}},
		}
	}
	changes := map[string]func(*IPPlan){
		"IP":                       func(p *IPPlan) { p.IP = netip.MustParseAddr("192.0.2.2") },
		"L2Owner":                  func(p *IPPlan) { p.L2Owner = "n2" },
		"L2Interfaces":             func(p *IPPlan) { p.L2Interfaces = append(p.L2Interfaces, "eth1") },
		"L2 Service":               func(p *IPPlan) { p.L2[0].Service = "app/c" },
		"L2 Interfaces":            func(p *IPPlan) { p.L2[0].Interfaces = []string{"eth1"} },
		"L2 removed":               func(p *IPPlan) { p.L2 = nil },
		"BGP Peers":                func(p *IPPlan) { p.BGP[0].Peers = p.BGP[0].Peers[:1] },
		"BGP IP":                   func(p *IPPlan) { p.BGP[0].IP = netip.MustParseAddr("192.0.2.9") },
		"Routes Peer":              func(p *IPPlan) { p.Routes[0].Peer = "tor2" },
		"Routes Prefix":            func(p *IPPlan) { p.Routes[0].Route.Prefix = netip.PrefixFrom(ip, 31).Masked() },
		"Routes Communities":       func(p *IPPlan) { p.Routes[0].Route.Communities[0].Large = true },
		"Routes LocalPref value":   func(p *IPPlan) { v := uint32(0); p.Routes[0].Route.LocalPref = &v },
		"Routes LocalPref removed": func(p *IPPlan) { p.Routes[0].Route.LocalPref = nil },
		"Elsewhere":                func(p *IPPlan) { p.Elsewhere = nil },
		"Unannounced Reason":       func(p *IPPlan) { p.Unannounced[0].Reason = "no node" },
	}
	for name, change := range changes {
		a, b := base(), base()
		change(&b)
		if reflect.DeepEqual(a, b) {
			t.Fatalf("%s: the change changes nothing", name)
		}
		if a.Equal(b) || b.Equal(a) {
			t.Errorf("%s: Equal misses the change", name)
		}
		routes := slices.Contains([]string{"Routes Peer", "Routes Prefix", "Routes Communities", "Routes LocalPref value", "Routes LocalPref removed", "Elsewhere"}, name)
		if a.SameRoutes(b) == routes {
			t.Errorf("%s: SameRoutes = %v", name, a.SameRoutes(b))
		}
	}
	if a, b := base(), base(); !a.Equal(b) || !a.SameRoutes(b) {
		t.Error("two equal plans (separate copies) are not Equal")
	}
	empty, nilLists := IPPlan{IP: ip, L2: []L2Assignment{}, Routes: []PeerRoute{}}, IPPlan{IP: ip}
	if !empty.Equal(nilLists) {
		t.Error("empty and nil lists are not Equal")
	}
}
