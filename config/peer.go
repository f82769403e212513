package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/netdev"
)

// Defaults applied by Parse.
const (
	DefaultPeerPort            = 179
	DefaultHoldTime            = 90 * time.Second
	DefaultConnectTime         = 10 * time.Second
	DefaultGracefulRestartTime = 120 * time.Second
	MaxGracefulRestartTime     = 4095 * time.Second
	// DefaultGracefulShutdownTime is how long a BGPPeer with gracefulShutdown advertises its
	// routes with the GRACEFUL_SHUTDOWN community before they are withdrawn, unless it says;
	// between MinGracefulShutdownTime and MaxGracefulShutdownTime.
	DefaultGracefulShutdownTime = 5 * time.Second
	MinGracefulShutdownTime     = time.Second
	MaxGracefulShutdownTime     = time.Minute
	DefaultPasswordKey          = "password"
	DefaultMaxPrefixes          = 1000
	DefaultBFDInterval          = 300 * time.Millisecond
	DefaultBFDDetectMultiplier  = 3
	DefaultAggregationLength    = 32
	DefaultAggregationLengthV6  = 128

	// DefaultBFDMinimumTTL is the least TTL multi-hop BFD accepts when the BFDProfile sets no
	// minimumTtl: FRR's default (one router between the peers at most).
	DefaultBFDMinimumTTL = 254
)

func (p *parser) parseBFDProfile(o *v1beta1.BFDProfile) *BFDProfile {
	r := p.reporter(KindBFDProfile, o)
	interval := func(field string, v *uint32) time.Duration {
		if v == nil {
			return DefaultBFDInterval
		}
		if *v < 10 || *v > 60000 {
			r.errorf(field, strconv.FormatUint(uint64(*v), 10), "must be between 10 and 60000 milliseconds (default 300)")
		}
		return time.Duration(*v) * time.Millisecond
	}
	bounded := func(field string, v *uint32, def, lo, hi uint32) uint32 {
		if v == nil {
			return def
		}
		if *v < lo || *v > hi {
			r.errorf(field, strconv.FormatUint(uint64(*v), 10), "must be between %d and %d (default %d)", lo, hi, def)
		}
		return *v
	}
	// What the speaker's BFD cannot do is refused here, never accepted and ignored.
	if o.Spec.EchoMode {
		r.errorf("spec.echoMode", "true", "%s; remove echoMode (or set it to false)", ErrBFDEcho)
	}
	return &BFDProfile{
		Name:             o.Name,
		ReceiveInterval:  interval("spec.receiveInterval", o.Spec.ReceiveInterval),
		TransmitInterval: interval("spec.transmitInterval", o.Spec.TransmitInterval),
		DetectMultiplier: bounded("spec.detectMultiplier", o.Spec.DetectMultiplier, DefaultBFDDetectMultiplier, 2, 255),
		PassiveMode:      o.Spec.PassiveMode,
		MinimumTTL:       bounded("spec.minimumTtl", o.Spec.MinimumTTL, DefaultBFDMinimumTTL, 1, 254),
	}
}

// Why BFDProfile and BGPPeer fields that Herald's BFD cannot honour are refused (the same texts
// are in the CRDs' CEL rules).
const (
	ErrBFDEcho = "the BFD echo function is not supported: Herald runs BFD in asynchronous mode only"
	ErrBFDVRF  = "BFD on a session in a VRF is not supported: Herald's BFD sockets live in the default VRF"
)

// parseBFDProfiles puts the usable BFD profiles in the Config: valid ones, and the last valid
// version of invalid ones.
func (p *parser) parseBFDProfiles(objs []*v1beta1.BFDProfile) {
	es := make([]entrant[*BFDProfile], 0, len(objs))
	for _, o := range objs {
		p.bfdNames = append(p.bfdNames, o.Name)
		e := entrant[*BFDProfile]{obj: o}
		e.curOK = p.clean(func() { e.cur = p.parseBFDProfile(o) })
		if p.last != nil {
			e.last, e.hasLast = p.last.BFDProfiles[o.Name], p.last.BFDProfiles[o.Name] != nil
		}
		es = append(es, e)
	}
	equal := func(a, b *BFDProfile) bool { return *a == *b }
	for _, v := range place(p, KindBFDProfile, es, equal, newNoIndex[*BFDProfile]) {
		p.cfg.BFDProfiles[v.Name] = v
	}
}

