package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

// advPools are the pools the advertisement tests select from.
func advPools() []v1beta1.IPAddressPool {
	gold := ipPool("gold", "192.0.2.0/26", "2001:db8::/120")
	gold.Labels = map[string]string{"tier": "gold"}
	silver := ipPool("silver", "198.51.100.10-198.51.100.20")
	silver.Labels = map[string]string{"tier": "silver"}
	return []v1beta1.IPAddressPool{silver, gold, ipPool("plain", "203.0.113.0/24")}
}

func TestParseL2Advertisements(t *testing.T) {
	tests := []struct {
		name string
		spec v1beta1.L2AdvertisementSpec
		want *L2Advertisement
	}{
		{
			name: "no pools and no selectors means every pool",
			want: &L2Advertisement{Name: "adv", Pools: []string{"gold", "plain", "silver"}},
		},
		{
			name: "named pools",
			spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"silver", "gold"}},
			want: &L2Advertisement{Name: "adv", Pools: []string{"gold", "silver"}},
		},
		{
			name: "selected pools joined with named ones",
			spec: v1beta1.L2AdvertisementSpec{
				IPAddressPools: []string{"plain", "gold"},
				IPAddressPoolSelectors: []metav1.LabelSelector{
					{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"gold", "silver"}}}},
				},
			},
			want: &L2Advertisement{Name: "adv", Pools: []string{"gold", "plain", "silver"}},
		},
		{
			name: "selectors that match nothing select nothing",
			spec: v1beta1.L2AdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "bronze"}}}},
			want: &L2Advertisement{Name: "adv"},
		},
		{
			name: "nodes, interfaces and services",
			spec: v1beta1.L2AdvertisementSpec{
				IPAddressPools:   []string{"gold"},
				NodeSelectors:    []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}},
				Interfaces:       []string{"eth1", "bond0", "eth1"},
				ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "web"}}},
			},
			want: &L2Advertisement{
				Name: "adv", Pools: []string{"gold"},
				NodeSelectors:    []labels.Selector{selector(t, "rack=r1")},
				Interfaces:       []string{"bond0", "eth1"},
				ServiceSelectors: []labels.Selector{selector(t, "app=web")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, Snapshot{
				Pools:            advPools(),
				L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: objectMeta("adv"), Spec: tt.spec}},
			})
			if diff := cmp.Diff([]*L2Advertisement{tt.want}, cfg.L2Advertisements, cmpOpts()); diff != "" {
				t.Errorf("L2Advertisements mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseL2AdvertisementErrors(t *testing.T) {
	tests := []struct {
		name     string
		pools    []v1beta1.IPAddressPool
		spec     v1beta1.L2AdvertisementSpec
		want     []string
		warnings []string
		// pools the advertisement covers
		covers []string
	}{
		{
			name:   "unknown pool is a warning, the others are covered",
			pools:  advPools(),
			spec:   v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"gold", "bronze"}},
			covers: []string{"gold"},
			warnings: []string{
				`L2Advertisement herald-system/adv: spec.ipAddressPools[1] "bronze": no IPAddressPool with this name (known: gold, plain, silver); the advertisement covers its other pools; name an existing pool or create it`,
			},
		},
		{
			name: "unknown pool when there are none",
			spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"gold"}},
			warnings: []string{
				`L2Advertisement herald-system/adv: spec.ipAddressPools[0] "gold": no IPAddressPool with this name (there is no IPAddressPool); the advertisement covers its other pools; name an existing pool or create it`,
			},
		},
		{
			name:  "a pool selector that matches no pool is a warning",
			pools: advPools(),
			spec: v1beta1.L2AdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{"tier": "bronze"}}, {MatchLabels: map[string]string{"tier": "gold"}},
			}},
			covers: []string{"gold"},
			warnings: []string{
				`L2Advertisement herald-system/adv: spec.ipAddressPoolSelectors[0] "tier=bronze": matches no IPAddressPool (known: gold, plain, silver); label a pool to match it, or correct the selector`,
			},
		},
		{
			name:  "a pool that exists but is invalid is skipped without a warning",
			pools: append(advPools(), ipPool("broken", "192.0.2.300/24")),
			spec:  v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"broken", "plain"}},
			want: []string{
				`IPAddressPool herald-system/broken: spec.addresses[0] "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
			},
			covers: []string{"plain"},
		},
		{
			name:  "bad interfaces and selectors",
			pools: advPools(),
			spec: v1beta1.L2AdvertisementSpec{
				Interfaces:             []string{"eth0", "eth0:1", "a-very-long-interface-name"},
				IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "-"}}},
				NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "rack", Operator: metav1.LabelSelectorOpIn},
				}}},
			},
			want: []string{
				`L2Advertisement herald-system/adv: spec.ipAddressPoolSelectors[0].matchLabels[tier] "-": not a valid label selector: values[0][tier]: Invalid value: "-": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
				`L2Advertisement herald-system/adv: spec.nodeSelectors[0].matchExpressions[0] "rack In []": not a valid label selector requirement: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty; use an operator In, NotIn, Exists or DoesNotExist with a valid label key and values`,
				`L2Advertisement herald-system/adv: spec.interfaces[1] "eth0:1": not a valid interface name; use 1 to 15 characters without spaces, '/' or ':', such as eth0`,
				`L2Advertisement herald-system/adv: spec.interfaces[2] "a-very-long-interface-name": not a valid interface name; use 1 to 15 characters without spaces, '/' or ':', such as eth0`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, rep := ParseUsable(Snapshot{
				Pools:            tt.pools,
				L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: objectMeta("adv"), Spec: tt.spec}},
			}, nil)
			if diff := cmp.Diff(tt.want, lines(rep.Errors)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, lines(rep.Warnings)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			var got []string
			for _, a := range cfg.L2Advertisements {
				got = append(got, a.Pools...)
			}
			if diff := cmp.Diff(tt.covers, got); diff != "" {
				t.Errorf("covered pools mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func advPeers() []v1beta1.BGPPeer {
	return []v1beta1.BGPPeer{
		bgpPeer("router-b", 64512, 64513, "198.51.100.2"),
		bgpPeer("router-a", 64512, 64513, "198.51.100.1"),
	}
}

func advCommunities() []v1beta1.Community {
	return []v1beta1.Community{
		{ObjectMeta: objectMeta("second"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
			{Name: "no-export", Value: "65535:65281"},
			{Name: "big", Value: "large:64512:1:2"},
		}}},
		{ObjectMeta: objectMeta("first"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
			{Name: "no-export", Value: "65535:65281"}, // the same value twice is fine
		}}},
	}
}

