// Package config turns a snapshot of Herald objects (pools, advertisements, peers, BFD profiles,
// community aliases, and the Secrets they reference) into one immutable, validated Config. It is
// the single translation used by the controller, the speaker and the validating webhook, so the
// same rules apply at the door and at run time.
//
// The package is pure: no client-go, no sockets, no globals. Every error names the kind, the
// namespace/name, the field, the bad value and what would be valid, and Parse reports all errors
// it finds, not only the first.
package config

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Snapshot is every Herald object of the Herald namespace at one moment, plus the Secrets that
// BGP peers reference.
type Snapshot struct {
	Pools             []v1beta1.IPAddressPool
	L2Advertisements  []v1beta1.L2Advertisement
	BGPAdvertisements []v1beta1.BGPAdvertisement
	Peers             []v1beta1.BGPPeer
	BFDProfiles       []v1beta1.BFDProfile
	Communities       []v1beta1.Community
	Secrets           []corev1.Secret
}

// Config is the validated configuration. It is never modified after Parse returns it.
type Config struct {
	// Pools by name.
	Pools map[string]*Pool
	// L2Advertisements sorted by name.
	L2Advertisements []*L2Advertisement
	// BGPAdvertisements sorted by name.
	BGPAdvertisements []*BGPAdvertisement
	// Peers by name.
	Peers map[string]*Peer
	// BFDProfiles by name.
	BFDProfiles map[string]*BFDProfile
}

// Range is an inclusive range of addresses of one family. A CIDR becomes the range of its
// first and last address.
type Range struct {
	First, Last netip.Addr
}

// Pool is a validated IPAddressPool.
type Pool struct {
	Name   string
	Labels map[string]string
	// Ranges of the pool, sorted, not overlapping each other.
	Ranges        []Range
	AutoAssign    bool
	AvoidBuggyIPs bool
	// AllocateNetworkAndBroadcast is spec.allocateNetworkAndBroadcast.
	AllocateNetworkAndBroadcast bool
	// Skip lists, sorted, the addresses of Ranges that are not handed out to a Service that does
	// not hold them already: NetworkAndBroadcast of every CIDR entry of spec.addresses, unless
	// AllocateNetworkAndBroadcast; nil when none. They still belong to the pool (Contains).
	Skip []netip.Addr
	// Allocation is nil when the pool has no serviceAllocation.
	Allocation *ServiceAllocation
}

// ServiceAllocation restricts a pool to some Services and gives it a priority.
type ServiceAllocation struct {
	Priority           int
	Namespaces         []string
	NamespaceSelectors []labels.Selector
	ServiceSelectors   []labels.Selector
}

// L2Advertisement is a validated L2Advertisement.
type L2Advertisement struct {
	Name string
	// Pools names every pool the advertisement covers (selectors and the empty "all pools" resolved), sorted.
	Pools []string
	// NodeSelectors: a node is selected when it matches any of them; every node when empty.
	NodeSelectors []labels.Selector
	// Interfaces to announce on; when empty, each node's default interfaces (those holding its
	// addresses and those of its default routes, see package layer2).
	Interfaces []string
	// ServiceSelectors: a Service is covered when it matches any of them; every Service when empty.
	ServiceSelectors []labels.Selector
}

// BGPAdvertisement is a validated BGPAdvertisement.
type BGPAdvertisement struct {
	Name string
	// Pools names every pool the advertisement covers, sorted.
	Pools               []string
	AggregationLength   int
	AggregationLengthV6 int
	// LocalPref is nil when unset; only sent to iBGP peers.
	LocalPref *uint32
	// Communities with aliases resolved.
	Communities []Community
	// Peers names the BGPPeers the routes go to, sorted; every peer when the spec named none.
	Peers            []string
	NodeSelectors    []labels.Selector
	ServiceSelectors []labels.Selector
}

// Community is a standard (RFC 1997) or large (RFC 8092) BGP community.
type Community struct {
	// Large is true for a large community, held in LargeValue; otherwise Value holds the
	// standard community as high<<16 | low.
	Large      bool
	Value      uint32
	LargeValue [3]uint32
}

// Peer is a validated BGPPeer.
type Peer struct {
	Name  string
	MyASN uint32
	// PeerASN is the router's AS number; myASN for dynamicASN internal, 0 for dynamicASN
	// external (any AS number but MyASN).
	PeerASN uint32
	// DynamicASN is empty when the BGPPeer pins peerASN.
	DynamicASN v1beta1.DynamicASN
	Address    netip.Addr // invalid (zero) for a peer with Interface
	// Interface is the nodes' interface to the router of a BGP unnumbered session (IPv6
	// link-local addresses, the router's learnt from its Router Advertisements); empty when the
	// peer has an Address.
	Interface     string
	Port          uint16
	SourceAddress netip.Addr // invalid (zero) when unset
	// HoldTime, KeepaliveTime and ConnectTime are whole numbers of seconds, defaults filled in.
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	ConnectTime   time.Duration
	RouterID      netip.Addr // invalid (zero) when unset: the node's own router ID
	NodeSelectors []labels.Selector
	// Password is the TCP MD5 password from the referenced Secret, empty when none.
	Password     string
	EBGPMultiHop bool
	// GracefulRestart is on unless the BGPPeer turns it off; GracefulRestartTime is its restart
	// time, whole seconds (DefaultGracefulRestartTime when the BGPPeer does not say).
	GracefulRestart     bool
	GracefulRestartTime time.Duration
	// GracefulShutdown sends the routes with the GRACEFUL_SHUTDOWN community (RFC 8326) for
	// GracefulShutdownTime (DefaultGracefulShutdownTime when the BGPPeer does not say) before
	// withdrawing them when the speaker stops for good; GracefulShutdownTime is 0 when it is off.
	GracefulShutdown     bool
	GracefulShutdownTime time.Duration
	// MaxPrefixes is the most prefixes accepted from the peer per address family before the
	// session is closed (DefaultMaxPrefixes when the BGPPeer does not say).
	MaxPrefixes uint32
	// BFDProfile is nil when the peer names none.
	BFDProfile *BFDProfile
	// VRF is the name of the nodes' VRF device the session runs in; the default VRF when empty.
	VRF string
}

// BFDProfile is a validated BFDProfile with defaults filled in. Its fields are all the speaker's
// BFD honours; Parse refuses a BFDProfile with echoMode.
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier uint32
	PassiveMode      bool
	// MinimumTTL is the least TTL a received packet of a multi-hop session (a peer with
	// ebgpMultiHop) may have, 1 to 254 (DefaultBFDMinimumTTL when the BFDProfile sets none).
	// Single-hop sessions accept only TTL 255, whatever this says (as FRR's bfdd).
	MinimumTTL uint32
}