func (p *parser) parsePeers(objs []*v1beta1.BGPPeer) {
	es := make([]entrant[*Peer], 0, len(objs))
	for _, o := range objs {
		p.peerNames = append(p.peerNames, o.Name)
		e := entrant[*Peer]{obj: o}
		e.curOK = p.clean(func() { e.cur = p.parsePeer(o) })
		if p.last != nil {
			e.last, e.hasLast = p.last.Peers[o.Name], p.last.Peers[o.Name] != nil
		}
		es = append(es, e)
	}
	equal := func(a, b *Peer) bool { return reflect.DeepEqual(a, b) }
	for _, v := range place(p, KindBGPPeer, es, equal, newPeerIndex) {
		p.cfg.Peers[v.Name] = v
	}
}

// peerIndex holds the peers in force by address, or by interface for unnumbered ones.
type peerIndex map[peerKey][]*Peer

// peerKey is what a node opens one session per: a peer address, or an interface.
type peerKey struct {
	addr  netip.Addr
	iface string
}

func keyOf(v *Peer) peerKey { return peerKey{v.Address, v.Interface} }

func newPeerIndex() index[*Peer] { return peerIndex{} }

func (x peerIndex) add(v *Peer) { x[keyOf(v)] = append(x[keyOf(v)], v) }

// unnumbered validates the BGP unnumbered fields into peer: interface, and the fields that do
// not go with it.
func (r reporter) unnumbered(s *v1beta1.BGPPeerSpec, peer *Peer) {
	switch {
	case !netdev.ValidName(s.Interface):
		r.errorf("spec.interface", s.Interface, "is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as eth1 (the nodes' interface to the router)")
	case s.PeerAddress != "":
		r.errorf("spec.interface", s.Interface, "set either peerAddress (%s) or interface, not both: interface runs BGP unnumbered to the router's link-local address, learnt on the interface; remove one", s.PeerAddress)
	default:
		peer.Interface = s.Interface
	}
	if s.EBGPMultiHop {
		r.errorf("spec.ebgpMultiHop", "true", "does not apply to an unnumbered session (interface %s): it runs to the router's link-local address, one hop away; remove ebgpMultiHop", s.Interface)
	}
	if s.SourceAddress != "" {
		r.errorf("spec.sourceAddress", s.SourceAddress, "does not apply to an unnumbered session (interface %s): it runs from the interface's link-local address; remove sourceAddress", s.Interface)
	}
	if s.VRF != "" {
		r.errorf("spec.vrf", s.VRF, "an unnumbered session (interface %s) in a VRF is not supported; remove vrf, or use peerAddress", s.Interface)
	}
}

// peerASN validates the router's AS number, pinned (peerASN) or dynamic (dynamicASN), into peer:
// dynamicASN internal is peerASN = myASN; external leaves PeerASN 0 (any AS but myASN).
func (r reporter) peerASN(s *v1beta1.BGPPeerSpec, peer *Peer) {
	switch {
	case s.DynamicASN == "" && s.PeerASN == 0:
		r.errorf("spec.peerASN", "0", "is required (or dynamicASN): set the router's AS number, such as 64500, or dynamicASN internal (the router is in myASN) or external (any other AS)")
	case s.DynamicASN == "":
	case s.PeerASN != 0:
		r.errorf("spec.dynamicASN", string(s.DynamicASN), "set either peerASN (%d) or dynamicASN, not both; remove one", s.PeerASN)
	case s.DynamicASN == v1beta1.DynamicASNInternal:
		peer.DynamicASN, peer.PeerASN = s.DynamicASN, s.MyASN
	case s.DynamicASN == v1beta1.DynamicASNExternal:
		peer.DynamicASN = s.DynamicASN
	default:
		r.errorf("spec.dynamicASN", string(s.DynamicASN), "must be internal (the router is in myASN) or external (any AS number but myASN)")
	}
}

func (x peerIndex) conflicts(v *Peer) []conflict { return peerConflicts(v, x[keyOf(v)]) }

