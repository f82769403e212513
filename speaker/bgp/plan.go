package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// attrs are the path attributes Herald sets on one advertised prefix, normalised (sorted, no
// duplicates) so that equal sets compare equal.
type attrs struct {
	communities []uint32
	large       [][3]uint32
	localPref   *uint32
}

func (a attrs) equal(b attrs) bool {
	if (a.localPref == nil) != (b.localPref == nil) || (a.localPref != nil && *a.localPref != *b.localPref) {
		return false
	}
	return slices.Equal(a.communities, b.communities) && slices.Equal(a.large, b.large)
}

// merge adds b's communities to a's; the higher local preference wins.
func (a attrs) merge(b attrs) attrs {
	out := attrs{
		communities: append(slices.Clone(a.communities), b.communities...),
		large:       append(slices.Clone(a.large), b.large...),
		localPref:   a.localPref,
	}
	if b.localPref != nil && (out.localPref == nil || *b.localPref > *out.localPref) {
		out.localPref = b.localPref
	}
	return out.normalise()
}

func (a attrs) normalise() attrs {
	a.communities = slices.Clone(a.communities)
	slices.Sort(a.communities)
	a.communities = slices.Compact(a.communities)
	a.large = slices.Clone(a.large)
	slices.SortFunc(a.large, func(x, y [3]uint32) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]), cmp.Compare(x[2], y[2]))
	})
	a.large = slices.Compact(a.large)
	if len(a.communities) == 0 {
		a.communities = nil
	}
	if len(a.large) == 0 {
		a.large = nil
	}
	if a.localPref != nil {
		v := *a.localPref
		a.localPref = &v
	}
	return a
}

// ribs is what each peer (by name) should have advertised.
type ribs map[string]map[netip.Prefix]attrs

// desired computes what every peer in names should advertise from routes. Several routes for
// the same prefix and peer are merged: their communities are united and the highest local
// preference wins.
func desired(names []string, routes []Route) (ribs, error) {
	out := make(ribs, len(names))
	for _, n := range names {
		out[n] = map[netip.Prefix]attrs{}
	}
	var errs []error
	for _, r := range routes {
		p, ok := normalisePrefix(r.Prefix)
		if !ok {
			errs = append(errs, fmt.Errorf("%w: prefix %v is not valid", ErrInvalidRoute, r.Prefix))
			continue
		}
		a := attrs{communities: r.Communities, large: r.LargeCommunities, localPref: r.LocalPref}.normalise()
		targets := r.Peers
		if len(targets) == 0 {
			targets = names
		}
		for _, n := range targets {
			rib, ok := out[n]
			if !ok {
				continue
			}
			if old, ok := rib[p]; ok {
				rib[p] = old.merge(a)
			} else {
				rib[p] = a
			}
		}
	}
	return out, errors.Join(errs...)
}

// normalisePrefix masks p and turns an IPv4-mapped IPv6 prefix into the IPv4 prefix.
func normalisePrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() {
		if bits < 96 {
			return netip.Prefix{}, false
		}
		addr, bits = addr.Unmap(), bits-96
	}
	return netip.PrefixFrom(addr.WithZone(""), bits).Masked(), true
}

// routeDiff is what to change in one peer's Adj-RIB-Out.
type routeDiff struct {
	// add holds new prefixes and prefixes whose attributes changed.
	add map[netip.Prefix]attrs
	// del holds prefixes to withdraw.
	del []netip.Prefix
}

func (d routeDiff) empty() bool { return len(d.add) == 0 && len(d.del) == 0 }

