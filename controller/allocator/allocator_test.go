package allocator

import (
	"testing"
)

func TestPoolChoice(t *testing.T) {
	gold := map[string]string{"tier": "gold"}
	pools := []Pool{
		pool("b-open", cidr("10.0.2.0/31")),
		pool("a-open", cidr("10.0.1.0/31")),
		{Name: "r-low", Ranges: []Range{cidr("10.0.3.0/31")}, AutoAssign: true, Restricted: true, Priority: 10, Match: labelIs("tier", "gold")},
		{Name: "r-high", Ranges: []Range{cidr("10.0.4.0/31")}, AutoAssign: true, Restricted: true, Priority: 1, Match: labelIs("tier", "gold")},
		{Name: "r-aaa", Ranges: []Range{cidr("10.0.5.0/31")}, AutoAssign: true, Restricted: true, Priority: 10, Match: labelIs("tier", "gold")},
		{Name: "manual", Ranges: []Range{cidr("10.0.6.0/31")}},
		{Name: "picky", Ranges: []Range{cidr("10.0.7.0/31")}, AutoAssign: true, Match: labelIs("team", "x")},
	}
	tests := []struct {
		name  string
		pools []Pool
		steps []step
	}{
		{
			name:  "unrestricted pools by name",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.1.0@a-open"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.1.1@a-open"}},
				{svc: Service{Key: "ns/c"}, want: []string{"10.0.2.0@b-open"}},
			},
		},
		{
			name:  "restricted pools by priority then name, then unrestricted",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/g1", Labels: gold}, want: []string{"10.0.4.0@r-high"}},
				{svc: Service{Key: "ns/g2", Labels: gold}, want: []string{"10.0.4.1@r-high"}},
				{svc: Service{Key: "ns/g3", Labels: gold}, want: []string{"10.0.5.0@r-aaa"}},
				{svc: Service{Key: "ns/g4", Labels: gold}, want: []string{"10.0.5.1@r-aaa"}},
				{svc: Service{Key: "ns/g5", Labels: gold}, want: []string{"10.0.3.0@r-low"}},
				{svc: Service{Key: "ns/g6", Labels: gold}, want: []string{"10.0.3.1@r-low"}},
				{svc: Service{Key: "ns/g7", Labels: gold}, want: []string{"10.0.1.0@a-open"}},
			},
		},
		{
			name:  "unrestricted pool with a selector",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/x", Labels: map[string]string{"team": "x"}, Pool: "picky"}, want: []string{"10.0.7.0@picky"}},
				{svc: Service{Key: "ns/y", Pool: "picky"}, err: ErrPoolNotAllowed, errMsg: `pool "picky" may not serve ns/y: the pool's serviceAllocation does not select it`},
			},
		},
		{
			name:  "requested pool, even without autoAssign",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/a", Pool: "manual"}, want: []string{"10.0.6.0@manual"}},
				{svc: Service{Key: "ns/b", Pool: "manual"}, want: []string{"10.0.6.1@manual"}},
				{svc: Service{Key: "ns/c", Pool: "manual"}, err: ErrPoolFull, errMsg: `no IPv4 address for ns/c: pool "manual" is full: 2 of 2 IPv4 addresses in use`},
			},
		},
		{
			name:  "requested pool does not exist",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/a", Pool: "nope"}, err: ErrNoPool, errMsg: `the Service's pool "nope" does not exist`},
			},
		},
		{
			name:  "requested restricted pool that does not select the service",
			pools: pools,
			steps: []step{
				{svc: Service{Key: "ns/a", Pool: "r-high"}, err: ErrPoolNotAllowed, errMsg: `pool "r-high" may not serve ns/a`},
			},
		},
		{
			name: "no eligible pool says why",
			pools: []Pool{
				{Name: "manual", Ranges: []Range{cidr("10.0.6.0/31")}},
				{Name: "r", Ranges: []Range{cidr("10.0.3.0/31")}, AutoAssign: true, Restricted: true, Match: labelIs("tier", "gold")},
			},
			steps: []step{
				{svc: Service{Key: "ns/a"}, err: ErrNoPool, errMsg: `no pool can serve ns/a: the serviceAllocation of pool "r" does not select it; pool "manual" has autoAssign false`},
			},
		},
		{
			name:  "no pools",
			steps: []step{{svc: Service{Key: "ns/a"}, err: ErrNoPool, errMsg: "no pools are configured"}},
		},
		{
			name:  "every candidate full",
			pools: []Pool{pool("a", cidr("10.0.0.0/32")), pool("b", cidr("10.0.1.0/32"))},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.1.0@b"}},
				{svc: Service{Key: "ns/c"}, err: ErrPoolFull, errMsg: `pool "a" is full: 1 of 1 IPv4 addresses in use; pool "b" is full: 1 of 1 IPv4 addresses in use`},
			},
		},
		{
			name:  "no candidate has the family",
			pools: []Pool{pool("a", cidr("10.0.0.0/30"))},
			steps: []step{
				{svc: Service{Key: "ns/a", Families: []Family{IPv6}}, err: ErrNoPool, errMsg: `no IPv6 address for ns/a: pool "a" has no IPv6 addresses`},
			},
		},
		{
			name:  "avoid buggy IPs",
			pools: []Pool{{Name: "a", Ranges: []Range{span("10.0.0.254", "10.0.1.1")}, AutoAssign: true, AvoidBuggyIPs: true}},
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.254@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.1.1@a"}},
				{svc: Service{Key: "ns/c"}, err: ErrPoolFull, errMsg: "2 of 2"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, tc.pools, tc.steps) })
	}
}

