package allocator

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReserve(t *testing.T) {
	pools := []Pool{
		pool("a", cidr("10.0.0.0/29"), cidr("fd00::/126")),
		{Name: "r", Ranges: []Range{cidr("10.0.3.0/30")}, AutoAssign: true, Restricted: true, Match: labelIs("tier", "gold")},
		{Name: "buggy", Ranges: []Range{cidr("10.0.8.0/24")}, AutoAssign: true, AvoidBuggyIPs: true},
	}
	dual := []Family{IPv4, IPv6}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "valid addresses are kept, invalid ones reported",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, Families: dual}, ips: addrs("10.0.0.5", "fd99::1"),
					want: []string{"10.0.0.5@a"}, err: ErrNotInPool, errMsg: "restoring fd99::1 for ns/a: fd99::1 is not in any pool"},
				{svc: Service{Key: "ns/a", FamilyPolicy: RequireDualStack, Families: dual}, want: []string{"10.0.0.5@a", "fd00::@a"}},
			},
		},
		{
			name: "restoring does not move the search cursor",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a"}, ips: addrs("10.0.0.1"), want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/c"}, want: []string{"10.0.0.2@a"}},
			},
		},
		{
			name: "conflicts name the other service",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a"}, ips: addrs("10.0.0.1"), want: []string{"10.0.0.1@a"}},
				{op: "reserve", svc: Service{Key: "ns/b"}, ips: addrs("10.0.0.1"), err: ErrInUse, errMsg: "10.0.0.1 is in use by ns/a"},
			},
		},
		{
			name: "sharers restore the same address",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80)}, ips: addrs("10.0.0.1"), want: []string{"10.0.0.1@a"}},
				{op: "reserve", svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(443)}, ips: addrs("10.0.0.1"), want: []string{"10.0.0.1@a"}},
				{op: "reserve", svc: Service{Key: "ns/c", SharingKey: "k", Ports: tcp(443)}, ips: addrs("10.0.0.1"), err: ErrSharingConflict, errMsg: "port 443/TCP is already used by ns/b"},
			},
		},
		{
			name: "address of a family the service does not want",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a"}, ips: addrs("fd00::1"), err: ErrInvalidRequest, errMsg: "the address is IPv6 but ipFamilies is [IPv4]"},
			},
		},
		{
			name: "address other than the requested one",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a", RequestedIPs: addrs("10.0.0.2")}, ips: addrs("10.0.0.1"), err: ErrInvalidRequest, errMsg: "the Service requests [10.0.0.2] instead"},
			},
		},
		{
			name: "two addresses of one family",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a"}, ips: addrs("10.0.0.1", "10.0.0.2", "10.0.0.1"), want: []string{"10.0.0.1@a"},
					err: ErrInvalidRequest, errMsg: "the Service already holds IPv4 address 10.0.0.1"},
			},
		},
		{
			name: "a restored buggy address is kept, a requested one refused",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/b"}, ips: addrs("10.0.8.0"), want: []string{"10.0.8.0@buggy"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.8.0@buggy"}},
				{svc: Service{Key: "ns/c", RequestedIPs: addrs("10.0.8.255")}, err: ErrNotInPool, errMsg: "10.0.8.255 is in a range of pool \"buggy\" but is never handed out: the pool has avoidBuggyIPs"},
			},
		},
		{
			name: "restricted pool",
			steps: []step{
				{op: "reserve", svc: Service{Key: "ns/a"}, ips: addrs("10.0.3.1"), err: ErrPoolNotAllowed, errMsg: `pool "r" may not serve ns/a`},
				{op: "reserve", svc: Service{Key: "ns/a", Labels: map[string]string{"tier": "gold"}}, ips: addrs("10.0.3.1"), want: []string{"10.0.3.1@r"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, pools, tc.steps) })
	}
}

