package config

import (
	"math/big"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
)

// cmpOpts lets cmp compare the config types, whose netip and labels fields have unexported state.
func cmpOpts() cmp.Options {
	return cmp.Options{
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b labels.Selector) bool { return a.String() == b.String() }),
	}
}

func rng(first, last string) Range {
	return Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Range
		wantErr string
	}{
		{name: "IPv4 CIDR", in: "192.0.2.0/24", want: rng("192.0.2.0", "192.0.2.255")},
		{name: "IPv4 single /32", in: "192.0.2.7/32", want: rng("192.0.2.7", "192.0.2.7")},
		{name: "IPv4 /0", in: "0.0.0.0/0", want: rng("0.0.0.0", "255.255.255.255")},
		{name: "IPv6 CIDR", in: "2001:db8::/64", want: rng("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff")},
		{name: "IPv6 /128", in: "2001:db8::1/128", want: rng("2001:db8::1", "2001:db8::1")},
		{name: "surrounding spaces", in: "  192.0.2.0/30 ", want: rng("192.0.2.0", "192.0.2.3")},
		{name: "IPv4 range", in: "192.0.2.10-192.0.2.20", want: rng("192.0.2.10", "192.0.2.20")},
		{name: "range with spaces", in: "192.0.2.10 - 192.0.2.20", want: rng("192.0.2.10", "192.0.2.20")},
		{name: "range of one address", in: "192.0.2.10-192.0.2.10", want: rng("192.0.2.10", "192.0.2.10")},
		{name: "IPv6 range", in: "2001:db8::10-2001:db8::20", want: rng("2001:db8::10", "2001:db8::20")},
		{
			name:    "host bits set",
			in:      "192.0.2.5/24",
			wantErr: `"192.0.2.5/24": 192.0.2.5/24 has host bits set; did you mean 192.0.2.0/24?`,
		},
		{
			name:    "IPv6 host bits set",
			in:      "2001:db8::1/64",
			wantErr: `"2001:db8::1/64": 2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?`,
		},
		{
			name:    "bad octet",
			in:      "192.0.2.300/24",
			wantErr: `"192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
		{
			name:    "bad IPv6 gets an IPv6 hint",
			in:      "2001:db8::g/64",
			wantErr: `"2001:db8::g/64": not a valid CIDR or range; use a CIDR such as 2001:db8::/64 or a range such as 2001:db8::10-2001:db8::20`,
		},
		{
			name:    "prefix length too long",
			in:      "192.0.2.0/33",
			wantErr: `"192.0.2.0/33": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
		{
			name:    "empty",
			in:      " ",
			wantErr: `" ": empty; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
		{
			name:    "single address",
			in:      "192.0.2.7",
			wantErr: `"192.0.2.7": is a single address without a prefix length; write it as the CIDR 192.0.2.7/32`,
		},
		{
			name:    "first after last",
			in:      "192.0.2.20-192.0.2.10",
			wantErr: `"192.0.2.20-192.0.2.10": first address 192.0.2.20 is after last address 192.0.2.10; did you mean 192.0.2.10-192.0.2.20?`,
		},
		{
			name:    "mixed families",
			in:      "192.0.2.10-2001:db8::1",
			wantErr: `"192.0.2.10-2001:db8::1": mixes IPv4 and IPv6; both ends of a range must be of one family, such as 192.0.2.10-192.0.2.20`,
		},
		{
			name:    "IPv4-mapped CIDR",
			in:      "::ffff:192.0.2.0/120",
			wantErr: `"::ffff:192.0.2.0/120": is an IPv4-mapped IPv6 prefix; write it in IPv4 form as 192.0.2.0/24`,
		},
		{
			name:    "IPv4-mapped range",
			in:      "::ffff:192.0.2.1-::ffff:192.0.2.9",
			wantErr: `"::ffff:192.0.2.1-::ffff:192.0.2.9": is an IPv4-mapped IPv6 range; write it in IPv4 form as 192.0.2.1-192.0.2.9`,
		},
		{
			name:    "IPv4-mapped single address",
			in:      "::ffff:192.0.2.1",
			wantErr: `"::ffff:192.0.2.1": is an IPv4-mapped IPv6 address; write it as the IPv4 CIDR 192.0.2.1/32`,
		},
		{
			name:    "zone in range",
			in:      "fe80::1%eth0-fe80::9%eth0",
			wantErr: `"fe80::1%eth0-fe80::9%eth0": has an IPv6 zone (the part after '%'); pool addresses cannot carry zones, remove it`,
		},
		{
			name:    "zone in CIDR",
			in:      "fe80::%eth0/64",
			wantErr: `"fe80::%eth0/64": has an IPv6 zone (the part after '%'); pool addresses cannot carry zones, remove it`,
		},
		{
			name:    "two dashes",
			in:      "192.0.2.1-192.0.2.5-192.0.2.9",
			wantErr: `"192.0.2.1-192.0.2.5-192.0.2.9": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
		{
			name:    "range with empty end",
			in:      "192.0.2.1-",
			wantErr: `"192.0.2.1-": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAddresses(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Fatalf("ParseAddresses(%q) error mismatch (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts()); diff != "" {
				t.Errorf("ParseAddresses(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRangeString(t *testing.T) {
	tests := []struct {
		name string
		r    Range
		want string
	}{
		{name: "exact prefix", r: rng("192.0.2.8", "192.0.2.15"), want: "192.0.2.8/29"},
		{name: "one address", r: rng("192.0.2.8", "192.0.2.8"), want: "192.0.2.8/32"},
		{name: "not a prefix", r: rng("192.0.2.10", "192.0.2.12"), want: "192.0.2.10-192.0.2.12"},
		{name: "aligned but not a power of two", r: rng("192.0.2.0", "192.0.2.2"), want: "192.0.2.0-192.0.2.2"},
		{name: "everything", r: rng("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), want: "::/0"},
		{name: "IPv6 range", r: rng("2001:db8::1", "2001:db8::2"), want: "2001:db8::1-2001:db8::2"},
		{name: "zero value", r: Range{}, want: "invalid Range"},
		{name: "backwards", r: rng("192.0.2.2", "192.0.2.1"), want: "invalid Range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.r.String()); diff != "" {
				t.Errorf("String() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRangePrefixes(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name string
		r    Range
		want []netip.Prefix
	}{
		{name: "CIDR", r: rng("192.0.2.0", "192.0.2.255"), want: pfx("192.0.2.0/24")},
		{name: "one address", r: rng("192.0.2.7", "192.0.2.7"), want: pfx("192.0.2.7/32")},
		{name: "unaligned range", r: rng("192.0.2.10", "192.0.2.20"), want: pfx("192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30", "192.0.2.20/32")},
		{name: "whole space", r: rng("0.0.0.0", "255.255.255.255"), want: pfx("0.0.0.0/0")},
		{name: "up to the top", r: rng("255.255.255.254", "255.255.255.255"), want: pfx("255.255.255.254/31")},
		{name: "IPv6", r: rng("2001:db8::1", "2001:db8::4"), want: pfx("2001:db8::1/128", "2001:db8::2/127", "2001:db8::4/128")},
		{name: "invalid", r: Range{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.r.Prefixes(), cmpOpts()); diff != "" {
				t.Errorf("Prefixes() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRangeSetOperations(t *testing.T) {
	tests := []struct {
		name   string
		a, b   Range
		want   Range
		wantOK bool
	}{
		{name: "contained", a: rng("192.0.2.0", "192.0.2.255"), b: rng("192.0.2.8", "192.0.2.15"), want: rng("192.0.2.8", "192.0.2.15"), wantOK: true},
		{name: "partial", a: rng("192.0.2.0", "192.0.2.12"), b: rng("192.0.2.10", "192.0.2.20"), want: rng("192.0.2.10", "192.0.2.12"), wantOK: true},
		{name: "touching at one address", a: rng("192.0.2.0", "192.0.2.10"), b: rng("192.0.2.10", "192.0.2.20"), want: rng("192.0.2.10", "192.0.2.10"), wantOK: true},
		{name: "adjacent", a: rng("192.0.2.0", "192.0.2.9"), b: rng("192.0.2.10", "192.0.2.20")},
		{name: "different families", a: rng("0.0.0.0", "255.255.255.255"), b: rng("::", "::ffff")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range [][2]Range{{tt.a, tt.b}, {tt.b, tt.a}} {
				got, ok := order[0].Intersect(order[1])
				if ok != tt.wantOK || order[0].Overlaps(order[1]) != tt.wantOK {
					t.Fatalf("%v.Intersect(%v) ok = %v, want %v", order[0], order[1], ok, tt.wantOK)
				}
				if diff := cmp.Diff(tt.want, got, cmpOpts()); diff != "" {
					t.Errorf("%v.Intersect(%v) mismatch (-want +got):\n%s", order[0], order[1], diff)
				}
			}
		})
	}
}

func TestRangeContainsAndSize(t *testing.T) {
	r := rng("192.0.2.10", "192.0.2.20")
	tests := []struct {
		name string
		ip   string
		want bool
	}{
		{name: "first", ip: "192.0.2.10", want: true},
		{name: "last", ip: "192.0.2.20", want: true},
		{name: "inside", ip: "192.0.2.15", want: true},
		{name: "below", ip: "192.0.2.9"},
		{name: "above", ip: "192.0.2.21"},
		{name: "IPv4-mapped is not IPv4", ip: "::ffff:192.0.2.15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("%v.Contains(%s) = %v, want %v", r, tt.ip, got, tt.want)
			}
		})
	}
	if got := r.Size(); got.Cmp(big.NewInt(11)) != 0 {
		t.Errorf("%v.Size() = %v, want 11", r, got)
	}
	all6 := rng("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	if got, want := all6.Size(), new(big.Int).Lsh(big.NewInt(1), 128); got.Cmp(want) != 0 {
		t.Errorf("%v.Size() = %v, want %v", all6, got, want)
	}
}

func TestNetworkAndBroadcast(t *testing.T) {
	tests := []struct {
		prefix string
		want   []netip.Addr
	}{
		{"10.0.0.0/8", addrs("10.0.0.0", "10.255.255.255")},
		{"10.1.2.3/8", addrs("10.0.0.0", "10.255.255.255")}, // host bits ignored
		{"0.0.0.0/0", addrs("0.0.0.0", "255.255.255.255")},
		{"192.0.2.0/30", addrs("192.0.2.0", "192.0.2.3")},
		{"192.0.2.0/31", nil},
		{"192.0.2.1/32", nil},
		{"2001:db8:aaaa::/64", addrs("2001:db8:aaaa::")},
		{"::/0", addrs("::")},
		{"2001:db8::/126", addrs("2001:db8::")},
		{"2001:db8::/127", nil},
		{"2001:db8::1/128", nil},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, NetworkAndBroadcast(netip.MustParsePrefix(tc.prefix)), cmpOpts()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if got := NetworkAndBroadcast(netip.Prefix{}); got != nil {
		t.Errorf("NetworkAndBroadcast of the zero Prefix = %v, want nil", got)
	}
}

func FuzzParseAddresses(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24", "192.0.2.10-192.0.2.20", "192.0.2.10 - 192.0.2.20", "2001:db8::/64",
		"2001:db8::10-2001:db8::20", "192.0.2.5/24", "::ffff:192.0.2.0/120", "fe80::1%eth0-fe80::2%eth0",
		"0.0.0.0/0", "::/0", "192.0.2.20-192.0.2.10", "", "-", "/", "1.2.3.4-::1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, prefix, err := parseEntry(s)
		if r2, err2 := ParseAddresses(s); r2 != r || (err == nil) != (err2 == nil) {
			t.Fatalf("ParseAddresses(%q) = %v, %v but parseEntry = %v, %v", s, r2, err2, r, err)
		}
		if err != nil {
			if r != (Range{}) || prefix.IsValid() {
				t.Errorf("ParseAddresses(%q) = %v with error %v, want the zero Range", s, r, err)
			}
			return
		}
		if !r.IsValid() {
			t.Fatalf("ParseAddresses(%q) = %#v, not a valid range", s, r)
		}
		if r.First.Zone() != "" || r.Last.Zone() != "" || r.First.Is4In6() || r.Last.Is4In6() {
			t.Errorf("ParseAddresses(%q) = %v, has a zone or is IPv4-mapped", s, r)
		}
		again, err := ParseAddresses(r.String())
		if err != nil || again != r {
			t.Errorf("ParseAddresses(%q) = %v, but its String %q parses to %v, %v", s, r, r.String(), again, err)
		}
		// The prefixes cover exactly the range, in order, each one masked and starting right
		// after the previous one.
		ps := r.Prefixes()
		next := r.First
		for _, p := range ps {
			if p.Masked() != p || p.Addr() != next {
				t.Fatalf("%v.Prefixes() = %v: %v does not start at %v or is not masked", r, ps, p, next)
			}
			next = lastAddr(p).Next()
		}
		if last := lastAddr(ps[len(ps)-1]); last != r.Last {
			t.Errorf("%v.Prefixes() = %v ends at %v", r, ps, last)
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Errorf("%v does not contain its own ends", r)
		}
		// A CIDR entry's skipped addresses are ends of the range, and leave at least two
		// addresses; a range entry has none.
		skip := NetworkAndBroadcast(prefix)
		if prefix.IsValid() != strings.Contains(s, "/") || (prefix.IsValid() && RangeFromPrefix(prefix) != r) {
			t.Fatalf("parseEntry(%q) = %v, prefix %v", s, r, prefix)
		}
		for _, a := range skip {
			if a != r.First && a != r.Last {
				t.Errorf("NetworkAndBroadcast(%v) = %v: %v is not an end of %v", prefix, skip, a, r)
			}
		}
		if n := r.Size(); len(skip) > 0 && n.Cmp(big.NewInt(int64(len(skip)+2))) < 0 {
			t.Errorf("NetworkAndBroadcast(%v) = %v leaves fewer than 2 of %v addresses", prefix, skip, n)
		}
	})
}