func TestRequestedIPs(t *testing.T) {
	pools := []Pool{
		pool("a", cidr("10.0.0.0/30"), cidr("fd00::/126")),
		{Name: "manual", Ranges: []Range{cidr("10.0.6.0/30")}},
		{Name: "r", Ranges: []Range{cidr("10.0.3.0/30")}, AutoAssign: true, Restricted: true, Match: labelIs("tier", "gold")},
		{Name: "buggy", Ranges: []Range{cidr("10.0.8.0/24")}, AutoAssign: true, AvoidBuggyIPs: true},
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name:  "requested IP in a pool without autoAssign",
			steps: []step{{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.6.2")}, want: []string{"10.0.6.2@manual"}}},
		},
		{
			name:  "requested IP outside every pool",
			steps: []step{{svc: Service{Key: "ns/a", RequestedIPs: addrs("192.0.2.5")}, err: ErrNotInPool, errMsg: "192.0.2.5 is not in any pool"}},
		},
		{
			name: "requested IP in a pool the service may not use",
			steps: []step{{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.3.1")}, err: ErrPoolNotAllowed,
				errMsg: `requested address 10.0.3.1: pool "r" may not serve ns/a`}},
		},
		{
			name: "requested IP in another pool than the requested pool",
			steps: []step{{svc: Service{Key: "ns/a", Pool: "manual", RequestedIPs: addrs("10.0.0.1")}, err: ErrPoolNotAllowed,
				errMsg: `pool "a" may not serve ns/a, whose pool is "manual"`}},
		},
		{
			name: "requested IP in use",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", RequestedIPs: addrs("10.0.0.0")}, err: ErrInUse, errMsg: "10.0.0.0 is in use by ns/a, which does not share it"},
			},
		},
		{
			name:  "requested buggy IP",
			steps: []step{{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.8.255")}, err: ErrNotInPool, errMsg: `10.0.8.255 is in a range of pool "buggy" but is never handed out`}},
		},
		{
			name:  "requested IP of a family the service lacks",
			steps: []step{{svc: Service{Key: "ns/a", Families: []Family{IPv4}, RequestedIPs: addrs("fd00::1")}, err: ErrInvalidRequest, errMsg: "requested address fd00::1 is IPv6 but ipFamilies is [IPv4]"}},
		},
		{
			name:  "two requested IPs of one family",
			steps: []step{{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.0.1", "10.0.0.2")}, err: ErrInvalidRequest, errMsg: "two IPv4 addresses"}},
		},
		{
			name: "changing the requested IP moves the service",
			steps: []step{
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.0.1")}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.0.2")}, want: []string{"10.0.0.2@a"}, rel: []string{"ns/a 10.0.0.1@a"}},
				{svc: Service{Key: "ns/b", RequestedIPs: addrs("10.0.0.1")}, want: []string{"10.0.0.1@a"}},
			},
		},
		{
			name: "a failed request keeps nothing new and reports what was released",
			steps: []step{
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.0.1")}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/a", RequestedIPs: addrs("192.0.2.1")}, rel: []string{"ns/a 10.0.0.1@a"}, err: ErrNotInPool},
			},
		},
		{
			name: "requesting both families",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, Families: []Family{IPv6, IPv4}, RequestedIPs: addrs("10.0.0.3", "fd00::3")},
					want: []string{"fd00::3@a", "10.0.0.3@a"}},
			},
		},
		{
			name: "RequireDualStack with one requested IP",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, RequestedIPs: addrs("10.0.0.3")}, err: ErrInvalidRequest, errMsg: "request one address per family, or none"},
			},
		},
		{
			name: "RequireDualStack with one bad requested IP assigns nothing",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, RequestedIPs: addrs("10.0.0.3", "fd99::1")}, err: ErrNotInPool, errMsg: "fd99::1 is not in any pool"},
			},
		},
		{
			name: "PreferDualStack with one requested IP gets only that one",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"10.0.0.0@a", "fd00::@a"}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack, RequestedIPs: addrs("10.0.0.0")}, want: []string{"10.0.0.0@a"}, rel: []string{"ns/a fd00::@a"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, pools, tc.steps) })
	}
}

