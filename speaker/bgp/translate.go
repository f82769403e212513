package bgp

import (
	"fmt"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// gracefulRestartTime is the restart time advertised with the graceful restart capability.
const gracefulRestartTime = 120

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func (p Peer) ibgp() bool { return p.MyASN == p.PeerASN }

// defaultHoldTime is the hold time of a Peer that sets none (GoBGP's and RFC 4271's 90 s).
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

// toAPIGlobal is the GoBGP global configuration of the server that carries peer p's session:
// the peer's AS and router ID, and no listening socket (the speaker always connects).
func toAPIGlobal(p Peer, defaultRouterID netip.Addr) *api.Global {
	return &api.Global{
		Asn:        p.MyASN,
		RouterId:   p.routerID(defaultRouterID).String(),
		ListenPort: -1,
	}
}

// toAPIPeer translates p into GoBGP's neighbor configuration: both unicast families enabled, each
// with the prefix limit, timers, transport, TCP MD5, multihop and graceful restart.
func toAPIPeer(p Peer) *api.Peer {
	port := uint32(p.Port)
	if port == 0 {
		port = 179
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.Unmap().String(),
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
	if p.EBGPMultiHop && !p.ibgp() {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
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
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime}
	}
	return ap
}

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

// toAPIPath builds the GoBGP path that advertises prefix with a to one peer. nextHop is the
// explicit next hop for a route of the other family than the session's; when it is zero the
// next hop is left unspecified and GoBGP uses the session's local address. localPref is only
// attached when ibgp is true.
func toAPIPath(prefix netip.Prefix, a attrs, nextHop netip.Addr, ibgp bool) (*api.Path, error) {
	addr := prefix.Addr()
	var nlri gobgp.AddrPrefixInterface
	pattrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if addr.Is4() {
		nh := "0.0.0.0"
		if nextHop.IsValid() {
			if !nextHop.Unmap().Is4() {
				return nil, fmt.Errorf("next hop %v for %v: %w", nextHop, prefix, ErrNoNextHop)
			}
			nh = nextHop.Unmap().String()
		}
		nlri = gobgp.NewIPAddrPrefix(uint8(prefix.Bits()), addr.String())
		pattrs = append(pattrs, gobgp.NewPathAttributeNextHop(nh))
	} else {
		nh := "::"
		if nextHop.IsValid() {
			if !nextHop.Is6() || nextHop.Is4In6() {
				return nil, fmt.Errorf("next hop %v for %v: %w", nextHop, prefix, ErrNoNextHop)
			}
			nh = nextHop.String()
		}
		nlri = gobgp.NewIPv6AddrPrefix(uint8(prefix.Bits()), addr.String())
		pattrs = append(pattrs, gobgp.NewPathAttributeMpReachNLRI(nh, []gobgp.AddrPrefixInterface{nlri}))
	}
	if len(a.communities) > 0 {
		pattrs = append(pattrs, gobgp.NewPathAttributeCommunities(a.communities))
	}
	if len(a.large) > 0 {
		var lcs []*gobgp.LargeCommunity
		for _, l := range a.large {
			lcs = append(lcs, gobgp.NewLargeCommunity(l[0], l[1], l[2]))
		}
		pattrs = append(pattrs, gobgp.NewPathAttributeLargeCommunities(lcs))
	}
	if ibgp && a.localPref != nil {
		pattrs = append(pattrs, gobgp.NewPathAttributeLocalPref(*a.localPref))
	}
	path, err := apiutil.NewPath(nlri, false, pattrs, time.Now())
	if err != nil {
		return nil, fmt.Errorf("encoding path for %v: %w", prefix, err)
	}
	return path, nil
}

// nextHopFor returns the explicit next hop a route needs on a session to peer: zero when the
// route and the session are of the same family (GoBGP then uses the session's local address),
// otherwise the node's address of the route's family.
func nextHopFor(prefix netip.Prefix, peer Peer, nodeIPv4, nodeIPv6 netip.Addr) (netip.Addr, error) {
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

func fromAPIState(s api.PeerState_SessionState) State {
	switch s {
	case api.PeerState_IDLE:
		return StateIdle
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	default:
		return StateUnknown
	}
}

// importPolicyName names the import policy of every session's server.
const importPolicyName = "herald-import-local-only"

// importPolicy accepts into the RIB only the paths the speaker adds itself (GoBGP runs local
// paths through the global import policy too) and rejects everything peers send: the speaker
// is not a router.
func importPolicy() *api.SetPoliciesRequest {
	return &api.SetPoliciesRequest{
		Policies: []*api.Policy{{
			Name: importPolicyName,
			Statements: []*api.Statement{{
				Name:       "accept-local",
				Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
				Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
			}},
		}},
		Assignments: []*api.PolicyAssignment{{
			Name:          "global",
			Direction:     api.PolicyDirection_IMPORT,
			Policies:      []*api.Policy{{Name: importPolicyName}},
			DefaultAction: api.RouteAction_REJECT,
		}},
	}
}