func TestParseBGPAdvertisements(t *testing.T) {
	tests := []struct {
		name string
		spec v1beta1.BGPAdvertisementSpec
		want *BGPAdvertisement
	}{
		{
			name: "defaults: every pool, every peer, host routes",
			want: &BGPAdvertisement{
				Name: "adv", Pools: []string{"gold", "plain", "silver"}, AggregationLength: 32, AggregationLengthV6: 128,
				Peers: []string{"router-a", "router-b"},
			},
		},
		{
			name: "aggregation as long as the pool's CIDRs",
			spec: v1beta1.BGPAdvertisementSpec{
				IPAddressPools: []string{"gold"}, AggregationLength: ptr[int32](26), AggregationLengthV6: ptr[int32](120),
			},
			want: &BGPAdvertisement{
				Name: "adv", Pools: []string{"gold"}, AggregationLength: 26, AggregationLengthV6: 120,
				Peers: []string{"router-a", "router-b"},
			},
		},
		{
			name: "IPv6 aggregation does not apply to an IPv4-only pool",
			spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"plain"}, AggregationLengthV6: ptr[int32](0)},
			want: &BGPAdvertisement{
				Name: "adv", Pools: []string{"plain"}, AggregationLength: 32, AggregationLengthV6: 0,
				Peers: []string{"router-a", "router-b"},
			},
		},
		{
			name: "communities, aliases resolved and duplicates dropped",
			spec: v1beta1.BGPAdvertisementSpec{
				IPAddressPools: []string{"plain"},
				Communities:    []string{"65000:100", "no-export", "big", "65535:65281", "large:64512:1:2"},
				LocalPref:      ptr[uint32](150),
				Peers:          []string{"router-b"},
			},
			want: &BGPAdvertisement{
				Name: "adv", Pools: []string{"plain"}, AggregationLength: 32, AggregationLengthV6: 128,
				LocalPref: ptr[uint32](150),
				Communities: []Community{
					{Value: 65000<<16 | 100},
					{Value: 65535<<16 | 65281},
					{Large: true, LargeValue: [3]uint32{64512, 1, 2}},
				},
				Peers: []string{"router-b"},
			},
		},
		{
			name: "selectors",
			spec: v1beta1.BGPAdvertisementSpec{
				IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "silver"}}},
				NodeSelectors:          []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}},
				ServiceSelectors:       []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "web"}}},
			},
			want: &BGPAdvertisement{
				Name: "adv", Pools: []string{"silver"}, AggregationLength: 32, AggregationLengthV6: 128,
				Peers:            []string{"router-a", "router-b"},
				NodeSelectors:    []labels.Selector{selector(t, "rack=r1")},
				ServiceSelectors: []labels.Selector{selector(t, "app=web")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, Snapshot{
				Pools:             advPools(),
				Peers:             advPeers(),
				Communities:       advCommunities(),
				BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: objectMeta("adv"), Spec: tt.spec}},
			})
			if diff := cmp.Diff([]*BGPAdvertisement{tt.want}, cfg.BGPAdvertisements, cmpOpts()); diff != "" {
				t.Errorf("BGPAdvertisements mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBGPAdvertisementErrors(t *testing.T) {
	const hint = "use a standard community a:b with 16-bit parts such as 65000:100, or a large one large:a:b:c with 32-bit parts such as large:65000:1:2"
	const narrowed = " (until then this advertisement does not advertise that pool)"
	tests := []struct {
		name        string
		communities []v1beta1.Community
		spec        v1beta1.BGPAdvertisementSpec
		want        []string
		warnings    []string
		// fate of the advertisement, and the pools and peers of the one in force (nil: none)
		fate         Fate
		pools, peers []string
	}{
		{
			name:  "unknown pool and peer are warnings, the rest is advertised",
			spec:  v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bronze", "gold"}, Peers: []string{"router-a", "router-z"}},
			pools: []string{"gold"}, peers: []string{"router-a"},
			warnings: []string{
				`BGPAdvertisement herald-system/adv: spec.ipAddressPools[0] "bronze": no IPAddressPool with this name (known: gold, plain, silver); the advertisement covers its other pools; name an existing pool or create it`,
				`BGPAdvertisement herald-system/adv: spec.peers[1] "router-z": no BGPPeer with this name (known: router-a, router-b); the advertisement goes to its other peers; name an existing peer, or leave peers empty to advertise to every peer`,
			},
		},
		{
			name:  "aggregation shorter than a CIDR of a pool leaves that pool out",
			spec:  v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"gold", "plain"}, AggregationLength: ptr[int32](24), AggregationLengthV6: ptr[int32](64)},
			fate:  FateReduced,
			pools: []string{"plain"}, peers: []string{"router-a", "router-b"},
			want: []string{
				`BGPAdvertisement herald-system/adv: spec.aggregationLength "24": is shorter than 192.0.2.0/26 of IPAddressPool gold, so the aggregate would cover addresses outside the pool; use 26 or more` + narrowed,
				`BGPAdvertisement herald-system/adv: spec.aggregationLengthV6 "64": is shorter than 2001:db8::/120 of IPAddressPool gold, so the aggregate would cover addresses outside the pool; use 120 or more` + narrowed,
			},
		},
		{
			name:  "aggregation of a range is checked against its smallest CIDR",
			spec:  v1beta1.BGPAdvertisementSpec{AggregationLength: ptr[int32](30)},
			fate:  FateReduced,
			pools: []string{"gold", "plain"}, peers: []string{"router-a", "router-b"},
			want: []string{
				`BGPAdvertisement herald-system/adv: spec.aggregationLength "30": is shorter than 198.51.100.20/32 of IPAddressPool silver, so the aggregate would cover addresses outside the pool; use 32 or more` + narrowed,
			},
		},
		{
			name: "aggregation out of bounds",
			spec: v1beta1.BGPAdvertisementSpec{AggregationLength: ptr[int32](33), AggregationLengthV6: ptr[int32](-1)},
			fate: FateLeftOut,
			want: []string{
				`BGPAdvertisement herald-system/adv: spec.aggregationLength "33": must be between 0 and 32 (default 32)`,
				`BGPAdvertisement herald-system/adv: spec.aggregationLengthV6 "-1": must be between 0 and 128 (default 128)`,
			},
		},
		{
			name:        "unknown alias lists the known ones, bad literals",
			communities: advCommunities(),
			spec:        v1beta1.BGPAdvertisementSpec{Communities: []string{"no-export", "no-advertise", "65536:1", "large:1:2"}},
			fate:        FateLeftOut,
			want: []string{
				`BGPAdvertisement herald-system/adv: spec.communities[1] "no-advertise": no Community object declares this alias (known: big, no-export); ` + hint + `, or declare the alias in a Community object`,
				`BGPAdvertisement herald-system/adv: spec.communities[2] "65536:1": not a valid standard community; ` + hint,
				`BGPAdvertisement herald-system/adv: spec.communities[3] "large:1:2": not a valid community; ` + hint,
			},
		},
		{
			name: "unknown alias without any Community object",
			spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"no-export"}},
			fate: FateLeftOut,
			want: []string{
				`BGPAdvertisement herald-system/adv: spec.communities[0] "no-export": no Community object declares this alias (there are no aliases); ` + hint + `, or declare the alias in a Community object`,
			},
		},
		{
			name: "conflicting and bad aliases",
			communities: []v1beta1.Community{
				{ObjectMeta: objectMeta("b"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
					{Name: "blackhole", Value: "65535:666"},
					{Name: "Bad:Name", Value: "1:1"},
					{Name: "broken", Value: "1:1:1"},
				}}},
				{ObjectMeta: objectMeta("a"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
					{Name: "blackhole", Value: "64512:666"},
				}}},
			},
			spec:  v1beta1.BGPAdvertisementSpec{Communities: []string{"blackhole"}},
			pools: []string{"gold", "plain", "silver"}, peers: []string{"router-a", "router-b"},
			want: []string{
				`Community herald-system/b: spec.communities[0].name "blackhole": Community herald-system/a spec.communities[0] declares this alias as 64512:666, this one as 65535:666; an alias has one value and the earlier declaration is used, rename or remove one of them`,
				`Community herald-system/b: spec.communities[1].name "Bad:Name": not a valid alias name; use 1 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, such as no-export-upstream`,
				`Community herald-system/b: spec.communities[2].value "1:1:1": not a valid community; ` + hint,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, rep := ParseUsable(Snapshot{
				Pools:             advPools(),
				Peers:             advPeers(),
				Communities:       tt.communities,
				BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: objectMeta("adv"), Spec: tt.spec}},
			}, nil)
			if diff := cmp.Diff(tt.want, lines(rep.Errors)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, lines(rep.Warnings)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			if got := rep.Fates[ObjectRef{KindBGPAdvertisement, ns, "adv"}]; got != tt.fate {
				t.Errorf("fate = %v, want %v", got, tt.fate)
			}
			var pools, peers []string
			for _, a := range cfg.BGPAdvertisements {
				pools, peers = a.Pools, a.Peers
			}
			if diff := cmp.Diff(tt.pools, pools); diff != "" {
				t.Errorf("pools in force mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.peers, peers); diff != "" {
				t.Errorf("peers in force mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBGPAdvertisementLocalPref(t *testing.T) {
	adv := func(name string, localPref uint32, f func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
		a := v1beta1.BGPAdvertisement{ObjectMeta: objectMeta(name), Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"gold"}, LocalPref: ptr(localPref),
		}}
		if f != nil {
			f(&a.Spec)
		}
		return a
	}
	const why = "routes of the same prefix to the same peer from the same node need one localPref; use the same value, or separate the peers, nodes or services (until then this advertisement does not advertise those pools)"
	tests := []struct {
		name string
		advs []v1beta1.BGPAdvertisement
		want []string
	}{
		{
			name: "same pool, peers and nodes: the later advertisement is reported",
			advs: []v1beta1.BGPAdvertisement{adv("two", 200, nil), adv("one", 100, nil)},
			want: []string{
				`BGPAdvertisement herald-system/two: spec.localPref "200": disagrees with localPref 100 of BGPAdvertisement one, which advertises the same pools (gold) to the same peers (router-a, router-b); ` + why,
			},
		},
		{
			name: "one common peer is enough, and every-node overlaps any node selector",
			advs: []v1beta1.BGPAdvertisement{
				adv("one", 100, func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"router-a"} }),
				adv("two", 200, func(s *v1beta1.BGPAdvertisementSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}
				}),
			},
			want: []string{
				`BGPAdvertisement herald-system/two: spec.localPref "200": disagrees with localPref 100 of BGPAdvertisement one, which advertises the same pools (gold) to the same peers (router-a); ` + why,
			},
		},
		{
			name: "the same localPref is fine",
			advs: []v1beta1.BGPAdvertisement{adv("one", 100, nil), adv("two", 100, nil)},
		},
		{
			name: "an unset localPref does not conflict",
			advs: []v1beta1.BGPAdvertisement{adv("one", 100, nil), adv("two", 0, func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = nil })},
		},
		{
			name: "different peers",
			advs: []v1beta1.BGPAdvertisement{
				adv("one", 100, func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"router-a"} }),
				adv("two", 200, func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = []string{"router-b"} }),
			},
		},
		{
			name: "different node selectors",
			advs: []v1beta1.BGPAdvertisement{
				adv("one", 100, func(s *v1beta1.BGPAdvertisementSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}
				}),
				adv("two", 200, func(s *v1beta1.BGPAdvertisementSpec) {
					s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r2"}}}
				}),
			},
		},
		{
			name: "different pools",
			advs: []v1beta1.BGPAdvertisement{
				adv("one", 100, nil),
				adv("two", 200, func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"silver"} }),
			},
		},
		{
			name: "different aggregation lengths announce different prefixes",
			advs: []v1beta1.BGPAdvertisement{
				adv("one", 100, nil),
				adv("two", 200, func(s *v1beta1.BGPAdvertisementSpec) {
					s.AggregationLength = ptr[int32](26)
					s.AggregationLengthV6 = ptr[int32](120)
				}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Snapshot{Pools: advPools(), Peers: advPeers(), BGPAdvertisements: tt.advs})
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
