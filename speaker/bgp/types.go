package bgp

import (
	"errors"
	"net/netip"
	"time"
)

// Peer is one BGP session the speaker keeps. Two Peers are the same session configuration when
// they are equal (==); SetPeers restarts a session only when its Peer changed.
type Peer struct {
	// Name identifies the peer (the BGPPeer's name); Routes refer to peers by it.
	Name string
	// MyASN is the speaker's AS on this session; PeerASN the peer's. Equal ASNs make the
	// session iBGP, different ones eBGP. PeerASN 0 accepts any AS but MyASN (BGPPeer
	// dynamicASN external): the session is eBGP, and one that comes up with a peer in MyASN is
	// closed at once and reported (see dynamic.go).
	MyASN, PeerASN uint32
	// Address of the peer, IPv4 or IPv6 (a link-local one with its interface as zone). Zero for a
	// peer with Interface, whose address is learnt.
	Address netip.Addr
	// Interface makes the session BGP unnumbered (RFC 8950): it runs over the IPv6 link-local
	// addresses of this interface, the peer's learnt from the Router Advertisements it sends on
	// it (the speaker sends its own there too, so that a router with an interface neighbour,
	// such as FRR's `neighbor eth1 interface`, learns the node's), and the session is restarted
	// with the new address when the router's changes. IPv4 routes are sent with the node's
	// link-local address as their IPv6 next hop (extended next hop capability, RFC 8950).
	// Exclusive with EBGPMultiHop, SourceAddress, VRF and BFD.
	Interface string
	// Port of the peer; 179 when 0.
	Port uint16
	// SourceAddress is the local address of the TCP connection; chosen by the kernel when zero.
	SourceAddress netip.Addr
	// RouterID of the speaker on this session; Config.RouterID when zero. Sessions with the same
	// MyASN and router ID share one GoBGP server.
	RouterID netip.Addr
	// HoldTime, KeepaliveTime and ConnectTime (connect retry, also the wait after a session
	// reset) in whole seconds. When zero: 90 s, one third of the hold time rounded down to whole
	// seconds, and GoBGP's 120 s. A hold time of 0 (no keepalives) cannot be asked for: the
	// adapter fills in 90 s.
	HoldTime, KeepaliveTime, ConnectTime time.Duration
	// EBGPMultiHop sends with TTL 255 so the peer may be more than one hop away.
	EBGPMultiHop bool
	// Password enables TCP MD5 (RFC 2385) with this password when not empty.
	Password string
	// GracefulRestart advertises the graceful restart capability (RFC 4724) for both families:
	// the peer keeps the speaker's routes for RestartTime when the session ends without a
	// NOTIFICATION (the speaker process died, or StopForRestart), until the next speaker's
	// End-of-RIB.
	GracefulRestart bool
	// RestartTime is the restart time advertised with graceful restart, whole seconds up to
	// 4095 s; DefaultRestartTime when 0.
	RestartTime time.Duration
	// MaxPrefixes is the most prefixes accepted from the peer per address family; more close
	// the session with a Cease NOTIFICATION (Maximum Number of Prefixes Reached), and it opens
	// again after Config.PrefixLimitRestart. DefaultMaxPrefixes when 0. The speaker imports
	// nothing, but GoBGP keeps every received path until its import policy rejects it, so the
	// limit bounds the memory a peer can make the speaker use.
	MaxPrefixes uint32
	// BFD runs BFD (RFC 5880) with the peer when BFD.Enabled, single hop (RFC 5881) or, with
	// EBGPMultiHop, multi-hop (RFC 5883): when BFD declares the path down, an Established BGP session is closed at once and reconnects as after
	// any reset.
	BFD BFD
	// GracefulShutdown, when not 0, makes Shutdown (a stop for good) first send the session's
	// routes again with the GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326), and LOCAL_PREF 0 on
	// an iBGP session, and keep them so for this long, so that the peer moves traffic to other
	// paths while this node still forwards; only then are they withdrawn and the session closed.
	// Up to MaxGracefulShutdown. 0: Shutdown withdraws at once. Peers removed by SetPeers, and
	// StopForRestart, do not use it.
	GracefulShutdown time.Duration
	// VRF is the Linux VRF device the session's TCP connection is bound to (SO_BINDTODEVICE);
	// the default VRF when empty. BFD does not run in a VRF.
	VRF string
}