// diffRoutes says how to go from have to want.
func diffRoutes(have, want map[netip.Prefix]attrs) routeDiff {
	d := routeDiff{add: map[netip.Prefix]attrs{}}
	for p, a := range want {
		if old, ok := have[p]; !ok || !old.equal(a) {
			d.add[p] = a
		}
	}
	for p := range have {
		if _, ok := want[p]; !ok {
			d.del = append(d.del, p)
		}
	}
	slices.SortFunc(d.del, comparePrefix)
	return d
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// peerDiff is how to go from one set of peers to another, by name.
type peerDiff struct {
	// start holds peers that are new; restart peers whose configuration changed (their session
	// is reset); stop names peers that are gone. Each is sorted by name.
	start, restart []Peer
	stop           []string
}

func diffPeers(have map[string]Peer, want []Peer) peerDiff {
	var d peerDiff
	seen := make(map[string]bool, len(want))
	for _, p := range want {
		seen[p.Name] = true
		old, ok := have[p.Name]
		switch {
		case !ok:
			d.start = append(d.start, p)
		case old != p:
			d.restart = append(d.restart, p)
		}
	}
	for n := range have {
		if !seen[n] {
			d.stop = append(d.stop, n)
		}
	}
	byName := func(a, b Peer) int { return cmp.Compare(a.Name, b.Name) }
	slices.SortFunc(d.start, byName)
	slices.SortFunc(d.restart, byName)
	slices.Sort(d.stop)
	return d
}

// maxTimer is the longest hold, keepalive and connect time: BGP carries the hold time in 16 bits.
const maxTimer = 65535 * time.Second

// maxPasswordLength is the longest TCP MD5 key the kernel accepts (TCP_MD5SIG_MAXKEYLEN).
const maxPasswordLength = 80

// ValidatePeer checks one Peer for what GoBGP would reject or silently misuse; defaultRouterID
// is Config.RouterID. SetPeers skips a Peer it refuses and runs the others. The Herald
// configuration (package config) refuses every such BGPPeer already, at the door; this is the
// adapter's own defence, and a test checks that the two never disagree.
func ValidatePeer(p Peer, defaultRouterID netip.Addr) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if p.Name == "" {
		bad("empty name")
	}
	if p.MyASN == 0 || p.PeerASN == 0 {
		bad("myASN %d and peerASN %d must not be 0", p.MyASN, p.PeerASN)
	}
	addr := p.Address.Unmap()
	switch {
	case !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast():
		bad("address %v is not a unicast address", p.Address)
	case addr.IsLinkLocalUnicast() && addr.Zone() == "":
		bad("address %v is link-local but names no interface (zone)", p.Address)
	}
	if p.SourceAddress.IsValid() && p.SourceAddress.Unmap().Is4() != addr.Is4() {
		bad("source address %v is not of the family of address %v", p.SourceAddress, p.Address)
	}
	id := p.RouterID
	if !id.IsValid() {
		id = defaultRouterID
	}
	if !usableRouterID(id.Unmap()) {
		bad("router ID %v is not an IPv4 address other than 0.0.0.0 and outside 224.0.0.0/3 (set Peer.RouterID or Config.RouterID)", id)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"holdTime", p.HoldTime}, {"keepaliveTime", p.KeepaliveTime}, {"connectTime", p.ConnectTime}} {
		if t.d < 0 || t.d > maxTimer || t.d%time.Second != 0 {
			bad("%s %v is not a whole number of seconds from 0 to 65535", t.name, t.d)
		}
	}
	if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
		bad("holdTime %v is below 3s (RFC 4271)", p.HoldTime)
	}
	if hold := p.holdTime(); p.KeepaliveTime > hold {
		bad("keepaliveTime %v is longer than holdTime %v", p.KeepaliveTime, hold)
	}
	if n := len(p.Password); n > maxPasswordLength {
		bad("TCP MD5 password of %d bytes is longer than %d bytes", n, maxPasswordLength)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: peer %q: %s", ErrInvalidPeer, p.Name, strings.Join(errs, "; "))
}

// usableRouterID reports whether id can be a BGP identifier: an IPv4 address other than 0.0.0.0
// (RFC 6286) and outside 224.0.0.0/3 (multicast and reserved), which routers that follow RFC 4271
// ("a valid unicast host address") refuse as Bad BGP Identifier.
func usableRouterID(id netip.Addr) bool {
	return id.Is4() && !id.IsUnspecified() && id.As4()[0] < 224
}
