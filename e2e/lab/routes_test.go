package lab

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckOverlap(t *testing.T) {
	// The routes of the machine this lab was written on.
	host := []HostRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("fd00::/64"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("::/0"), Dev: "eth0"},
	}
	tests := []struct {
		name string
		lab  []string
		want bool // overlap
	}{
		{"the lab's ranges", []string{"198.51.100.0/25", "198.51.100.128/26", "2001:db8:1::/64", "198.51.100.192/28"}, false},
		{"the uplink's range", []string{"192.0.2.0/25"}, true},
		{"a larger range around the uplink", []string{"192.0.0.0/16"}, true},
		{"the uplink's IPv6 range", []string{"fd00::/48"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tc.lab {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			err := CheckOverlap(ps, host)
			if got := errors.Is(err, ErrOverlap); got != tc.want {
				t.Errorf("CheckOverlap(%v) = %v, want overlap %v", tc.lab, err, tc.want)
			}
		})
	}
}

func TestParseRoutes(t *testing.T) {
	in := `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},{"dst":"203.0.113.7","dev":"eth1"}]`
	got, err := parseRoutes([]byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []HostRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("192.0.2.0/24"), Dev: "eth0"},
		{Dst: netip.MustParsePrefix("203.0.113.7/32"), Dev: "eth1"},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