// peerConflicts reports a peer in force with the same address, or the same interface, on the same
// nodes: a speaker holds one session per peer address and one per unnumbered interface.
func peerConflicts(v *Peer, inForce []*Peer) []conflict {
	const why = "a node opens one session per peer address; merge the peers or give them nodeSelectors that select different nodes"
	var out []conflict
	for _, o := range inForce {
		if (!v.Address.IsValid() && v.Interface == "") || keyOf(v) != keyOf(o) || v.VRF != o.VRF || !selectorsMayOverlap(v.NodeSelectors, o.NodeSelectors) {
			continue
		}
		if v.Interface != "" {
			out = append(out, conflict{"spec.interface", v.Interface, fmt.Sprintf("BGPPeer %s has the same interface on the same nodes; a node opens one unnumbered session per interface; merge the peers or give them nodeSelectors that select different nodes", o.Name)})
			continue
		}
		out = append(out, conflict{"spec.peerAddress", v.Address.String(), fmt.Sprintf("BGPPeer %s has the same peer address on the same nodes; %s", o.Name, why)})
	}
	return out
}

func (p *parser) parsePeer(o *v1beta1.BGPPeer) *Peer {
	r := p.reporter(KindBGPPeer, o)
	s := &o.Spec
	peer := &Peer{
		Name:            o.Name,
		MyASN:           s.MyASN,
		PeerASN:         s.PeerASN,
		Port:            s.PeerPort,
		EBGPMultiHop:    s.EBGPMultiHop,
		GracefulRestart: s.EnableGracefulRestart == nil || *s.EnableGracefulRestart,
	}
	if o.Name == "" {
		r.errorf("metadata.name", "", "is required; name the BGPPeer, such as tor-1 (BGPAdvertisements and session status refer to peers by name)")
	}
	if s.MyASN == 0 {
		r.errorf("spec.myASN", "0", "an AS number must be between 1 and 4294967295, such as 64512")
	}
	r.peerASN(s, peer)
	if peer.Port == 0 {
		peer.Port = DefaultPeerPort
	}
	switch {
	case !s.EBGPMultiHop:
	case s.DynamicASN == v1beta1.DynamicASNInternal && s.PeerASN == 0:
		r.errorf("spec.ebgpMultiHop", "true", "applies only to eBGP sessions, but dynamicASN internal makes this iBGP (AS %d); remove ebgpMultiHop or use dynamicASN external", s.MyASN)
	case s.PeerASN != 0 && s.MyASN == s.PeerASN:
		r.errorf("spec.ebgpMultiHop", "true", "applies only to eBGP sessions, but myASN and peerASN are both %d (iBGP); remove ebgpMultiHop or correct the AS numbers", s.MyASN)
	}
	if s.VRF != "" {
		if netdev.ValidName(s.VRF) {
			peer.VRF = s.VRF
		} else {
			r.errorf("spec.vrf", s.VRF, "is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as red (the VRF device on the nodes)")
		}
	}

	switch {
	case s.Interface != "":
		r.unnumbered(s, peer)
	case s.PeerAddress == "":
		r.errorf("spec.peerAddress", "", "is required (or interface): set the router's address, such as 198.51.100.1 or 2001:db8::1, or interface for BGP unnumbered, such as eth1 (the nodes' interface to the router)")
	default:
		peer.Address = r.endpoint("spec.peerAddress", s.PeerAddress, true, "such as 198.51.100.1 or 2001:db8::1",
			"use the router's unicast address, such as 198.51.100.1 or 2001:db8::1")
	}
	if s.SourceAddress != "" && s.Interface == "" {
		peer.SourceAddress = r.endpoint("spec.sourceAddress", s.SourceAddress, false, "such as 198.51.100.10 or 2001:db8::10",
			"use a unicast address of the nodes, such as 198.51.100.10 or 2001:db8::10, or leave it empty")
		if peer.SourceAddress.IsValid() && peer.Address.IsValid() && peer.SourceAddress.Is4() != peer.Address.Is4() {
			r.errorf("spec.sourceAddress", s.SourceAddress, "is not of the same IP family as peerAddress %s; use an %s address of the node", s.PeerAddress, family(peer.Address))
		}
	}
	if s.RouterID != "" {
		peer.RouterID = r.addr("spec.routerID", s.RouterID, false, "such as 198.51.100.10")
		switch id := peer.RouterID; {
		case !id.IsValid():
		case !id.Is4():
			r.errorf("spec.routerID", s.RouterID, "a BGP router ID must be an IPv4 address, such as 198.51.100.10 (also for IPv6 sessions)")
			peer.RouterID = netip.Addr{}
		case !usableRouterID(id):
			r.errorf("spec.routerID", s.RouterID, "is not a usable BGP identifier: 0.0.0.0 is invalid (RFC 6286), and routers that follow RFC 4271 (a unicast host address) answer an identifier in 224.0.0.0/3 with a Bad BGP Identifier NOTIFICATION; use an address such as 198.51.100.10, or leave it empty for the node's own")
			peer.RouterID = netip.Addr{}
		}
	}

	peer.HoldTime, peer.KeepaliveTime, peer.ConnectTime = r.timers(s)
	peer.GracefulRestartTime = r.gracefulRestartTime(s, peer.GracefulRestart)
	peer.GracefulShutdown, peer.GracefulShutdownTime = r.gracefulShutdown(s)
	peer.MaxPrefixes = DefaultMaxPrefixes
	if s.MaxPrefixes != nil {
		if *s.MaxPrefixes == 0 {
			r.errorf("spec.maxPrefixes", "0", "must be between 1 and 4294967295 (default %d): it is the most prefixes accepted from the router per address family before the session is closed", DefaultMaxPrefixes)
		}
		peer.MaxPrefixes = *s.MaxPrefixes
	}
	peer.NodeSelectors = r.selectors("spec.nodeSelectors", s.NodeSelectors)

	if ref := s.PasswordSecret; ref != nil {
		key := ref.Key
		if key == "" {
			key = DefaultPasswordKey
		}
		switch sec, ok := p.secrets[o.Namespace+"/"+ref.Name]; {
		case ref.Name == "":
			r.errorf("spec.passwordSecret.name", "", "is required; name a Secret in namespace %q that holds the TCP MD5 password", o.Namespace)
		case !ok:
			r.errorf("spec.passwordSecret.name", ref.Name, "no Secret with this name in namespace %q; create it with the password under key %q and the label %s=%s (the speakers read only Secrets with it), or remove passwordSecret", o.Namespace, key, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue)
		default:
			pw, found := sec.Data[key]
			if !found {
				var spw string
				spw, found = sec.StringData[key]
				pw = []byte(spw)
			}
			switch where := fmt.Sprintf("key %q of Secret %s/%s", key, o.Namespace, ref.Name); {
			case !found:
				r.errorf("spec.passwordSecret.key", key, "Secret %s/%s has no such key (%s); put the password under this key or name the right one", o.Namespace, ref.Name, knownNames("key", secretKeys(sec.Data, sec.StringData)))
			case len(pw) == 0:
				r.errorf("spec.passwordSecret", ref.Name, "the password in %s is empty, which would run the session without TCP MD5; put the password there, or remove passwordSecret", where)
			case len(pw) > MaxPasswordLength:
				r.errorf("spec.passwordSecret", ref.Name, "the password in %s is %d bytes long; a TCP MD5 key holds at most %d bytes (Linux TCP_MD5SIG_MAXKEYLEN), so no session could open; use a shorter password here and on the router", where, len(pw), MaxPasswordLength)
			default:
				peer.Password = string(pw)
			}
		}
	}

	// BFD runs single hop (RFC 5881), or multi-hop (RFC 5883) with ebgpMultiHop.
	if s.BFDProfile != "" && s.Interface != "" {
		r.errorf("spec.bfdProfile", s.BFDProfile, "BFD on an unnumbered session (interface %s) is not supported; remove bfdProfile, or use peerAddress", s.Interface)
	} else if s.BFDProfile != "" && s.VRF != "" {
		r.errorf("spec.bfdProfile", s.BFDProfile, "%s; remove bfdProfile, or vrf", ErrBFDVRF)
	} else if s.BFDProfile != "" {
		if bfd, ok := p.cfg.BFDProfiles[s.BFDProfile]; ok {
			peer.BFDProfile = bfd
		} else if slices.Contains(p.bfdNames, s.BFDProfile) {
			r.errorf("spec.bfdProfile", s.BFDProfile, "BFDProfile %s is invalid (see its own errors) and has no earlier valid version; fix it or name another profile", s.BFDProfile)
		} else {
			r.errorf("spec.bfdProfile", s.BFDProfile, "no BFDProfile with this name (%s); create it or name an existing one", knownNames("BFDProfile", sortedKeys(p.cfg.BFDProfiles)))
		}
	}
	return peer
}

