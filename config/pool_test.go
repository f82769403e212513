package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

func TestParsePools(t *testing.T) {
	withSpec := func(p v1beta1.IPAddressPool, f func(*v1beta1.IPAddressPoolSpec)) v1beta1.IPAddressPool {
		f(&p.Spec)
		return p
	}
	tests := []struct {
		name  string
		pools []v1beta1.IPAddressPool
		want  map[string]*Pool
	}{
		{
			name: "CIDRs and ranges of both families are sorted, IPv4 first",
			pools: []v1beta1.IPAddressPool{ipPool("a",
				"2001:db8::/64", "192.0.2.128/25", "192.0.2.10 - 192.0.2.20", "2001:db7::1-2001:db7::5", "10.0.0.0/8")},
			want: map[string]*Pool{"a": {Name: "a", AutoAssign: true, Ranges: []Range{
				rng("10.0.0.0", "10.255.255.255"),
				rng("192.0.2.10", "192.0.2.20"),
				rng("192.0.2.128", "192.0.2.255"),
				rng("2001:db7::1", "2001:db7::5"),
				rng("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"),
			}, Skip: addrs("10.0.0.0", "10.255.255.255", "192.0.2.128", "192.0.2.255", "2001:db8::")}},
		},
		{
			name: "IPv4 and IPv6 of the same numeric value do not overlap",
			pools: []v1beta1.IPAddressPool{
				ipPool("a", "0.0.0.0/0"),
				ipPool("b", "::/96"),
			},
			want: map[string]*Pool{
				"a": {Name: "a", AutoAssign: true, Ranges: []Range{rng("0.0.0.0", "255.255.255.255")}, Skip: addrs("0.0.0.0", "255.255.255.255")},
				"b": {Name: "b", AutoAssign: true, Ranges: []Range{rng("::", "::ffff:ffff")}, Skip: addrs("::")},
			},
		},
		{
			name: "adjacent entries and pools are fine",
			pools: []v1beta1.IPAddressPool{
				ipPool("a", "192.0.2.0/25", "192.0.2.128-192.0.2.200"),
				ipPool("b", "192.0.2.201-192.0.2.255"),
			},
			want: map[string]*Pool{
				"a": {Name: "a", AutoAssign: true, Ranges: []Range{rng("192.0.2.0", "192.0.2.127"), rng("192.0.2.128", "192.0.2.200")}, Skip: addrs("192.0.2.0", "192.0.2.127")},
				"b": {Name: "b", AutoAssign: true, Ranges: []Range{rng("192.0.2.201", "192.0.2.255")}},
			},
		},
		{
			name: "autoAssign false, avoidBuggyIPs and labels",
			pools: []v1beta1.IPAddressPool{{
				ObjectMeta: objectMeta("a", "tier", "gold"),
				Spec: v1beta1.IPAddressPoolSpec{
					Addresses: []string{"192.0.2.0/24"}, AutoAssign: ptr(false), AvoidBuggyIPs: true,
				},
			}},
			want: map[string]*Pool{"a": {
				Name: "a", Labels: map[string]string{"tier": "gold"}, AvoidBuggyIPs: true,
				Ranges: []Range{rng("192.0.2.0", "192.0.2.255")}, Skip: addrs("192.0.2.0", "192.0.2.255"),
			}},
		},
		{
			name: "autoAssign true explicitly",
			pools: []v1beta1.IPAddressPool{withSpec(ipPool("a", "192.0.2.0/24"), func(s *v1beta1.IPAddressPoolSpec) {
				s.AutoAssign = ptr(true)
			})},
			want: map[string]*Pool{"a": {Name: "a", AutoAssign: true, Ranges: []Range{rng("192.0.2.0", "192.0.2.255")}, Skip: addrs("192.0.2.0", "192.0.2.255")}},
		},
		{
			name: "service allocation",
			pools: []v1beta1.IPAddressPool{withSpec(ipPool("a", "192.0.2.0/24"), func(s *v1beta1.IPAddressPoolSpec) {
				s.ServiceAllocation = &v1beta1.ServiceAllocation{
					Priority:   5,
					Namespaces: []string{"web", "api", "web"},
					NamespaceSelectors: []metav1.LabelSelector{
						{MatchLabels: map[string]string{"team": "a"}},
						{},
					},
					ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold", "silver"}},
						{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
					}}},
				}
			})},
			want: map[string]*Pool{"a": {
				Name: "a", AutoAssign: true, Ranges: []Range{rng("192.0.2.0", "192.0.2.255")}, Skip: addrs("192.0.2.0", "192.0.2.255"),
				Allocation: &ServiceAllocation{
					Priority:           5,
					Namespaces:         []string{"api", "web"},
					NamespaceSelectors: []labels.Selector{selector(t, "team=a"), labels.Everything()},
					ServiceSelectors:   []labels.Selector{selector(t, "tier in (gold,silver),!legacy")},
				},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, Snapshot{Pools: tt.pools})
			if diff := cmp.Diff(tt.want, cfg.Pools, cmpOpts()); diff != "" {
				t.Errorf("Pools mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePoolErrors(t *testing.T) {
	withAllocation := func(p v1beta1.IPAddressPool, sa v1beta1.ServiceAllocation) v1beta1.IPAddressPool {
		p.Spec.ServiceAllocation = &sa
		return p
	}
	const oneOnly = "an address may belong to one pool only; remove the common addresses from one of the pools"
	tests := []struct {
		name  string
		pools []v1beta1.IPAddressPool
		want  []string
	}{
		{
			name:  "empty pool",
			pools: []v1beta1.IPAddressPool{ipPool("a")},
			want: []string{
				`IPAddressPool herald-system/a: spec.addresses: the pool has no addresses; add a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
			},
		},
		{
			name:  "bad entries are each reported",
			pools: []v1beta1.IPAddressPool{ipPool("a", "192.0.2.0/24", "192.0.2.300/24", "198.51.100.5/24", "198.51.100.9-198.51.100.1", "192.0.3.1-2001:db8::1")},
			want: []string{
				`IPAddressPool herald-system/a: spec.addresses[1] "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
				`IPAddressPool herald-system/a: spec.addresses[2] "198.51.100.5/24": 198.51.100.5/24 has host bits set; did you mean 198.51.100.0/24?`,
				`IPAddressPool herald-system/a: spec.addresses[3] "198.51.100.9-198.51.100.1": first address 198.51.100.9 is after last address 198.51.100.1; did you mean 198.51.100.1-198.51.100.9?`,
				`IPAddressPool herald-system/a: spec.addresses[4] "192.0.3.1-2001:db8::1": mixes IPv4 and IPv6; both ends of a range must be of one family, such as 192.0.2.10-192.0.2.20`,
			},
		},
		{
			name:  "a CIDR inside another pool's CIDR is reported on the later pool only",
			pools: []v1beta1.IPAddressPool{ipPool("b", "198.51.100.0/24", "192.0.2.8/29"), ipPool("a", "192.0.2.0/24")},
			want: []string{
				`IPAddressPool herald-system/b: spec.addresses[1] "192.0.2.8/29": overlaps IPAddressPool a spec.addresses[0] "192.0.2.0/24" in 192.0.2.8/29; ` + oneOnly,
			},
		},
		{
			name:  "partly overlapping ranges report the common part",
			pools: []v1beta1.IPAddressPool{ipPool("a", "192.0.2.0-192.0.2.12"), ipPool("b", "192.0.2.10-192.0.2.20")},
			want: []string{
				`IPAddressPool herald-system/b: spec.addresses[0] "192.0.2.10-192.0.2.20": overlaps IPAddressPool a spec.addresses[0] "192.0.2.0-192.0.2.12" in 192.0.2.10-192.0.2.12; ` + oneOnly,
			},
		},
		{
			name:  "IPv6 pools overlapping a range and a CIDR",
			pools: []v1beta1.IPAddressPool{ipPool("a", "2001:db8::/64"), ipPool("b", "2001:db8::ffff:ffff:ffff:fff0-2001:db8:0:1::5")},
			want: []string{
				`IPAddressPool herald-system/b: spec.addresses[0] "2001:db8::ffff:ffff:ffff:fff0-2001:db8:0:1::5": overlaps IPAddressPool a spec.addresses[0] "2001:db8::/64" in 2001:db8::ffff:ffff:ffff:fff0/124; ` + oneOnly,
			},
		},
		{
			name:  "one entry overlapping two older pools",
			pools: []v1beta1.IPAddressPool{created(ipPool("a", "192.0.2.0/24"), 3), created(ipPool("b", "192.0.2.0/25"), 1), created(ipPool("c", "192.0.2.128/25"), 2)},
			want: []string{
				`IPAddressPool herald-system/a: spec.addresses[0] "192.0.2.0/24": overlaps IPAddressPool b spec.addresses[0] "192.0.2.0/25" in 192.0.2.0/25; ` + oneOnly,
				`IPAddressPool herald-system/a: spec.addresses[0] "192.0.2.0/24": overlaps IPAddressPool c spec.addresses[0] "192.0.2.128/25" in 192.0.2.128/25; ` + oneOnly,
			},
		},
		{
			name:  "duplicate and overlapping entries within one pool",
			pools: []v1beta1.IPAddressPool{ipPool("a", "192.0.2.0/28", "198.51.100.0/24", "192.0.2.0 - 192.0.2.15", "198.51.100.200-198.51.100.255")},
			want: []string{
				`IPAddressPool herald-system/a: spec.addresses[2] "192.0.2.0 - 192.0.2.15": duplicates spec.addresses[0] "192.0.2.0/28" of the same pool; remove one of them`,
				`IPAddressPool herald-system/a: spec.addresses[3] "198.51.100.200-198.51.100.255": overlaps spec.addresses[1] "198.51.100.0/24" of the same pool in 198.51.100.200-198.51.100.255; entries of a pool must not overlap, merge them into one`,
			},
		},
		{
			name: "service allocation: priority, namespaces and selectors per field",
			pools: []v1beta1.IPAddressPool{withAllocation(ipPool("a", "192.0.2.0/24"), v1beta1.ServiceAllocation{
				Priority:   -1,
				Namespaces: []string{"ok", "Not_OK"},
				NamespaceSelectors: []metav1.LabelSelector{
					{MatchLabels: map[string]string{"good": "yes"}},
					{MatchLabels: map[string]string{"bad key!": "x", "team": "bad value!"}},
				},
				ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold"}},
					{Key: "tier", Operator: "in", Values: []string{"gold"}},
					{Key: "tier", Operator: metav1.LabelSelectorOpExists, Values: []string{"gold"}},
				}}},
			})},
			want: []string{
				`IPAddressPool herald-system/a: spec.serviceAllocation.priority "-1": must not be negative; use 0 or more (lower numbers are tried first)`,
				`IPAddressPool herald-system/a: spec.serviceAllocation.namespaces[1] "Not_OK": not a valid namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`IPAddressPool herald-system/a: spec.serviceAllocation.namespaceSelectors[1].matchLabels[bad key!] "x": not a valid label selector: key: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`IPAddressPool herald-system/a: spec.serviceAllocation.namespaceSelectors[1].matchLabels[team] "bad value!": not a valid label selector: values[0][team]: Invalid value: "bad value!": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
				`IPAddressPool herald-system/a: spec.serviceAllocation.serviceSelectors[0].matchExpressions[1] "tier in [gold]": not a valid label selector requirement: "in" is not a valid label selector operator; use an operator In, NotIn, Exists or DoesNotExist with a valid label key and values`,
				`IPAddressPool herald-system/a: spec.serviceAllocation.serviceSelectors[0].matchExpressions[2] "tier Exists [gold]": not a valid label selector requirement: values: Invalid value: ["gold"]: values set must be empty for exists and does not exist; use an operator In, NotIn, Exists or DoesNotExist with a valid label key and values`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Snapshot{Pools: tt.pools})
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPoolContains(t *testing.T) {
	cfg := mustParse(t, Snapshot{Pools: []v1beta1.IPAddressPool{
		ipPool("a", "192.0.2.0/28", "192.0.2.100-192.0.2.110", "2001:db8::/126"),
		ipPool("v6", "2001:db8:1::/64"),
	}})
	p := cfg.Pools["a"]
	tests := []struct {
		name string
		ip   string
		want bool
	}{
		{name: "first CIDR start", ip: "192.0.2.0", want: true},
		{name: "first CIDR end", ip: "192.0.2.15", want: true},
		{name: "gap", ip: "192.0.2.50"},
		{name: "range", ip: "192.0.2.105", want: true},
		{name: "after the range", ip: "192.0.2.111"},
		{name: "IPv6", ip: "2001:db8::3", want: true},
		{name: "IPv6 outside", ip: "2001:db8::4"},
		{name: "IPv4-mapped", ip: "::ffff:192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
	if !p.HasIPv4() || !p.HasIPv6() {
		t.Errorf("pool a: HasIPv4, HasIPv6 = %v, %v, want true, true", p.HasIPv4(), p.HasIPv6())
	}
	if v6 := cfg.Pools["v6"]; v6.HasIPv4() || !v6.HasIPv6() {
		t.Errorf("pool v6: HasIPv4, HasIPv6 = %v, %v, want false, true", v6.HasIPv4(), v6.HasIPv6())
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestParsePoolSkip checks which addresses of a pool are skipped: the network and broadcast
// addresses of IPv4 CIDR entries and the subnet-router anycast address of IPv6 ones, never those
// of /31, /32, /127, /128 or of ranges, and none with allocateNetworkAndBroadcast.
func TestParsePoolSkip(t *testing.T) {
	allocate := func(p v1beta1.IPAddressPool) v1beta1.IPAddressPool {
		p.Spec.AllocateNetworkAndBroadcast = true
		return p
	}
	tests := []struct {
		name     string
		pool     v1beta1.IPAddressPool
		want     []netip.Addr
		allocate bool
	}{
		{name: "IPv4 /8", pool: ipPool("a", "10.0.0.0/8"), want: addrs("10.0.0.0", "10.255.255.255")},
		{name: "IPv4 /30", pool: ipPool("a", "192.0.2.0/30"), want: addrs("192.0.2.0", "192.0.2.3")},
		{name: "IPv4 /31 and /32 are not affected (RFC 3021)", pool: ipPool("a", "192.0.2.0/31", "192.0.2.7/32")},
		{name: "IPv6 /64: the subnet-router anycast address only", pool: ipPool("a", "2001:db8:aaaa::/64"), want: addrs("2001:db8:aaaa::")},
		{name: "IPv6 /126", pool: ipPool("a", "2001:db8::/126"), want: addrs("2001:db8::")},
		{name: "IPv6 /127 and /128 are not affected (RFC 6164)", pool: ipPool("a", "2001:db8::/127", "2001:db8::7/128")},
		{name: "ranges are not affected, even when they span a prefix", pool: ipPool("a", "192.0.2.0-192.0.2.255", "2001:db8::-2001:db8::ff")},
		{
			name: "several CIDRs and a range, sorted",
			pool: ipPool("a", "2001:db8::/120", "198.51.100.16-198.51.100.31", "198.51.100.0/28", "192.0.2.128/25"),
			want: addrs("192.0.2.128", "192.0.2.255", "198.51.100.0", "198.51.100.15", "2001:db8::"),
		},
		{name: "allocateNetworkAndBroadcast turns it off", pool: allocate(ipPool("a", "10.0.0.0/8", "2001:db8::/64")), allocate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, Snapshot{Pools: []v1beta1.IPAddressPool{tt.pool}})
			p := cfg.Pools["a"]
			if diff := cmp.Diff(tt.want, p.Skip, cmpOpts()); diff != "" {
				t.Errorf("Skip (-want +got):\n%s", diff)
			}
			if p.AllocateNetworkAndBroadcast != tt.allocate {
				t.Errorf("AllocateNetworkAndBroadcast = %v, want %v", p.AllocateNetworkAndBroadcast, tt.allocate)
			}
			for _, a := range p.Skip {
				if !p.Contains(a) {
					t.Errorf("skipped address %s is not in the pool: it must stay a pool address", a)
				}
			}
		})
	}
}
