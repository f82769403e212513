package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Defaults applied by Parse.
const (
	DefaultPeerPort            = 179
	DefaultHoldTime            = 90 * time.Second
	DefaultConnectTime         = 10 * time.Second
	DefaultPasswordKey         = "password"
	DefaultBFDInterval         = 300 * time.Millisecond
	DefaultBFDDetectMultiplier = 3
	DefaultBFDMinimumTTL       = 254
	DefaultAggregationLength   = 32
	DefaultAggregationLengthV6 = 128
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
	return &BFDProfile{
		Name:             o.Name,
		ReceiveInterval:  interval("spec.receiveInterval", o.Spec.ReceiveInterval),
		TransmitInterval: interval("spec.transmitInterval", o.Spec.TransmitInterval),
		DetectMultiplier: bounded("spec.detectMultiplier", o.Spec.DetectMultiplier, DefaultBFDDetectMultiplier, 2, 255),
		EchoMode:         o.Spec.EchoMode,
		PassiveMode:      o.Spec.PassiveMode,
		MinimumTTL:       bounded("spec.minimumTtl", o.Spec.MinimumTTL, DefaultBFDMinimumTTL, 1, 254),
	}
}

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

// peerIndex holds the peers in force by address.
type peerIndex map[netip.Addr][]*Peer

func newPeerIndex() index[*Peer] { return peerIndex{} }

func (x peerIndex) add(v *Peer) { x[v.Address] = append(x[v.Address], v) }

func (x peerIndex) conflicts(v *Peer) []conflict { return peerConflicts(v, x[v.Address]) }

// peerConflicts reports a peer in force with the same address on the same nodes: a speaker holds
// one session per peer address.
func peerConflicts(v *Peer, inForce []*Peer) []conflict {
	const why = "a node opens one session per peer address; merge the peers or give them nodeSelectors that select different nodes"
	var out []conflict
	for _, o := range inForce {
		if !v.Address.IsValid() || v.Address != o.Address || !selectorsMayOverlap(v.NodeSelectors, o.NodeSelectors) {
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
		GracefulRestart: s.EnableGracefulRestart,
	}
	if s.MyASN == 0 {
		r.errorf("spec.myASN", "0", "an AS number must be between 1 and 4294967295, such as 64512")
	}
	if s.PeerASN == 0 {
		r.errorf("spec.peerASN", "0", "an AS number must be between 1 and 4294967295, such as 64512")
	}
	if peer.Port == 0 {
		peer.Port = DefaultPeerPort
	}
	if s.EBGPMultiHop && s.MyASN == s.PeerASN {
		r.errorf("spec.ebgpMultiHop", "true", "applies only to eBGP sessions, but myASN and peerASN are both %d (iBGP); remove ebgpMultiHop or correct the AS numbers", s.MyASN)
	}

	peer.Address = r.addr("spec.peerAddress", s.PeerAddress, true, "such as 198.51.100.1 or 2001:db8::1")
	if s.SourceAddress != "" {
		peer.SourceAddress = r.addr("spec.sourceAddress", s.SourceAddress, false, "such as 198.51.100.10 or 2001:db8::10")
		if peer.SourceAddress.IsValid() && peer.Address.IsValid() && peer.SourceAddress.Is4() != peer.Address.Is4() {
			r.errorf("spec.sourceAddress", s.SourceAddress, "is not of the same IP family as peerAddress %s; use an %s address of the node", s.PeerAddress, family(peer.Address))
		}
	}
	if s.RouterID != "" {
		peer.RouterID = r.addr("spec.routerID", s.RouterID, false, "such as 198.51.100.10")
		if peer.RouterID.IsValid() && !peer.RouterID.Is4() {
			r.errorf("spec.routerID", s.RouterID, "a BGP router ID must be an IPv4 address, such as 198.51.100.10 (also for IPv6 sessions)")
			peer.RouterID = netip.Addr{}
		}
	}

	peer.HoldTime, peer.KeepaliveTime, peer.ConnectTime = r.timers(s)
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
			r.errorf("spec.passwordSecret.name", ref.Name, "no Secret with this name in namespace %q; create it with the password under key %q, or remove passwordSecret", o.Namespace, key)
		default:
			if pw, ok := sec.Data[key]; ok {
				peer.Password = string(pw)
			} else if pw, ok := sec.StringData[key]; ok {
				peer.Password = pw
			} else {
				r.errorf("spec.passwordSecret.key", key, "Secret %s/%s has no such key (%s); put the password under this key or name the right one", o.Namespace, ref.Name, knownNames("key", secretKeys(sec.Data, sec.StringData)))
			}
		}
	}

	if s.BFDProfile != "" {
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

// timers validates and defaults the hold, keepalive and connect times of a peer.
func (r reporter) timers(s *v1beta1.BGPPeerSpec) (hold, keepalive, connect time.Duration) {
	hold = DefaultHoldTime
	if s.HoldTime != nil {
		hold = s.HoldTime.Duration
		switch {
		case hold != 0 && (hold < 3*time.Second || hold > 65535*time.Second):
			r.errorf("spec.holdTime", s.HoldTime.Duration.String(), "must be 0s (no keepalives) or between 3s and 65535s (default 90s)")
		case hold%time.Second != 0:
			r.errorf("spec.holdTime", s.HoldTime.Duration.String(), "must be a whole number of seconds (BGP carries it in seconds), such as 90s")
		}
	}
	keepalive = hold / 3
	if s.KeepaliveTime != nil {
		keepalive = s.KeepaliveTime.Duration
		switch {
		case keepalive < 0:
			r.errorf("spec.keepaliveTime", keepalive.String(), "must not be negative; use a duration such as 30s, at most holdTime %s", hold)
		case keepalive > hold:
			r.errorf("spec.keepaliveTime", keepalive.String(), "must not be longer than holdTime %s; use at most %s (one third of holdTime is usual)", hold, hold)
		}
	}
	connect = DefaultConnectTime
	if s.ConnectTime != nil {
		connect = s.ConnectTime.Duration
		if connect < time.Second || connect > 65535*time.Second {
			r.errorf("spec.connectTime", connect.String(), "must be between 1s and 65535s (default 10s)")
		}
	}
	return hold, keepalive, connect
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
