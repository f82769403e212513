package config

import (
	"math/big"
	"net/netip"
	"strings"
)

// ParseAddresses parses one entry of IPAddressPool.spec.addresses: a CIDR ("192.0.2.0/24",
// "2001:db8::/64") or an inclusive range of one family ("192.0.2.10-192.0.2.20"; spaces around
// the '-' are allowed). A CIDR must not have host bits set, a range's first address must not be
// after its last, and neither may be IPv4-mapped IPv6 or carry an IPv6 zone. The error is a
// *ParseError that matches ErrInvalid.
func ParseAddresses(s string) (Range, error) {
	r, _, err := parseEntry(s)
	return r, err
}

// parseEntry is ParseAddresses that also returns the prefix of a CIDR entry (the zero Prefix for
// a range), so that the pool knows which of its addresses are network and broadcast addresses.
func parseEntry(s string) (Range, netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "empty; " + addressHint(t)}
	}
	if strings.Contains(t, "%") {
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "has an IPv6 zone (the part after '%'); pool addresses cannot carry zones, remove it"}
	}
	if strings.Contains(t, "/") {
		return parseCIDR(s, t)
	}
	if first, last, ok := strings.Cut(t, "-"); ok {
		r, err := parseRange(s, strings.TrimSpace(first), strings.TrimSpace(last))
		return r, netip.Prefix{}, err
	}
	if a, err := netip.ParseAddr(t); err == nil {
		if a.Is4In6() {
			return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "is an IPv4-mapped IPv6 address; write it as the IPv4 CIDR " + netip.PrefixFrom(a.Unmap(), 32).String()}
		}
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "is a single address without a prefix length; write it as the CIDR " + netip.PrefixFrom(a, a.BitLen()).String()}
	}
	return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "not a valid CIDR or range; " + addressHint(t)}
}

// addressHint suggests valid forms in the family the text seems to be written in.
func addressHint(t string) string {
	if strings.Contains(t, ":") {
		return "use a CIDR such as 2001:db8::/64 or a range such as 2001:db8::10-2001:db8::20"
	}
	return "use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20"
}

func parseCIDR(s, t string) (Range, netip.Prefix, error) {
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: "not a valid CIDR or range; " + addressHint(t)}
	}
	if p.Addr().Is4In6() {
		reason := "is an IPv4-mapped IPv6 prefix; write it in IPv4 form"
		if p.Bits() >= 96 {
			reason += " as " + netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked().String()
		}
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: reason}
	}
	if m := p.Masked(); m != p {
		return Range{}, netip.Prefix{}, &ParseError{Input: s, Reason: p.String() + " has host bits set; did you mean " + m.String() + "?"}
	}
	return RangeFromPrefix(p), p, nil
}

func parseRange(s, first, last string) (Range, error) {
	f, err1 := netip.ParseAddr(first)
	l, err2 := netip.ParseAddr(last)
	if err1 != nil || err2 != nil {
		return Range{}, &ParseError{Input: s, Reason: "not a valid CIDR or range; " + addressHint(first+last)}
	}
	if f.Is4In6() || l.Is4In6() {
		return Range{}, &ParseError{Input: s, Reason: "is an IPv4-mapped IPv6 range; write it in IPv4 form as " + f.Unmap().String() + "-" + l.Unmap().String()}
	}
	if f.Is4() != l.Is4() {
		return Range{}, &ParseError{Input: s, Reason: "mixes IPv4 and IPv6; both ends of a range must be of one family, such as 192.0.2.10-192.0.2.20"}
	}
	if f.Compare(l) > 0 {
		return Range{}, &ParseError{Input: s, Reason: "first address " + f.String() + " is after last address " + l.String() + "; did you mean " + l.String() + "-" + f.String() + "?"}
	}
	return Range{First: f, Last: l}, nil
}

// RangeFromPrefix returns the range of every address of p (host bits of p are ignored).
func RangeFromPrefix(p netip.Prefix) Range {
	m := p.Masked()
	return Range{First: m.Addr(), Last: lastAddr(m)}
}

