package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/internal/netdev"
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

// table is what one peer is sent: its prefixes with their attributes.
type table map[netip.Prefix]attrs

func (t table) equal(u table) bool {
	if len(t) != len(u) {
		return false
	}
	for p, a := range t {
		if b, ok := u[p]; !ok || !a.equal(b) {
			return false
		}
	}
	return true
}

// tablesFrom validates and normalises the route tables given to SetRoutes. The speaker only
// diffs and applies: a prefix listed twice in one peer's table is an error (the first is kept),
// as is an invalid prefix (skipped); both wrap ErrInvalidRoute.
func tablesFrom(routes Routes) (map[string]table, error) {
	out := make(map[string]table, len(routes))
	var errs []error
	for _, name := range sortedNames(routes) {
		t := table{}
		for _, r := range routes[name] {
			p, ok := normalisePrefix(r.Prefix)
			if !ok {
				errs = append(errs, fmt.Errorf("%w: peer %q: prefix %v is not valid", ErrInvalidRoute, name, r.Prefix))
				continue
			}
			if _, dup := t[p]; dup {
				errs = append(errs, fmt.Errorf("%w: peer %q: prefix %v is listed twice; the first is advertised", ErrInvalidRoute, name, p))
				continue
			}
			t[p] = attrs{communities: r.Communities, large: r.LargeCommunities, localPref: r.LocalPref}.normalise()
		}
		out[name] = t
	}
	return out, errors.Join(errs...)
}

// sendable returns the part of t that can go over the session to p: a route of the other family
// than the session's needs the node's address of the route's family as its next hop, and is left
// out (with an error wrapping ErrNoNextHop) when the node has none.
func sendable(t table, p Peer, nodeIPv4, nodeIPv6 netip.Addr) (table, error) {
	out := make(table, len(t))
	var errs []error
	for _, prefix := range sortedPrefixes(t) {
		if _, err := nextHopFor(prefix, p, nodeIPv4, nodeIPv6); err != nil {
			errs = append(errs, err)
			continue
		}
		out[prefix] = t[prefix]
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

// ribChange is how one GoBGP server goes from the tables its peers have to the tables they
// want. The server's RIB holds each prefix any of its peers is sent once, without attributes;
// its export policy gives each peer its own prefixes and attributes (see export.go).
type ribChange struct {
	// add are the prefixes entering the RIB: AddPath after the new export policy is in place
	// sends them to exactly the peers that want them.
	add []netip.Prefix
	// del are the prefixes leaving the RIB: DeletePath before the export policy changes
	// withdraws them from exactly the peers that had them.
	del []netip.Prefix
	// reset names the peers whose routes change on prefixes that stay in the RIB (a prefix
	// added to or removed from their table, or new attributes): the new export policy reaches
	// them by a soft reset out, which sends the changes and withdraws what the policy no longer
	// gives them.
	reset []string
}

func (c ribChange) empty() bool { return len(c.add) == 0 && len(c.del) == 0 && len(c.reset) == 0 }

// planRIB computes the ribChange from have to want, the tables of one server's peers by name;
// before holds the prefixes in the server's RIB.
func planRIB(before map[netip.Prefix]bool, have, want map[string]table) ribChange {
	after := ribOf(want)
	var c ribChange
	for p := range after {
		if !before[p] {
			c.add = append(c.add, p)
		}
	}
	for p := range before {
		if !after[p] {
			c.del = append(c.del, p)
		}
	}
	slices.SortFunc(c.add, comparePrefix)
	slices.SortFunc(c.del, comparePrefix)
	names := map[string]bool{}
	for n := range have {
		names[n] = true
	}
	for n := range want {
		names[n] = true
	}
	for _, n := range sortedNames(names) {
		h, w := have[n], want[n]
		changed := false
		for p, a := range w {
			if b, ok := h[p]; before[p] && (!ok || !a.equal(b)) {
				changed = true
				break
			}
		}
		for p := range h {
			if _, ok := w[p]; !ok && after[p] {
				changed = true
				break
			}
		}
		if changed {
			c.reset = append(c.reset, n)
		}
	}
	return c
}

func ribOf(tables map[string]table) map[netip.Prefix]bool {
	out := map[netip.Prefix]bool{}
	for _, t := range tables {
		for p := range t {
			out[p] = true
		}
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// peerDiff is how to go from one set of peers to another, by name.
type peerDiff struct {
	// start holds peers that are new; restart peers whose configuration changed (their session
	// is reset); update peers of which only what matters when the speaker stops changed (the
	// graceful shutdown time: their session goes on); stop names peers that are gone. Each is
	// sorted by name.
	start, restart, update []Peer
	stop                   []string
}

// sessionConfig is what of p the session runs with: everything but the graceful shutdown time,
// which only Shutdown reads.
func sessionConfig(p Peer) Peer {
	p.GracefulShutdown = 0
	return p
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
		case sessionConfig(old) != sessionConfig(p):
			d.restart = append(d.restart, p)
		case old != p:
			d.update = append(d.update, p)
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
	slices.SortFunc(d.update, byName)
	slices.Sort(d.stop)
	return d
}

// maxTimer is the longest hold, keepalive and connect time: BGP carries the hold time in 16 bits.
const maxTimer = 65535 * time.Second

// MaxGracefulShutdown is the longest Peer.GracefulShutdown: the speaker's Pod has to stop
// within its termination grace period.
const MaxGracefulShutdown = time.Minute

// communityGracefulShutdown is the well-known GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326),
// high<<16 | low.
const communityGracefulShutdown = 65535 << 16

// gracefulShutdownTable returns t with the GRACEFUL_SHUTDOWN community added to every route and,
// for an iBGP peer, LOCAL_PREF 0 (RFC 8326, section 4: the initiator may lower LOCAL_PREF itself
// where it sets it); t is not changed.
func gracefulShutdownTable(t table, ibgp bool) table {
	out := make(table, len(t))
	for p, a := range t {
		a.communities = append(slices.Clone(a.communities), communityGracefulShutdown)
		if ibgp {
			a.localPref = new(uint32)
		}
		out[p] = a.normalise()
	}
	return out
}

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
	if p.MyASN == 0 {
		bad("myASN 0 must not be 0")
	}
	if p.VRF != "" && !netdev.ValidName(p.VRF) {
		bad("VRF %q is not a Linux device name (1 to 15 letters, digits, '_', '.' and '-', starting with a letter or digit)", p.VRF)
	}
	if p.VRF != "" && p.BFD.Enabled {
		bad("BFD on a session in a VRF is not supported: the speaker's BFD sockets live in the default VRF")
	}
	addr := p.Address.Unmap()
	switch {
	case p.Interface != "":
		validateUnnumbered(p, bad)
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
	if p.RestartTime < 0 || p.RestartTime > MaxRestartTime || p.RestartTime%time.Second != 0 {
		bad("graceful restart time %v is not a whole number of seconds from 0 to 4095 (RFC 4724)", p.RestartTime)
	}
	if p.GracefulShutdown < 0 || p.GracefulShutdown > MaxGracefulShutdown {
		bad("graceful shutdown time %v is not from 0 to %v", p.GracefulShutdown, MaxGracefulShutdown)
	}
	if n := len(p.Password); n > maxPasswordLength {
		bad("TCP MD5 password of %d bytes is longer than %d bytes", n, maxPasswordLength)
	}
	if p.BFD.Enabled {
		if err := p.BFD.config().Validate(); err != nil {
			bad("BFD: %v", err)
		}
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
