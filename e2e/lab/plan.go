package lab

import (
	"net/netip"
	"time"

	"github.com/herald-lb/herald/internal/testing/frr"
)

// Plan is what the runner adds to the topology file: the Kubernetes side of the lab and the
// router's BGP configuration. DefaultPlan matches e2e/topology.clab.yaml.
type Plan struct {
	// Segment is the layer-2 segment's link name on every node, router and segment client ("eth0").
	SegmentIface string
	// APIServerAddr is where processes inside the lab reach kube-apiserver (an address of the host
	// node's control leg, and a port).
	APIServerAddr netip.AddrPort
	// L2Pool and BGPPool are the address ranges of the two IPAddressPools the runner creates.
	L2Pool, BGPPool []string
	// Routed are the prefixes the BGP pool lives in: they must not overlap a host route either.
	Routed []netip.Prefix
	// RouterASN and NodeASN are the ASNs of rt and of every node.
	RouterASN, NodeASN uint32
	// Hold and Keepalive are the BGP timers of the lab's BGPPeers and of the router.
	Hold, Keepalive time.Duration
	// BackendPort is the port every backend's target port is called in EndpointSlices.
	BackendPort int32
}

// Names of the Herald objects the runner creates in HeraldNamespace.
const (
	HeraldNamespace = "herald-system"
	L2PoolName      = "l2"
	BGPPoolName     = "bgp"
	L2AdvName       = "l2"
	BGPAdvName      = "bgp"
	PeerV4Name      = "rt-v4"
	PeerV6Name      = "rt-v6"
	// MemberlistSecret is the Secret with the speakers' memberlist key (the binaries' default).
	MemberlistSecret = "herald-memberlist"
)

// DefaultPlan is the plan for e2e/topology.clab.yaml.
func DefaultPlan() Plan {
	return Plan{
		SegmentIface:  "eth0",
		APIServerAddr: netip.MustParseAddrPort("198.51.100.2:6443"),
		L2Pool:        []string{"198.51.100.100-198.51.100.119", "2001:db8:1::100-2001:db8:1::11f"},
		BGPPool:       []string{"198.51.100.192/28", "2001:db8:3::/120"},
		Routed:        []netip.Prefix{netip.MustParsePrefix("198.51.100.192/28"), netip.MustParsePrefix("2001:db8:3::/120")},
		RouterASN:     64500,
		NodeASN:       64512,
		Hold:          3 * time.Second,
		Keepalive:     time.Second,
		BackendPort:   8080,
	}
}

// RouterConfig is rt's bgpd configuration: every node of the segment may open a session
// (`bgp listen range`), eBGP without policies, up to 8 equal paths in the kernel.
func (p Plan) RouterConfig(routerID netip.Addr, segment []netip.Prefix) frr.Config {
	return frr.Config{
		Hostname: "rt",
		BFD:      true, // bfdd runs so BFD sessions can be tried by hand; Herald speaks no BFD yet
		ASN:      p.RouterASN,
		RouterID: routerID,
		Groups: []frr.PeerGroup{{
			Name:          "nodes",
			RemoteASN:     p.NodeASN,
			ListenRanges:  segment,
			KeepaliveTime: p.Keepalive,
			HoldTime:      p.Hold,
		}},
		MaximumPaths: 8,
	}
}