// endpoint parses an address field of a session's end (peerAddress, sourceAddress): a unicast
// address a TCP connection can use. example shows a good value, fix says what to write instead.
func (r reporter) endpoint(field, value string, required bool, example, fix string) netip.Addr {
	a := r.addr(field, value, required, example)
	if !a.IsValid() {
		return a
	}
	if why := unusableEndpoint(a); why != "" {
		r.errorf(field, value, "%s; %s", why, fix)
		return netip.Addr{}
	}
	return a
}

// unusableEndpoint says why a cannot be an end of a BGP session (the peer's address or the
// local address of the connection), or returns "" when it can. Link-local addresses are refused
// because they need an interface (a zone), which a BGPPeer cannot name.
func unusableEndpoint(a netip.Addr) string {
	a4 := a.As16()
	switch {
	case !a.IsValid():
		return "is not an IP address"
	case a.Is4In6():
		return "is an IPv4-mapped IPv6 address"
	case a.Zone() != "":
		return "has an IPv6 zone, which a BGPPeer cannot use"
	case a.IsUnspecified():
		return "is the unspecified address"
	case a.IsLoopback():
		return "is a loopback address, which never leaves the node"
	case a.IsMulticast():
		return "is a multicast address"
	case a.IsLinkLocalUnicast():
		return "is a link-local address, which needs an interface that a BGPPeer cannot name"
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "is the IPv4 broadcast address"
	case a.Is4() && a4[12] == 0:
		return "is in 0.0.0.0/8 (this host on this network), which cannot be connected to"
	case a.Is4() && a4[12] >= 240:
		return "is in the reserved range 240.0.0.0/4"
	}
	return ""
}

