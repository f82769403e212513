package netdev

import "testing"

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"red", true}, {"vrf-blue_1.2", true}, {"0abc", true}, {"fifteen-chars-x", true},
		{"", false}, {"sixteen-chars-xx", false}, {"-red", false}, {".red", false},
		{"red/blue", false}, {"red:1", false}, {"red blue", false}, {"rød", false},
	} {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %t, want %t", tc.name, got, tc.want)
		}
	}
}
