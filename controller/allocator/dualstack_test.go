package allocator

import "testing"

func TestDualStack(t *testing.T) {
	pools := []Pool{
		pool("dual", cidr("10.0.0.0/31"), cidr("fd00::/127")),
		pool("v4only", cidr("10.1.0.0/31")),
		pool("v6only", cidr("fd01::/127")),
	}
	v6 := []Family{IPv6}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "SingleStack IPv6",
			steps: []step{
				{svc: Service{Key: "ns/a", Families: v6}, want: []string{"fd00::@dual"}},
				{svc: Service{Key: "ns/b", FamilyPolicy: SingleStack, Families: v6}, want: []string{"fd00::1@dual"}},
				{svc: Service{Key: "ns/c", Families: v6}, want: []string{"fd01::@v6only"}},
			},
		},
		{
			name: "RequireDualStack, primary first",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, Families: []Family{IPv4, IPv6}}, want: []string{"10.0.0.0@dual", "fd00::@dual"}},
				{svc: Service{Key: "ns/b", FamilyPolicy: RequireDualStack, Families: []Family{IPv6, IPv4}}, want: []string{"fd00::1@dual", "10.0.0.1@dual"}},
				{svc: Service{Key: "ns/c", FamilyPolicy: RequireDualStack}, err: ErrPoolFull,
					errMsg: `no IPv4 and IPv6 address for ns/c: pool "dual" is full: 2 of 2 IPv4 addresses in use; pool "dual" is full: 2 of 2 IPv6 addresses in use; pool "v4only" has no IPv6 addresses; pool "v6only" has no IPv4 addresses`},
			},
		},
		{
			name: "RequireDualStack assigns nothing when one family is missing",
			steps: []step{
				{svc: Service{Key: "ns/x", Families: v6}, want: []string{"fd00::@dual"}},
				{svc: Service{Key: "ns/y", Families: v6}, want: []string{"fd00::1@dual"}},
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack}, err: ErrPoolFull},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.0@dual"}},
			},
		},
		{
			name: "PreferDualStack assigns what it can, and adds the family when the pool gains it",
			steps: []step{
				{svc: Service{Key: "ns/x", Families: v6}, want: []string{"fd00::@dual"}},
				{svc: Service{Key: "ns/y", Families: v6}, want: []string{"fd00::1@dual"}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"10.0.0.0@dual"}, missing: []Family{IPv6}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{
					pool("dual", cidr("10.0.0.0/31"), cidr("fd00::/127"), cidr("fd00::10/128")),
					pool("v4only", cidr("10.1.0.0/31")),
					pool("v6only", cidr("fd01::/127")),
				}, want: []string{"10.0.0.0@dual"}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"10.0.0.0@dual", "fd00::10@dual"}},
			},
		},
		{
			name: "PreferDualStack prefers a pool with both families",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack, Families: []Family{IPv6, IPv4}}, want: []string{"fd00::@dual", "10.0.0.0@dual"}},
			},
		},
		{
			name: "PreferDualStack follows pool order rather than seek both families",
			steps: []step{
				{op: "pools", pools: []Pool{
					pool("dual", cidr("10.0.0.0/31"), cidr("fd00::/127")),
					{Name: "r4", Ranges: []Range{cidr("10.2.0.0/31")}, AutoAssign: true, Restricted: true, Priority: 1},
				}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"10.2.0.0@r4"}, missing: []Family{IPv6}},
				{svc: Service{Key: "ns/b", FamilyPolicy: RequireDualStack}, want: []string{"10.0.0.0@dual", "fd00::@dual"}},
			},
		},
		{
			name: "PreferDualStack stays in the pool it holds an address of",
			steps: []step{
				{svc: Service{Key: "ns/a", Pool: "v4only", FamilyPolicy: PreferDualStack}, want: []string{"10.1.0.0@v4only"}, missing: []Family{IPv6}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"10.1.0.0@v4only"}, missing: []Family{IPv6}},
			},
		},
		{
			name: "PreferDualStack in a single-stack cluster",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack, Families: []Family{IPv4}}, want: []string{"10.0.0.0@dual"}},
			},
		},
		{
			name: "PreferDualStack with the secondary family only",
			steps: []step{
				{svc: Service{Key: "ns/x"}, want: []string{"10.0.0.0@dual"}},
				{svc: Service{Key: "ns/y"}, want: []string{"10.0.0.1@dual"}},
				{svc: Service{Key: "ns/z"}, want: []string{"10.1.0.0@v4only"}},
				{svc: Service{Key: "ns/w"}, want: []string{"10.1.0.1@v4only"}},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack}, want: []string{"fd00::@dual"}, missing: []Family{IPv4}},
			},
		},
		{
			name: "going back to SingleStack releases the second family",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack}, want: []string{"10.0.0.0@dual", "fd00::@dual"}},
				{svc: Service{Key: "ns/a", Families: []Family{IPv4}}, want: []string{"10.0.0.0@dual"}, rel: []string{"ns/a fd00::@dual"}},
			},
		},
		{
			name: "invalid family combinations",
			steps: []step{
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, Families: []Family{IPv4}}, err: ErrInvalidRequest, errMsg: "RequireDualStack needs both IP families, ipFamilies is [IPv4]"},
				{svc: Service{Key: "ns/a", Families: []Family{IPv4, IPv6}}, err: ErrInvalidRequest, errMsg: "SingleStack needs exactly one IP family"},
				{svc: Service{Key: "ns/a", FamilyPolicy: "Both"}, err: ErrInvalidRequest, errMsg: `unknown ipFamilyPolicy "Both"`},
				{svc: Service{Key: "ns/a", FamilyPolicy: PreferDualStack, Families: []Family{IPv4, IPv4}}, err: ErrInvalidRequest, errMsg: "lists IPv4 twice"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, pools, tc.steps) })
	}
}

