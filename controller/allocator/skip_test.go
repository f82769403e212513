package allocator

import (
	"github.com/herald-lb/herald/controller/allocator/ipset"

	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// subnetEnds returns what the reconciler puts in Pool.Skip for a CIDR (config.NetworkAndBroadcast):
// the network and broadcast address of an IPv4 CIDR up to /30, the first address of an IPv6
// CIDR up to /126.
func subnetEnds(p netip.Prefix) []netip.Addr {
	if p.Bits() >= p.Addr().BitLen()-1 {
		return nil
	}
	r := PrefixRange(p)
	if r.First.Is6() {
		return []netip.Addr{r.First}
	}
	return []netip.Addr{r.First, r.Last}
}

// netPool is a pool of CIDRs that skips their network and broadcast addresses, as the
// reconciler builds it by default.
func netPool(name string, prefixes ...string) Pool {
	p := Pool{Name: name, AutoAssign: true}
	for _, s := range prefixes {
		pr := netip.MustParsePrefix(s)
		p.Ranges = append(p.Ranges, PrefixRange(pr))
		p.Skip = append(p.Skip, subnetEnds(pr)...)
	}
	return p
}

func TestSkipNetworkAndBroadcast(t *testing.T) {
	v6 := []Family{IPv6}
	tests := []struct {
		name  string
		pools []Pool
		steps []step
	}{
		{
			name:  "the first address of 10.0.0.0/8 is 10.0.0.1",
			pools: []Pool{netPool("p", "10.0.0.0/8")},
			steps: []step{{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.1@p"}}},
		},
		{
			name:  "192.0.2.0/30 gives .1, then .2, then nothing",
			pools: []Pool{netPool("p", "192.0.2.0/30")},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"192.0.2.1@p"}},
				{svc: Service{Key: "ns/b"}, want: []string{"192.0.2.2@p"}},
				{svc: Service{Key: "ns/c"}, err: ErrPoolFull, errMsg: `pool "p" is full: 2 of 2 IPv4 addresses in use`},
			},
		},
		{
			name:  "a /31 gives both addresses (RFC 3021), a /32 its one",
			pools: []Pool{netPool("p", "192.0.2.0/31", "192.0.2.9/32")},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/b"}, want: []string{"192.0.2.1@p"}},
				{svc: Service{Key: "ns/c"}, want: []string{"192.0.2.9@p"}},
				{svc: Service{Key: "ns/d"}, err: ErrPoolFull},
			},
		},
		{
			name:  "IPv6: the subnet-router anycast address is skipped, the last address is not",
			pools: []Pool{netPool("p", "2001:db8:aaaa::/126")},
			steps: []step{
				{svc: Service{Key: "ns/a", Families: v6}, want: []string{"2001:db8:aaaa::1@p"}},
				{svc: Service{Key: "ns/b", Families: v6}, want: []string{"2001:db8:aaaa::2@p"}},
				{svc: Service{Key: "ns/c", Families: v6}, want: []string{"2001:db8:aaaa::3@p"}},
				{svc: Service{Key: "ns/d", Families: v6}, err: ErrPoolFull},
			},
		},
		{
			name:  "IPv6 /64 and /127",
			pools: []Pool{netPool("p", "2001:db8:aaaa::/64"), netPool("q", "2001:db8:bbbb::/127")},
			steps: []step{
				{svc: Service{Key: "ns/a", Families: v6}, want: []string{"2001:db8:aaaa::1@p"}},
				{svc: Service{Key: "ns/b", Families: v6, Pool: "q"}, want: []string{"2001:db8:bbbb::@q"}},
			},
		},
		{
			name: "a range is not affected, the switch turns skipping off",
			// What the reconciler builds for "192.0.2.0-192.0.2.3" and for a CIDR with
			// allocateNetworkAndBroadcast: no Skip.
			pools: []Pool{pool("r", span("192.0.2.0", "192.0.2.3"))},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"192.0.2.0@r"}},
				{svc: Service{Key: "ns/b"}, want: []string{"192.0.2.1@r"}},
				{svc: Service{Key: "ns/c"}, want: []string{"192.0.2.2@r"}},
				{svc: Service{Key: "ns/d"}, want: []string{"192.0.2.3@r"}},
			},
		},
		{
			name:  "with avoidBuggyIPs too: a /23 skips .0 and .255 of both /24s",
			pools: []Pool{{Name: "p", Ranges: []Range{cidr("10.0.0.0/23")}, Skip: subnetEnds(netip.MustParsePrefix("10.0.0.0/23")), AutoAssign: true, AvoidBuggyIPs: true}},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.1@p"}},
				{svc: Service{Key: "ns/b", RequestedIPs: addrs("10.0.1.0")}, err: ErrNotInPool, errMsg: "avoidBuggyIPs"},
				{svc: Service{Key: "ns/b", RequestedIPs: addrs("10.0.1.255")}, err: ErrNotInPool,
					errMsg: `10.0.1.255 is the network or broadcast address of a CIDR of pool "p" and ends in .0 or .255, which the pool does not hand out: request another address, or set spec.allocateNetworkAndBroadcast to true and spec.avoidBuggyIPs to false on the pool`},
				{svc: Service{Key: "ns/b", RequestedIPs: addrs("10.0.1.254")}, want: []string{"10.0.1.254@p"}},
			},
		},
		{
			name:  "a requested network, broadcast or anycast address is refused, naming the switch",
			pools: []Pool{netPool("p", "192.0.2.0/30", "2001:db8::/64")},
			steps: []step{
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("192.0.2.0")}, err: ErrNotInPool,
					errMsg: `requested address 192.0.2.0: 192.0.2.0 is the network or broadcast address of a CIDR of pool "p", which the pool does not hand out: request another address, or set spec.allocateNetworkAndBroadcast to true on the pool`},
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("192.0.2.3")}, err: ErrNotInPool, errMsg: "192.0.2.3 is the network or broadcast address"},
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("2001:db8::")}, err: ErrNotInPool,
					errMsg: `2001:db8:: is the subnet-router anycast address (the first address) of a CIDR of pool "p"`},
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("192.0.2.2")}, want: []string{"192.0.2.2@p"}},
			},
		},
		{
			name:  "a restored network address stays; new Services skip it; freed, it is skipped again",
			pools: []Pool{netPool("p", "192.0.2.0/30")},
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/old"}, ips: addrs("192.0.2.0"), want: []string{"192.0.2.0@p"}},
				{op: "reserve", svc: Service{Key: "ns/old2"}, ips: addrs("192.0.2.3"), want: []string{"192.0.2.3@p"}},
				{svc: Service{Key: "ns/old"}, want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/a"}, want: []string{"192.0.2.1@p"}},
				{svc: Service{Key: "ns/b"}, want: []string{"192.0.2.2@p"}},
				{svc: Service{Key: "ns/c"}, err: ErrPoolFull, errMsg: "4 of 4 IPv4 addresses in use"},
				{op: "release", svc: Service{Key: "ns/old"}, rel: []string{"ns/old 192.0.2.0@p"}},
				{svc: Service{Key: "ns/c"}, err: ErrPoolFull, errMsg: "3 of 3 IPv4 addresses in use"},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 192.0.2.1@p"}},
				{svc: Service{Key: "ns/c"}, want: []string{"192.0.2.1@p"}},
			},
		},
		{
			name:  "a Service that requests the network address it holds keeps it",
			pools: []Pool{netPool("p", "192.0.2.0/30")},
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/old", RequestedIPs: addrs("192.0.2.0")}, ips: addrs("192.0.2.0"), want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/old", RequestedIPs: addrs("192.0.2.0")}, want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/other", RequestedIPs: addrs("192.0.2.0")}, err: ErrNotInPool, errMsg: "network or broadcast"},
			},
		},
		{
			name:  "sharers restore a held network address together, but no new sharer joins it",
			pools: []Pool{netPool("p", "192.0.2.0/30")},
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, ips: addrs("192.0.2.0"), want: []string{"192.0.2.0@p"}},
				{op: "reserve", svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, ips: addrs("192.0.2.0"), want: []string{"192.0.2.0@p"}},
				{op: "reserve", svc: Service{Key: "ns/x"}, ips: addrs("192.0.2.0"), err: ErrInUse, errMsg: "192.0.2.0 is in use by ns/a"},
				{svc: Service{Key: "ns/c", SharingKey: "k", Ports: tcp(53)}, want: []string{"192.0.2.1@p"}},
				{svc: Service{Key: "ns/d", SharingKey: "k", Ports: tcp(22)}, want: []string{"192.0.2.1@p"}},
				{svc: Service{Key: "ns/e", SharingKey: "k", Ports: tcp(25), RequestedIPs: addrs("192.0.2.0")}, err: ErrNotInPool, errMsg: "network or broadcast"},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 192.0.2.0@p"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"192.0.2.0@p"}},
			},
		},
		{
			name:  "pool edits keep a held network address: skipping turned off and on again, the pool grown",
			pools: []Pool{netPool("p", "192.0.2.0/30")},
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/old"}, ips: addrs("192.0.2.0"), want: []string{"192.0.2.0@p"}},
				{op: "pools", svc: Service{Key: "ns/old"}, pools: []Pool{pool("p", cidr("192.0.2.0/30"))}, want: []string{"192.0.2.0@p"}},
				{op: "pools", svc: Service{Key: "ns/old"}, pools: []Pool{netPool("p", "192.0.2.0/30")}, want: []string{"192.0.2.0@p"}},
				{op: "pools", svc: Service{Key: "ns/old"}, pools: []Pool{netPool("p", "192.0.2.0/30", "192.0.2.8/30")}, want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/old"}, want: []string{"192.0.2.0@p"}},
				// Only a pool that no longer contains the address releases it, as for any address.
				{op: "pools", pools: []Pool{netPool("p", "192.0.2.8/30")}, rel: []string{"ns/old 192.0.2.0@p"}},
			},
		},
		{
			name:  "an address held when skipping starts stays with its Service",
			pools: []Pool{pool("p", cidr("192.0.2.0/30"))},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"192.0.2.0@p"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{netPool("p", "192.0.2.0/30")}, want: []string{"192.0.2.0@p"}},
				{svc: Service{Key: "ns/b"}, want: []string{"192.0.2.1@p"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.pools, tc.steps) })
	}
}