// NetworkAndBroadcast returns, in ascending order, the addresses of the CIDR p that a pool skips
// unless it sets allocateNetworkAndBroadcast: for IPv4 up to /30, the network address (host
// bits all zeros) and the broadcast address (all ones); for IPv6 up to /126, the first address,
// the subnet-router anycast address of RFC 4291 section 2.6.1 (IPv6 has no broadcast). These are
// the addresses Kubernetes leaves out of its Service ClusterIP ranges. It returns nil for IPv4
// /31 and /32 (RFC 3021: both addresses of a /31 are hosts) and IPv6 /127 and /128 (RFC 6164).
// Host bits of p are ignored.
func NetworkAndBroadcast(p netip.Prefix) []netip.Addr {
	if !p.IsValid() || p.Bits() >= p.Addr().BitLen()-1 {
		return nil
	}
	m := p.Masked()
	if m.Addr().Is6() {
		return []netip.Addr{m.Addr()}
	}
	return []netip.Addr{m.Addr(), lastAddr(m)}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	bs := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(bs)*8; i++ {
		bs[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(bs)
	return a
}

// IsValid reports whether r is a range of one family with First not after Last.
func (r Range) IsValid() bool {
	return r.First.IsValid() && r.Last.IsValid() && r.First.Is4() == r.Last.Is4() && r.First.Compare(r.Last) <= 0
}

// Is4 reports whether r is a range of IPv4 addresses.
func (r Range) Is4() bool { return r.First.Is4() }

// Is6 reports whether r is a range of IPv6 addresses.
func (r Range) Is6() bool { return r.First.Is6() }

// String returns the CIDR when r is exactly one prefix ("192.0.2.0/24", "192.0.2.7/32") and
// "first-last" otherwise. ParseAddresses of the result gives r back.
func (r Range) String() string {
	if !r.IsValid() {
		return "invalid Range"
	}
	if p, ok := r.prefix(); ok {
		return p.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// prefix returns the one prefix whose addresses are exactly r, if there is one.
func (r Range) prefix() (netip.Prefix, bool) {
	p := largestPrefixAt(r.First, r.Last)
	return p, lastAddr(p) == r.Last
}

// largestPrefixAt returns the shortest prefix that starts at a and ends at or before last.
func largestPrefixAt(a, last netip.Addr) netip.Prefix {
	for bits := 0; bits < a.BitLen(); bits++ {
		p := netip.PrefixFrom(a, bits)
		if p.Masked().Addr() == a && lastAddr(p).Compare(last) <= 0 {
			return p
		}
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// Prefixes returns the smallest set of CIDRs whose addresses are exactly those of r, in
// ascending order. It returns nil for an invalid range.
func (r Range) Prefixes() []netip.Prefix {
	if !r.IsValid() {
		return nil
	}
	var out []netip.Prefix
	for a := r.First; ; {
		p := largestPrefixAt(a, r.Last)
		out = append(out, p)
		end := lastAddr(p)
		if end == r.Last {
			return out
		}
		a = end.Next()
	}
}

// Contains reports whether ip is in r. Addresses with a zone are never contained, and an
// IPv4-mapped IPv6 address is not contained in an IPv4 range.
func (r Range) Contains(ip netip.Addr) bool {
	return ip.Zone() == "" && r.First.Compare(ip) <= 0 && ip.Compare(r.Last) <= 0
}

// Overlaps reports whether r and o have an address in common.
func (r Range) Overlaps(o Range) bool {
	_, ok := r.Intersect(o)
	return ok
}

// Intersect returns the addresses r and o have in common, and false when they have none.
func (r Range) Intersect(o Range) (Range, bool) {
	if !r.IsValid() || !o.IsValid() || r.Is4() != o.Is4() {
		return Range{}, false
	}
	first, last := r.First, r.Last
	if o.First.Compare(first) > 0 {
		first = o.First
	}
	if o.Last.Compare(last) < 0 {
		last = o.Last
	}
	if first.Compare(last) > 0 {
		return Range{}, false
	}
	return Range{First: first, Last: last}, true
}

// Size returns the number of addresses in r (zero for an invalid range). It is a big.Int
// because an IPv6 range can hold up to 2^128 addresses.
func (r Range) Size() *big.Int {
	if !r.IsValid() {
		return new(big.Int)
	}
	n := new(big.Int).SetBytes(r.Last.AsSlice())
	n.Sub(n, new(big.Int).SetBytes(r.First.AsSlice()))
	return n.Add(n, big.NewInt(1))
}

// compareRanges orders ranges by family (IPv4 first), then first address, then last address.
func compareRanges(a, b Range) int {
	if c := a.First.Compare(b.First); c != 0 {
		return c
	}
	return a.Last.Compare(b.Last)
}