func TestStickiness(t *testing.T) {
	gold := map[string]string{"tier": "gold"}
	pools := []Pool{
		pool("a", cidr("10.0.0.0/29")),
		{Name: "r", Ranges: []Range{cidr("10.0.3.0/30")}, AutoAssign: true, Restricted: true, Match: labelIs("tier", "gold")},
		{Name: "manual", Ranges: []Range{cidr("10.0.6.0/30")}},
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "assign again keeps the address",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/a", Ports: tcp(80)}, want: []string{"10.0.0.0@a"}},
			},
		},
		{
			name: "next fit does not reuse a released address at once",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 10.0.0.0@a"}},
				{svc: Service{Key: "ns/c"}, want: []string{"10.0.0.2@a"}},
				{op: "release", svc: Service{Key: "ns/nobody"}},
			},
		},
		{
			name: "next fit wraps around and jumps over runs",
			steps: []step{
				{svc: Service{Key: "ns/0"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/1"}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/2"}, want: []string{"10.0.0.2@a"}},
				{svc: Service{Key: "ns/3"}, want: []string{"10.0.0.3@a"}},
				{svc: Service{Key: "ns/4"}, want: []string{"10.0.0.4@a"}},
				{svc: Service{Key: "ns/5"}, want: []string{"10.0.0.5@a"}},
				{svc: Service{Key: "ns/6"}, want: []string{"10.0.0.6@a"}},
				{svc: Service{Key: "ns/7"}, want: []string{"10.0.0.7@a"}},
				{op: "release", svc: Service{Key: "ns/3"}, rel: []string{"ns/3 10.0.0.3@a"}},
				{op: "release", svc: Service{Key: "ns/5"}, rel: []string{"ns/5 10.0.0.5@a"}},
				{svc: Service{Key: "ns/8"}, want: []string{"10.0.0.3@a"}},
				{svc: Service{Key: "ns/9"}, want: []string{"10.0.0.5@a"}},
			},
		},
		{
			name: "next fit wraps after jumping a run that reaches the end",
			steps: []step{
				{svc: Service{Key: "ns/0"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/1"}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/2"}, want: []string{"10.0.0.2@a"}},
				{svc: Service{Key: "ns/3"}, want: []string{"10.0.0.3@a"}},
				{op: "reserve", svc: Service{Key: "ns/4"}, ips: addrs("10.0.0.4"), want: []string{"10.0.0.4@a"}},
				{op: "reserve", svc: Service{Key: "ns/5"}, ips: addrs("10.0.0.5"), want: []string{"10.0.0.5@a"}},
				{op: "reserve", svc: Service{Key: "ns/6"}, ips: addrs("10.0.0.6"), want: []string{"10.0.0.6@a"}},
				{op: "reserve", svc: Service{Key: "ns/7"}, ips: addrs("10.0.0.7"), want: []string{"10.0.0.7@a"}},
				{op: "release", svc: Service{Key: "ns/2"}, rel: []string{"ns/2 10.0.0.2@a"}},
				{svc: Service{Key: "ns/8"}, want: []string{"10.0.0.2@a"}},
				{op: "release", svc: Service{Key: "ns/0"}, rel: []string{"ns/0 10.0.0.0@a"}},
				{svc: Service{Key: "ns/9"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/10"}, err: ErrPoolFull, errMsg: `pool "a" is full: 8 of 8 IPv4 addresses in use`},
			},
		},
		{
			name: "a service that stops matching its restricted pool moves",
			steps: []step{
				{svc: Service{Key: "ns/a", Labels: gold}, want: []string{"10.0.3.0@r"}},
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}, rel: []string{"ns/a 10.0.3.0@r"}},
			},
		},
		{
			name: "a service that starts matching a better pool stays",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a", Labels: gold}, want: []string{"10.0.0.0@a"}},
			},
		},
		{
			name: "changing the requested pool moves the service",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a", Pool: "manual"}, want: []string{"10.0.6.0@manual"}, rel: []string{"ns/a 10.0.0.0@a"}},
				// Dropping the request keeps the address: the pool may still serve the Service.
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.6.0@manual"}},
			},
		},
		{
			name: "invalid service description changes nothing",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a", Ports: []Port{{Port: 80, Protocol: "ICMP"}}}, want: []string{"10.0.0.0@a"}, err: ErrInvalidRequest, errMsg: `port 80 has protocol "ICMP"`},
				{svc: Service{Key: "ns/a", Ports: []Port{{Port: 0}}}, want: []string{"10.0.0.0@a"}, err: ErrInvalidRequest, errMsg: "out of range"},
				{svc: Service{}, err: ErrInvalidRequest, errMsg: "empty key"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, pools, tc.steps) })
	}
}