// usableRouterID reports whether id can be a speaker's BGP identifier: an IPv4 address other than
// 0.0.0.0 (RFC 6286) and outside 224.0.0.0/3 (multicast and reserved), which routers that follow
// RFC 4271's "valid unicast host address" refuse. FRR 8.4 accepts them; others may not.
func usableRouterID(id netip.Addr) bool {
	return id.Is4() && !id.IsUnspecified() && id.As4()[0] < 224
}

// addr parses an IP address field. An empty value is reported only when required.
func (r reporter) addr(field, value string, required bool, example string) netip.Addr {
	if value == "" {
		if required {
			r.errorf(field, "", "is required; use an IPv4 or IPv6 address %s", example)
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(value)
	switch {
	case err != nil:
		r.errorf(field, value, "not a valid IP address; use an address %s", example)
	case a.Zone() != "":
		r.errorf(field, value, "has an IPv6 zone; remove the part from '%%' on")
	case a.Is4In6():
		r.errorf(field, value, "is an IPv4-mapped IPv6 address; write it as %s", a.Unmap())
	default:
		return a
	}
	return netip.Addr{}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// Bounds of a peer's timers. BGP carries the hold time in seconds in a 16-bit field (RFC 4271),
// and the embedded GoBGP counts every timer in whole seconds.
const (
	MinHoldTime = 3 * time.Second
	MaxTimer    = 65535 * time.Second
)

// MaxPasswordLength is the longest TCP MD5 key the kernel accepts (Linux TCP_MD5SIG_MAXKEYLEN).
const MaxPasswordLength = 80

// timers validates and defaults the hold, keepalive and connect times of a peer. Every result
// is a whole number of seconds: the hold time from 3s to 65535s, the keepalive from 1s to the
// hold time (floor(hold/3) by default), the connect time from 1s to 65535s.
//
// A hold time of 0 ("no keepalives" in RFC 4271) is refused: the embedded GoBGP (v4, as v3 did)
// replaces a configured 0 with 90 s, so the session would not run with the hold time asked for.
func (r reporter) timers(s *v1beta1.BGPPeerSpec) (hold, keepalive, connect time.Duration) {
	hold = DefaultHoldTime
	if s.HoldTime != nil {
		hold = s.HoldTime.Duration
		switch {
		case hold == 0:
			r.errorf("spec.holdTime", "0s", "must be between 3s and 65535s (default 90s): a hold time of 0 (no keepalives) is not supported by the embedded GoBGP, which would run the session with 90s; use a hold time such as 90s, or remove holdTime")
		case hold < MinHoldTime || hold > MaxTimer:
			r.errorf("spec.holdTime", hold.String(), "must be between 3s and 65535s (default 90s)")
		case hold%time.Second != 0:
			r.errorf("spec.holdTime", hold.String(), "must be a whole number of seconds (BGP carries it in seconds), such as %s", hold.Truncate(time.Second))
		}
	}
	keepalive = (hold / 3).Truncate(time.Second)
	if s.KeepaliveTime != nil {
		keepalive = s.KeepaliveTime.Duration
		switch {
		case keepalive < time.Second:
			r.errorf("spec.keepaliveTime", keepalive.String(), "must be at least 1s; use a whole number of seconds up to holdTime %s, or remove keepaliveTime for one third of holdTime (%s)", hold, (hold / 3).Truncate(time.Second))
		case keepalive > hold:
			r.errorf("spec.keepaliveTime", keepalive.String(), "must not be longer than holdTime %s; use at most %s (one third of holdTime is usual)", hold, hold)
		case keepalive%time.Second != 0:
			r.errorf("spec.keepaliveTime", keepalive.String(), "must be a whole number of seconds (BGP timers count seconds), such as %s", keepalive.Truncate(time.Second))
		}
	}
	connect = DefaultConnectTime
	if s.ConnectTime != nil {
		connect = s.ConnectTime.Duration
		switch {
		case connect < time.Second || connect > MaxTimer:
			r.errorf("spec.connectTime", connect.String(), "must be between 1s and 65535s (default 10s)")
		case connect%time.Second != 0:
			r.errorf("spec.connectTime", connect.String(), "must be a whole number of seconds (the speaker counts it in seconds), such as %s", connect.Truncate(time.Second))
		}
	}
	return hold, keepalive, connect
}

// gracefulRestartTime validates and defaults the graceful restart time of a peer: a whole number
// of seconds from 1s to 4095s, zero when graceful restart is off.
func (r reporter) gracefulRestartTime(s *v1beta1.BGPPeerSpec, on bool) time.Duration {
	if s.GracefulRestartTime == nil {
		if !on {
			return 0
		}
		return DefaultGracefulRestartTime
	}
	d := s.GracefulRestartTime.Duration
	switch {
	case !on:
		r.errorf("spec.gracefulRestartTime", d.String(), "applies only with graceful restart, and enableGracefulRestart is false; remove gracefulRestartTime, or enableGracefulRestart")
		return 0
	case d < time.Second || d > MaxGracefulRestartTime:
		r.errorf("spec.gracefulRestartTime", d.String(), "must be between 1s and 4095s (RFC 4724 carries it in 12 bits of seconds); default 120s")
	case d%time.Second != 0:
		r.errorf("spec.gracefulRestartTime", d.String(), "must be a whole number of seconds (BGP carries it in seconds), such as %s", d.Truncate(time.Second))
	default:
		return d
	}
	return DefaultGracefulRestartTime
}

// gracefulShutdown validates and defaults the graceful shutdown settings of a peer: whether it is
// on, and for how long the routes carry the GRACEFUL_SHUTDOWN community (0 when off).
func (r reporter) gracefulShutdown(s *v1beta1.BGPPeerSpec) (bool, time.Duration) {
	if s.GracefulShutdownTime == nil {
		if !s.GracefulShutdown {
			return false, 0
		}
		return true, DefaultGracefulShutdownTime
	}
	d := s.GracefulShutdownTime.Duration
	switch {
	case !s.GracefulShutdown:
		r.errorf("spec.gracefulShutdownTime", d.String(), "applies only with gracefulShutdown: true; set gracefulShutdown: true, or remove gracefulShutdownTime")
		return false, 0
	case d < MinGracefulShutdownTime || d > MaxGracefulShutdownTime:
		r.errorf("spec.gracefulShutdownTime", d.String(), "must be between %s and %s (default %s): how long the routes carry the GRACEFUL_SHUTDOWN community before they are withdrawn",
			MinGracefulShutdownTime, MaxGracefulShutdownTime, DefaultGracefulShutdownTime)
		return true, DefaultGracefulShutdownTime
	}
	return true, d
}

// secretKeys returns the keys of a Secret's data, sorted.
func secretKeys(data map[string][]byte, stringData map[string]string) []string {
	seen := map[string]bool{}
	for k := range data {
		seen[k] = true
	}
	for k := range stringData {
		seen[k] = true
	}
	return sortedKeys(seen)
}