// TestSkipCounts checks that the counts stay exact, whatever the pool size, with skipped
// addresses held and freed.
func TestSkipCounts(t *testing.T) {
	type counts [3]string // size, assigned, available
	get := func(t *testing.T, a *Allocator, f Family) counts {
		t.Helper()
		c, ok := a.PoolCounts("p")
		if !ok {
			t.Fatal("no counts for pool p")
		}
		fc := c.IPv4
		if f == IPv6 {
			fc = c.IPv6
		}
		return counts{fc.Size.String(), fc.Assigned.String(), fc.Available.String()}
	}
	tests := []struct {
		name    string
		pool    Pool
		f       Family
		held    netip.Addr // a skipped address restored for ns/old
		empty   counts     // before anything is held
		withOld counts     // with held restored
		plusOne counts     // and one Service more
	}{
		{
			name: "IPv4 /8", pool: netPool("p", "10.0.0.0/8"), f: IPv4, held: addr("10.255.255.255"),
			empty: counts{"16777214", "0", "16777214"}, withOld: counts{"16777215", "1", "16777214"}, plusOne: counts{"16777215", "2", "16777213"},
		},
		{
			name: "IPv4 /30", pool: netPool("p", "192.0.2.0/30"), f: IPv4, held: addr("192.0.2.0"),
			empty: counts{"2", "0", "2"}, withOld: counts{"3", "1", "2"}, plusOne: counts{"3", "2", "1"},
		},
		{
			name: "IPv4 /24 with avoidBuggyIPs: the ends were skipped already",
			pool: Pool{Name: "p", Ranges: []Range{cidr("10.0.0.0/24")}, Skip: subnetEnds(netip.MustParsePrefix("10.0.0.0/24")), AutoAssign: true, AvoidBuggyIPs: true},
			f:    IPv4, held: addr("10.0.0.255"),
			empty: counts{"254", "0", "254"}, withOld: counts{"255", "1", "254"}, plusOne: counts{"255", "2", "253"},
		},
		{
			name: "IPv6 /64", pool: netPool("p", "2001:db8::/64"), f: IPv6, held: addr("2001:db8::"),
			empty:   counts{"18446744073709551615", "0", "18446744073709551615"},
			withOld: counts{"18446744073709551616", "1", "18446744073709551615"},
			plusOne: counts{"18446744073709551616", "2", "18446744073709551614"},
		},
		{
			name: "2^128-1 IPv6 addresses, one skipped, count without overflow",
			pool: Pool{Name: "p", AutoAssign: true, Ranges: []Range{span("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}, Skip: addrs("8000::")},
			f:    IPv6, held: addr("8000::"),
			empty:   counts{"340282366920938463463374607431768211454", "0", "340282366920938463463374607431768211454"},
			withOld: counts{"340282366920938463463374607431768211455", "1", "340282366920938463463374607431768211454"},
			plusOne: counts{"340282366920938463463374607431768211455", "2", "340282366920938463463374607431768211453"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New([]Pool{tc.pool})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.empty, get(t, a, tc.f)); diff != "" {
				t.Errorf("empty (-want +got):\n%s", diff)
			}
			if _, err := a.Reserve(&Service{Key: "ns/old", Families: []Family{tc.f}}, []netip.Addr{tc.held}); err != nil {
				t.Fatalf("restoring %s: %v", tc.held, err)
			}
			if diff := cmp.Diff(tc.withOld, get(t, a, tc.f)); diff != "" {
				t.Errorf("with %s restored (-want +got):\n%s", tc.held, diff)
			}
			res, err := a.Assign(&Service{Key: "ns/new", Families: []Family{tc.f}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Assigned[0].IP; slices.Contains(tc.pool.Skip, got) {
				t.Errorf("new Service got %s, a skipped address", got)
			}
			if diff := cmp.Diff(tc.plusOne, get(t, a, tc.f)); diff != "" {
				t.Errorf("plus one Service (-want +got):\n%s", diff)
			}
			a.Release("ns/old")
			a.Release("ns/new")
			if diff := cmp.Diff(tc.empty, get(t, a, tc.f)); diff != "" {
				t.Errorf("after releasing both (-want +got):\n%s", diff)
			}
			if err := checkInvariants(a); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSkipErrors(t *testing.T) {
	tests := []struct {
		name string
		pool Pool
		want string
	}{
		{
			name: "outside the ranges",
			pool: Pool{Name: "p", Ranges: []Range{cidr("192.0.2.0/30")}, Skip: addrs("192.0.2.4")},
			want: `creating allocator: pool "p": skipped address 192.0.2.4: is not in the pool's ranges`,
		},
		{
			name: "other family",
			pool: Pool{Name: "p", Ranges: []Range{cidr("192.0.2.0/30")}, Skip: addrs("::")},
			want: `creating allocator: pool "p": skipped address ::: is not in the pool's ranges`,
		},
		{
			name: "zero address",
			pool: Pool{Name: "p", Ranges: []Range{cidr("192.0.2.0/30")}, Skip: []netip.Addr{{}}},
			want: `creating allocator: pool "p": skipped address invalid IP: is invalid (zero)`,
		},
		{
			name: "IPv4-mapped",
			pool: Pool{Name: "p", Ranges: []Range{cidr("192.0.2.0/30")}, Skip: addrs("::ffff:192.0.2.0")},
			want: `creating allocator: pool "p": skipped address ::ffff:192.0.2.0: is an IPv4-mapped IPv6 address: write it as 192.0.2.0`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]Pool{tc.pool})
			if !errors.Is(err, ErrInvalidPool) {
				t.Fatalf("New: %v, want ErrInvalidPool", err)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	// Duplicates and unsorted input are fine.
	a, err := New([]Pool{{Name: "p", AutoAssign: true, Ranges: []Range{cidr("192.0.2.0/30")}, Skip: addrs("192.0.2.3", "192.0.2.0", "192.0.2.3")}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := a.PoolCounts("p"); c.IPv4.Size != ipset.From64(2) {
		t.Errorf("size %s, want 2", c.IPv4.Size)
	}
}

// TestSpaceSkip checks the numbering of a space cut by skipped addresses at range ends, in
// the middle, adjacent to each other, and combined with AvoidBuggyIPs.
func TestSpaceSkip(t *testing.T) {
	tests := []struct {
		name   string
		avoid  bool
		ranges []Range
		skip   []netip.Addr
	}{
		{"ends", false, []Range{span("10.0.0.0", "10.0.0.3"), span("10.0.0.8", "10.0.0.11")}, addrs("10.0.0.0", "10.0.0.3", "10.0.0.8", "10.0.0.11")},
		{"middle and adjacent", false, []Range{span("10.0.0.0", "10.0.0.9")}, addrs("10.0.0.4", "10.0.0.5", "10.0.0.7")},
		{"a whole range", false, []Range{span("10.0.0.0", "10.0.0.1"), span("10.0.0.5", "10.0.0.5")}, addrs("10.0.0.0", "10.0.0.1", "10.0.0.5")},
		{"with buggy", true, []Range{span("10.0.0.250", "10.0.1.5")}, addrs("10.0.0.250", "10.0.0.255", "10.0.1.1", "10.0.1.5")},
		{"top of the space", false, []Range{span("255.255.255.252", "255.255.255.255")}, addrs("255.255.255.252", "255.255.255.255")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp, ok := newSpace(IPv4, tc.avoid, tc.ranges, tc.skip)
			if !ok {
				t.Fatal("newSpace failed")
			}
			var want, got []string
			for _, r := range tc.ranges {
				for ip := r.First; ; ip = ip.Next() {
					buggy := tc.avoid && isBuggy(ip)
					usable := !buggy && !slices.Contains(tc.skip, ip)
					if usable {
						want = append(want, ip.String())
					}
					if _, ok := sp.offset(ip); ok != usable {
						t.Errorf("offset(%s) ok = %v, want %v", ip, ok, usable)
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