// BFD is the BFD configuration of a session (a BFDProfile).
type BFD struct {
	Enabled bool
	// ReceiveInterval is the shortest interval between packets the speaker accepts to receive,
	// TransmitInterval the interval at which it wants to send once the session is Up (at most one
	// packet a second until then), both whole milliseconds from 10 ms to 60 s.
	ReceiveInterval, TransmitInterval time.Duration
	// DetectMultiplier is how many of the peer's intervals may pass without a packet before
	// the path counts as down (2 to 255).
	DetectMultiplier uint8
	// Passive sends nothing until the peer has sent a packet.
	Passive bool
	// MinimumTTL is the least TTL (hop limit) a received packet of a multi-hop session may
	// have; bfd.DefaultMinimumTTL (254) when 0. Single-hop sessions accept TTL 255 only.
	MinimumTTL uint8
}

// DefaultMaxPrefixes is the prefix limit of a Peer that sets none.
const DefaultMaxPrefixes = 1000

// Route is a prefix to advertise to one peer and the attributes to send with it.
type Route struct {
	// Prefix to advertise: a service IP as /32 or /128, or an aggregate of it.
	Prefix netip.Prefix
	// Communities are standard communities (RFC 1997), each high<<16 | low.
	Communities []uint32
	// LargeCommunities are RFC 8092 communities (global administrator, local 1, local 2).
	LargeCommunities [][3]uint32
	// LocalPref is sent to iBGP peers only; nil sends the default, 100, to them.
	LocalPref *uint32
}

// Routes are the route tables of the peers, by peer name: each peer is sent exactly the routes
// of its table, with their attributes. A table holds each prefix once (the caller merges several
// advertisements of a prefix; package plan does). Tables of peers that are not configured are
// kept, so routes may be set before their peers.
type Routes map[string][]Route

// State is the state of a BGP session (RFC 4271, section 8.2.2).
type State int

// Session states.
const (
	StateUnknown State = iota
	StateIdle
	StateConnect
	StateActive
	StateOpenSent
	StateOpenConfirm
	StateEstablished
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "Idle"
	case StateConnect:
		return "Connect"
	case StateActive:
		return "Active"
	case StateOpenSent:
		return "OpenSent"
	case StateOpenConfirm:
		return "OpenConfirm"
	case StateEstablished:
		return "Established"
	default:
		return "Unknown"
	}
}

// MarshalText makes a State read as its name in JSON and logs.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a State's name.
func (s *State) UnmarshalText(b []byte) error {
	for c := StateUnknown; c <= StateEstablished; c++ {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	*s = StateUnknown
	return nil
}

// PeerStatus is what the speaker knows about one session.
type PeerStatus struct {
	Name    string
	Address netip.Addr
	State   State
	// EstablishedSince is when the session came up; zero when it is not Established.
	EstablishedSince time.Time
	// LastError says why the session is not (or was not) up, e.g. that the TCP connection timed
	// out or which NOTIFICATION was exchanged. It is cleared when the session is established. It
	// comes from GoBGP's peer events and, while the session cannot connect, from the speaker's
	// own connection check (see diagnose.go).
	LastError string
	// PrefixesAdvertised is the number of prefixes in the session's Adj-RIB-Out.
	PrefixesAdvertised int
	// UpdatesSent counts UPDATE messages sent on the session.
	UpdatesSent uint64
	// ConfigError is set when the speaker cannot use the peer's latest configuration and says
	// why. The peer then has no session (State is StateUnknown), or, when an earlier
	// configuration of it was in use, that session goes on unchanged. Other peers are never
	// affected.
	ConfigError string
	// BFD is the state of the session's BFD: Down, Init, Up or AdminDown; empty when the peer
	// runs no BFD.
	BFD string
	// BFDError says why BFD does not run (its socket could not be opened); the BGP session
	// runs without it.
	BFDError string
}

var (
	// ErrInvalidPeer is wrapped by SetPeers errors about a Peer that cannot be used.
	ErrInvalidPeer = errors.New("invalid BGP peer")
	// ErrInvalidRoute is wrapped by SetRoutes errors about a Route that cannot be used.
	ErrInvalidRoute = errors.New("invalid BGP route")
	// ErrNoNextHop is wrapped when a route of one family must go over a session of the other
	// family and the speaker has no address of the route's family (Config.NodeIPv4/NodeIPv6).
	ErrNoNextHop = errors.New("no next hop of the route's family")
	// ErrShutdown is returned by calls made after Shutdown.
	ErrShutdown = errors.New("BGP speaker shut down")
)