func TestSharing(t *testing.T) {
	pools := []Pool{pool("a", cidr("10.0.0.0/31")), pool("b", cidr("10.0.1.0/31"))}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "same key, different ports: auto-assign reuses the address",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/c", SharingKey: "k", Ports: []Port{{Port: 80, Protocol: "udp"}}}, want: []string{"10.0.0.0@a"}},
			},
		},
		{
			name: "same key, same port: auto-assign takes another address",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/c", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
			},
		},
		{
			name: "requested shared address with a port conflict",
			steps: []step{
				{svc: Service{Key: "ns/other", SharingKey: "k", Ports: tcp(80, 8080)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: []Port{{Port: 80}}, RequestedIPs: addrs("10.0.0.0")}, err: ErrSharingConflict,
					errMsg: `port 80/TCP is already used by ns/other on 10.0.0.0 under sharing key "k"`},
			},
		},
		{
			name: "different keys",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k1", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k2", Ports: tcp(443), RequestedIPs: addrs("10.0.0.0")}, err: ErrInUse,
					errMsg: `10.0.0.0 is in use by ns/a under sharing key "k1", not "k2"`},
				{svc: Service{Key: "ns/c", Ports: tcp(443), RequestedIPs: addrs("10.0.0.0")}, err: ErrInUse,
					errMsg: `set the Service's sharing key to "k1" to share it`},
				{svc: Service{Key: "ns/d", SharingKey: "k2", Ports: tcp(443)}, want: []string{"10.0.0.1@a"}},
			},
		},
		{
			name: "externalTrafficPolicy Local needs the same selector",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80), ExternalTrafficPolicyLocal: true, Selector: "app=x"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443), ExternalTrafficPolicyLocal: true, Selector: "app=x"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/c", SharingKey: "k", Ports: tcp(444), ExternalTrafficPolicyLocal: true, Selector: "app=y", RequestedIPs: addrs("10.0.0.0")},
					err: ErrSharingConflict, errMsg: `they must select the same pods, but their selectors differ ("app=y" and "app=x")`},
				{svc: Service{Key: "ns/d", SharingKey: "k", Ports: tcp(445), RequestedIPs: addrs("10.0.0.0")},
					err: ErrSharingConflict, errMsg: "ns/a has externalTrafficPolicy Local and ns/d Cluster"},
				{svc: Service{Key: "ns/e", SharingKey: "k", Ports: tcp(445), ExternalTrafficPolicyLocal: true, Selector: "app=y"}, want: []string{"10.0.0.1@a"}},
			},
		},
		{
			name: "a full pool still serves a compatible sharer",
			steps: []step{
				{svc: Service{Key: "ns/a", Pool: "b", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.1.0@b"}},
				{svc: Service{Key: "ns/b", Pool: "b"}, want: []string{"10.0.1.1@b"}},
				{svc: Service{Key: "ns/c", Pool: "b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.1.0@b"}},
				{svc: Service{Key: "ns/d", Pool: "b", SharingKey: "k", Ports: tcp(80)}, err: ErrSharingConflict,
					errMsg: `pool "b" is full: 2 of 2 IPv4 addresses in use, and the address held under sharing key "k" cannot be shared: port 80/TCP is already used by ns/a on 10.0.1.0`},
			},
		},
		{
			name: "releasing one sharer keeps the address for the other",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/c", Ports: tcp(80)}, want: []string{"10.0.0.1@a"}},
			},
		},
		{
			name: "a sharer whose ports start to overlap moves",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443, 80)}, want: []string{"10.0.0.1@a"}, rel: []string{"ns/b 10.0.0.0@a"}},
			},
		},
		{
			name: "a sole holder may take a sharing key, then be joined",
			steps: []step{
				{svc: Service{Key: "ns/a", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, want: []string{"10.0.0.0@a"}},
				// Dropping the key while shared is a conflict: ns/a moves.
				{svc: Service{Key: "ns/a", Ports: tcp(80)}, want: []string{"10.0.0.1@a"}, rel: []string{"ns/a 10.0.0.0@a"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, pools, tc.steps) })
	}
}
