package ipset

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUint128(t *testing.T) {
	tests := []struct {
		name string
		u    Uint128
		want string
	}{
		{"zero", Uint128{}, "0"},
		{"max64", Uint128{0, ^uint64(0)}, "18446744073709551615"},
		{"2^64", Uint128{1, 0}, "18446744073709551616"},
		{"max", Uint128{^uint64(0), ^uint64(0)}, "340282366920938463463374607431768211455"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.u.String()); diff != "" {
				t.Errorf("String (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, tc.u.Big().String()); diff != "" {
				t.Errorf("Big (-want +got):\n%s", diff)
			}
		})
	}
	if got, _ := (Uint128{1, 0}).DivMod64(10); got.String() != "1844674407370955161" {
		t.Errorf("2^64/10 = %s", got)
	}
}

func TestAddr(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "192.0.2.1", "255.255.255.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		a := netip.MustParseAddr(s)
		if got := FromAddr(a).Addr(a.Is4()); got != a {
			t.Errorf("FromAddr(%s).Addr = %s", a, got)
		}
	}
	if got := FromAddr(netip.MustParseAddr("0.0.1.2")); got != From64(258) {
		t.Errorf("FromAddr(0.0.1.2) = %s, want 258", got)
	}
}