func TestSetPools(t *testing.T) {
	gold := map[string]string{"tier": "gold"}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "shrinking a pool releases what falls out, with the old pool",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
				{svc: Service{Key: "ns/c", Families: []Family{IPv6}}, want: []string{"fd00::@a"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{pool("a", cidr("10.0.0.0/32")), pool("z", cidr("fd00::/127"))},
					want: []string{"10.0.0.0@a"}, rel: []string{"ns/b 10.0.0.1@a"}},
				{op: "pools", svc: Service{Key: "ns/c"}, pools: []Pool{pool("a", cidr("10.0.0.0/32")), pool("z", cidr("fd00::/127"))}, want: []string{"fd00::@z"}},
			},
		},
		{
			name: "a pool that stops selecting the service",
			steps: []step{
				{svc: Service{Key: "ns/a", Labels: gold}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
				{op: "pools", pools: []Pool{{Name: "a", Ranges: []Range{cidr("10.0.0.0/30")}, Restricted: true, Match: labelIs("tier", "gold")}},
					rel: []string{"ns/b 10.0.0.1@a"}},
			},
		},
		{
			name: "renaming a pool keeps addresses unless the service named it",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", Pool: "a"}, want: []string{"10.0.0.1@a"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{pool("b", cidr("10.0.0.0/30"))}, want: []string{"10.0.0.0@b"}, rel: []string{"ns/b 10.0.0.1@a"}},
			},
		},
		{
			name: "turning on AvoidBuggyIPs keeps .0 with its Service; once free it is skipped",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{{Name: "a", Ranges: []Range{cidr("10.0.0.0/30")}, AutoAssign: true, AvoidBuggyIPs: true}},
					want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 10.0.0.0@a"}},
				{svc: Service{Key: "ns/c"}, want: []string{"10.0.0.2@a"}},
				{svc: Service{Key: "ns/d"}, want: []string{"10.0.0.3@a"}},
				{svc: Service{Key: "ns/e"}, err: ErrPoolFull},
			},
		},
		{
			name: "a shared address is released only for the service that lost the pool",
			steps: []step{
				{svc: Service{Key: "ns/a", SharingKey: "k", Ports: tcp(80), Labels: gold}, want: []string{"10.0.0.0@a"}},
				{svc: Service{Key: "ns/b", SharingKey: "k", Ports: tcp(81)}, want: []string{"10.0.0.0@a"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{{Name: "a", Ranges: []Range{cidr("10.0.0.0/30")}, Restricted: true, Match: labelIs("tier", "gold")}},
					want: []string{"10.0.0.0@a"}, rel: []string{"ns/b 10.0.0.0@a"}},
			},
		},
		{
			name: "invalid pools change nothing",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{op: "pools", svc: Service{Key: "ns/a"}, pools: []Pool{pool("x", cidr("10.0.0.0/30")), pool("y", cidr("10.0.0.2/31"))},
					want: []string{"10.0.0.0@a"}, err: ErrInvalidPool, errMsg: `pools "x" and "y" overlap: 10.0.0.0-10.0.0.3 and 10.0.0.2-10.0.0.3`},
			},
		},
		{
			name: "an unchanged pool keeps its search cursor",
			steps: []step{
				{svc: Service{Key: "ns/a"}, want: []string{"10.0.0.0@a"}},
				{op: "release", svc: Service{Key: "ns/a"}, rel: []string{"ns/a 10.0.0.0@a"}},
				{op: "pools", pools: []Pool{pool("a", cidr("10.0.0.0/30")), pool("b", cidr("10.0.1.0/30"))}},
				{svc: Service{Key: "ns/b"}, want: []string{"10.0.0.1@a"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, []Pool{pool("a", cidr("10.0.0.0/30"), cidr("fd00::/127"))}, tc.steps) })
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		pools []Pool
		want  []string // every line of the error
	}{
		{
			name:  "overlap inside a pool",
			pools: []Pool{pool("a", cidr("10.0.0.0/24"), span("10.0.0.200", "10.0.1.5"))},
			want:  []string{`creating allocator: pool "a": ranges 10.0.0.0-10.0.0.255 and 10.0.0.200-10.0.1.5 overlap`},
		},
		{
			name: "several problems at once",
			pools: []Pool{
				pool("", cidr("10.0.0.0/24")),
				pool("a", span("10.0.0.5", "10.0.0.1"), span("10.0.0.1", "fd00::1")),
				pool("a", cidr("10.0.0.0/24")),
				pool("big", cidr("::/1"), cidr("8000::/1")),
			},
			want: []string{
				"creating allocator: a pool has an empty name",
				`pool "a": range 10.0.0.5-10.0.0.1: the first address is after the last`,
				`pool "a": range 10.0.0.1-fd00::1: mixes IPv4 and IPv6`,
				`pool "a" is given twice`,
				`pool "big" holds 2^128 IPv6 addresses, more than the allocator counts`,
			},
		},
		{
			name:  "zone and mapped addresses",
			pools: []Pool{pool("a", span("fe80::1%eth0", "fe80::2%eth0")), pool("b", span("::ffff:10.0.0.1", "::ffff:10.0.0.2"))},
			want: []string{
				`creating allocator: pool "a": range fe80::1%eth0-fe80::2%eth0: fe80::1%eth0 has an IPv6 zone`,
				`pool "b": range ::ffff:10.0.0.1-::ffff:10.0.0.2: ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address: write it as 10.0.0.1`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.pools)
			if !errors.Is(err, ErrInvalidPool) {
				t.Fatalf("New: %v, want ErrInvalidPool", err)
			}
			if diff := cmp.Diff(tc.want, splitLines(err.Error())); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
