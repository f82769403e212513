package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
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

// validatePeers checks what GoBGP would reject or silently misuse.
func validatePeers(peers []Peer, defaultRouterID netip.Addr) error {
	var errs []error
	names := map[string]bool{}
	for _, p := range peers {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: peer %q: %s", ErrInvalidPeer, p.Name, fmt.Sprintf(format, args...)))
		}
		switch {
		case p.Name == "":
			bad("empty name")
		case names[p.Name]:
			bad("duplicate name")
		}
		names[p.Name] = true
		if p.MyASN == 0 || p.PeerASN == 0 {
			bad("myASN %d and peerASN %d must not be 0", p.MyASN, p.PeerASN)
		}
		if !p.Address.IsValid() || p.Address.IsUnspecified() {
			bad("address %v is not a usable address", p.Address)
		}
		if p.SourceAddress.IsValid() && p.SourceAddress.Unmap().Is4() != p.Address.Unmap().Is4() {
			bad("source address %v is not of the family of address %v", p.SourceAddress, p.Address)
		}
		id := p.RouterID
		if !id.IsValid() {
			id = defaultRouterID
		}
		if !id.Unmap().Is4() {
			bad("router ID %v is not an IPv4 address (set Peer.RouterID or Config.RouterID)", id)
		}
		for _, t := range []struct {
			name string
			d    time.Duration
		}{{"holdTime", p.HoldTime}, {"keepaliveTime", p.KeepaliveTime}, {"connectTime", p.ConnectTime}} {
			if t.d < 0 || t.d%time.Second != 0 {
				bad("%s %v is not a whole, non-negative number of seconds", t.name, t.d)
			}
		}
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			bad("holdTime %v is below 3s (RFC 4271)", p.HoldTime)
		}
		if p.HoldTime != 0 && p.KeepaliveTime > p.HoldTime {
			bad("keepaliveTime %v is longer than holdTime %v", p.KeepaliveTime, p.HoldTime)
		}
	}
	return errors.Join(errs...)
}
