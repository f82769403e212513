package allocator

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCounts(t *testing.T) {
	tests := []struct {
		name    string
		pool    Pool
		assign  []Service
		v4, v6  [3]string // size, assigned, available
		noCheck bool
	}{
		{
			name: "IPv4 /8",
			pool: pool("p", cidr("10.0.0.0/8")),
			v4:   [3]string{"16777216", "0", "16777216"},
			v6:   [3]string{"0", "0", "0"},
		},
		{
			name: "IPv4 /8 avoiding buggy IPs",
			pool: Pool{Name: "p", Ranges: []Range{cidr("10.0.0.0/8")}, AvoidBuggyIPs: true},
			v4:   [3]string{"16646144", "0", "16646144"},
			v6:   [3]string{"0", "0", "0"},
		},
		{
			name:   "odd range avoiding buggy IPs, a shared address counts once",
			pool:   Pool{Name: "p", Ranges: []Range{span("10.0.0.250", "10.0.1.5")}, AutoAssign: true, AvoidBuggyIPs: true},
			assign: []Service{{Key: "ns/a", SharingKey: "k", Ports: tcp(1)}, {Key: "ns/b", SharingKey: "k", Ports: tcp(2)}, {Key: "ns/c"}},
			v4:     [3]string{"10", "2", "8"},
			v6:     [3]string{"0", "0", "0"},
		},
		{
			name:   "two IPv6 /64",
			pool:   pool("p", cidr("fd00::/64"), cidr("fd01::/64")),
			assign: []Service{{Key: "ns/a", Families: []Family{IPv6}}},
			v4:     [3]string{"0", "0", "0"},
			v6:     [3]string{"36893488147419103232", "1", "36893488147419103231"},
		},
		{
			name: "IPv6 /1 and everything IPv4",
			pool: pool("p", cidr("::/1"), cidr("0.0.0.0/0")),
			v4:   [3]string{"4294967296", "0", "4294967296"},
			v6:   [3]string{"170141183460469231731687303715884105728", "0", "170141183460469231731687303715884105728"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New([]Pool{tc.pool})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.assign {
				if _, err := a.Assign(&s); err != nil {
					t.Fatal(err)
				}
			}
			c, ok := a.PoolCounts("p")
			if !ok {
				t.Fatal("no counts for pool p")
			}
			got := [2][3]string{
				{c.IPv4.Size.String(), c.IPv4.Assigned.String(), c.IPv4.Available.String()},
				{c.IPv6.Size.String(), c.IPv6.Assigned.String(), c.IPv6.Available.String()},
			}
			if diff := cmp.Diff([2][3]string{tc.v4, tc.v6}, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]PoolCounts{c}, a.Counts()); diff != "" {
				t.Errorf("Counts (-want +got):\n%s", diff)
			}
			if err := checkInvariants(a); err != nil {
				t.Error(err)
			}
		})
	}
	if _, ok := (&Allocator{pools: &poolSet{}}).PoolCounts("nope"); ok {
		t.Error("PoolCounts of a missing pool reported ok")
	}
}

func TestPrefixRange(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.1.2.3/8", "10.0.0.0-10.255.255.255"},
		{"0.0.0.0/0", "0.0.0.0-255.255.255.255"},
		{"192.0.2.7/32", "192.0.2.7"},
		{"fd00::/64", "fd00::-fd00::ffff:ffff:ffff:ffff"},
		{"fd00::/65", "fd00::-fd00::7fff:ffff:ffff:ffff"},
		{"fd00::/63", "fd00::-fd00::1:ffff:ffff:ffff:ffff"},
		{"::/0", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, PrefixRange(netip.MustParsePrefix(tc.prefix)).String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpaceMapping checks that offsets number exactly the usable addresses, in order.
func TestSpaceMapping(t *testing.T) {
	tests := []struct {
		name   string
		avoid  bool
		ranges []Range
	}{
		{"plain", false, []Range{span("10.0.0.250", "10.0.1.3"), span("10.0.2.255", "10.0.3.0")}},
		{"buggy", true, []Range{span("10.0.0.250", "10.0.1.3"), span("10.0.2.255", "10.0.3.0"), span("10.0.4.0", "10.0.4.1"), span("10.0.5.255", "10.0.6.2")}},
		{"buggy edges", true, []Range{span("0.0.0.0", "0.0.0.2"), span("255.255.255.250", "255.255.255.255")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp, ok := newSpace(IPv4, tc.avoid, tc.ranges, nil)
			if !ok {
				t.Fatal("newSpace failed")
			}
			var want, got []string
			for _, r := range tc.ranges {
				for ip := r.First; ; ip = ip.Next() {
					if b := ip.As4()[3]; !tc.avoid || (b != 0 && b != 255) {
						want = append(want, ip.String())
					}
					if _, ok := sp.offset(ip); ok != (len(want) > 0 && want[len(want)-1] == ip.String()) {
						t.Errorf("offset(%s) ok = %v", ip, ok)
					}
					if ip == r.Last {
						break
					}
				}
			}
			for o := (Uint128{}); o.Less(sp.size); o = o.Inc() {
				ip := sp.addr(o)
				got = append(got, ip.String())
				if back, ok := sp.offset(ip); !ok || back != o {
					t.Errorf("offset(addr(%s)) = %s, %v", o, back, ok)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSmallHelpers(t *testing.T) {
	if s := Family(9).String(); s != "Family(9)" {
		t.Errorf("Family(9) = %s", s)
	}
	if v, ok := (Uint128{Hi: 0, Lo: 7}).Uint64(); v != 7 || !ok {
		t.Errorf("Uint64 = %d, %v", v, ok)
	}
	if _, ok := (Uint128{Hi: 1, Lo: 0}).Uint64(); ok {
		t.Error("2^64 fits in a uint64?")
	}
	if f := (Uint128{Hi: 1, Lo: 0}).Float64(); f != 1<<64 {
		t.Errorf("Float64 = %g", f)
	}
}
