package bgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// DefaultRestartTime is the graceful restart time of a Peer that sets none.
const DefaultRestartTime = 120 * time.Second

// MaxRestartTime is the longest restart time the capability can carry (12 bits of seconds).
const MaxRestartTime = 4095 * time.Second

// restartTime is p's graceful restart time, DefaultRestartTime when zero.
func (p Peer) restartTime() time.Duration {
	if p.RestartTime == 0 {
		return DefaultRestartTime
	}
	return p.RestartTime
}

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func (p Peer) ibgp() bool { return p.MyASN == p.PeerASN }

// defaultHoldTime is the hold time of a Peer that sets none (RFC 4271's suggestion, 90 s).
const defaultHoldTime = 90 * time.Second

// holdTime is p's hold time, defaultHoldTime when zero.
func (p Peer) holdTime() time.Duration {
	if p.HoldTime == 0 {
		return defaultHoldTime
	}
	return p.HoldTime
}

// keepaliveTime is p's keepalive interval; when zero, one third of the hold time rounded down to
// whole seconds. The adapter fills it in itself: GoBGP's own default is a fraction of a second
// off (hold/3 as a float) and it would count a sub-second keepalive as 0.
func (p Peer) keepaliveTime() time.Duration {
	if p.KeepaliveTime == 0 {
		return (p.holdTime() / 3).Truncate(time.Second)
	}
	return p.KeepaliveTime
}

func (p Peer) maxPrefixes() uint32 {
	if p.MaxPrefixes == 0 {
		return DefaultMaxPrefixes
	}
	return p.MaxPrefixes
}

func (p Peer) routerID(def netip.Addr) netip.Addr {
	if p.RouterID.IsValid() {
		return p.RouterID.Unmap()
	}
	return def.Unmap()
}

// neighborAddress is the address GoBGP knows the peer by.
func (p Peer) neighborAddress() string { return p.Address.Unmap().String() }

// toAPIGlobal is the GoBGP global configuration of a server: its AS and router ID, and its
// listening socket at l, none when l.port is 0 (the speaker connects).
func toAPIGlobal(k serverKey, l listen) *api.Global {
	g := &api.Global{Asn: k.asn, RouterId: k.routerID.String(), ListenPort: -1}
	if l.port != 0 {
		g.ListenPort = l.port
		for _, a := range l.addrs {
			g.ListenAddresses = append(g.ListenAddresses, a.String())
		}
	}
	return g
}

// toAPIPeer translates p into GoBGP's neighbor configuration: both unicast families enabled, each
// with the prefix limit, timers, transport, TCP MD5, multihop and graceful restart. restarting
// sets the Restart State bit and the Forwarding State bits of the graceful restart capability
// (RFC 4724): the router may still hold this node's routes of the previous speaker process, and
// keeps them, stale, until this session's End-of-RIB. GoBGP sends the routes and the End-of-RIB
// at once after the session is established (no deferral: the speaker imports nothing, so it has
// no route selection to defer).
func toAPIPeer(p Peer, restarting bool) *api.Peer {
	port := uint32(p.Port)
	if port == 0 {
		port = 179
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.neighborAddress(),
			PeerAsn:         p.PeerASN,
			LocalAsn:        p.MyASN,
			AuthPassword:    p.Password,
			Description:     p.Name,
		},
		Transport: &api.Transport{RemotePort: port},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           seconds(p.ConnectTime),
			HoldTime:               seconds(p.holdTime()),
			KeepaliveInterval:      seconds(p.keepaliveTime()),
			IdleHoldTimeAfterReset: seconds(p.ConnectTime),
		}},
	}
	if p.SourceAddress.IsValid() {
		ap.Transport.LocalAddress = p.SourceAddress.Unmap().String()
	}
	switch {
	case p.EBGPMultiHop && p.PeerASN == 0:
		// GoBGP sets no TTL on a neighbour of peer AS 0 (ebgp-multihop included); TTL security
		// without a minimum TTL sends with TTL 255 and checks nothing.
		ap.TtlSecurity = &api.TtlSecurity{Enabled: true}
	case p.EBGPMultiHop && !p.ibgp():
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if p.VRF != "" {
		ap.Transport.BindInterface = p.VRF
	}
	for _, f := range []*api.Family{familyIPv4, familyIPv6} {
		af := &api.AfiSafi{
			Config:       &api.AfiSafiConfig{Family: f, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: f, MaxPrefixes: p.maxPrefixes()},
		}
		if p.GracefulRestart {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		ap.AfiSafis = append(ap.AfiSafis, af)
	}
	if p.GracefulRestart {
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(seconds(p.restartTime())), LocalRestarting: restarting}
	}
	return ap
}

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

// ribPath is the path a server's RIB holds for prefix: origin IGP, the unspecified next hop of
// the prefix's family (GoBGP sends the session's local address, or the export policy sets the
// node's address, see serverPolicies) and LOCAL_PREF 0 (replaced by the export policy for iBGP
// peers, stripped for eBGP peers). Communities are set per peer by the export policy.
func ribPath(prefix netip.Prefix, withdraw bool) (*apiutil.Path, error) {
	nlri, err := gobgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("encoding prefix %v: %w", prefix, err)
	}
	pattrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP), gobgp.NewPathAttributeLocalPref(0)}
	family := gobgp.RF_IPv4_UC
	if prefix.Addr().Is4() {
		nh, err := gobgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("encoding the next hop of %v: %w", prefix, err)
		}
		pattrs = append(pattrs, nh)
	} else {
		family = gobgp.RF_IPv6_UC
		mp, err := gobgp.NewPathAttributeMpReachNLRI(family, []gobgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("encoding the next hop of %v: %w", prefix, err)
		}
		pattrs = append(pattrs, mp)
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: pattrs, Withdrawal: withdraw, Age: time.Now().Unix()}, nil
}

// nextHopFor returns the explicit next hop a route needs on a session to peer: zero when the
// route and the session are of the same family (GoBGP then uses the session's local address),
// otherwise the node's address of the route's family; zero on a BGP unnumbered session.
func nextHopFor(prefix netip.Prefix, peer Peer, nodeIPv4, nodeIPv6 netip.Addr) (netip.Addr, error) {
	if peer.Interface != "" {
		// BGP unnumbered: routes of both families take the session's link-local address
		// (IPv4 ones as an RFC 8950 IPv6 next hop), which GoBGP fills in.
		return netip.Addr{}, nil
	}
	route4, session4 := prefix.Addr().Is4(), peer.Address.Unmap().Is4()
	switch {
	case route4 == session4:
		return netip.Addr{}, nil
	case route4 && nodeIPv4.IsValid():
		return nodeIPv4.Unmap(), nil
	case !route4 && nodeIPv6.IsValid():
		return nodeIPv6, nil
	}
	return netip.Addr{}, fmt.Errorf("advertising %v over the session to %s (%v): %w", prefix, peer.Name, peer.Address, ErrNoNextHop)
}

func fromFSMState(s gobgp.FSMState) State {
	switch s {
	case gobgp.BGP_FSM_IDLE:
		return StateIdle
	case gobgp.BGP_FSM_CONNECT:
		return StateConnect
	case gobgp.BGP_FSM_ACTIVE:
		return StateActive
	case gobgp.BGP_FSM_OPENSENT:
		return StateOpenSent
	case gobgp.BGP_FSM_OPENCONFIRM:
		return StateOpenConfirm
	case gobgp.BGP_FSM_ESTABLISHED:
		return StateEstablished
	default:
		return StateUnknown
	}
}
