package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommunity(t *testing.T) {
	const hint = "use a standard community a:b with 16-bit parts such as 65000:100, or a large one large:a:b:c with 32-bit parts such as large:65000:1:2"
	tests := []struct {
		name    string
		in      string
		want    Community
		wantErr string
	}{
		{name: "standard", in: "65000:100", want: Community{Value: 65000<<16 | 100}},
		{name: "standard zero", in: "0:0", want: Community{}},
		{name: "standard max", in: "65535:65535", want: Community{Value: 0xffffffff}},
		{name: "large", in: "large:65000:1:2", want: Community{Large: true, LargeValue: [3]uint32{65000, 1, 2}}},
		{name: "large max", in: "large:4294967295:4294967295:4294967295", want: Community{Large: true, LargeValue: [3]uint32{0xffffffff, 0xffffffff, 0xffffffff}}},
		{name: "standard part too big", in: "65536:1", wantErr: `"65536:1": not a valid standard community; ` + hint},
		{name: "large part too big", in: "large:4294967296:1:2", wantErr: `"large:4294967296:1:2": not a valid large community; ` + hint},
		{name: "sign", in: "+1:2", wantErr: `"+1:2": not a valid standard community; ` + hint},
		{name: "empty part", in: "1:", wantErr: `"1:": not a valid standard community; ` + hint},
		{name: "spaces", in: "1: 2", wantErr: `"1: 2": not a valid standard community; ` + hint},
		{name: "three parts without large", in: "1:2:3", wantErr: `"1:2:3": not a valid community; ` + hint},
		{name: "large with two parts", in: "large:1:2", wantErr: `"large:1:2": not a valid community; ` + hint},
		{name: "alias is not a literal", in: "no-export", wantErr: `"no-export": not a valid community; ` + hint},
		{name: "hex", in: "0x10:1", wantErr: `"0x10:1": not a valid standard community; ` + hint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommunity(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Fatalf("ParseCommunity(%q) error mismatch (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCommunity(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestCommunityString(t *testing.T) {
	tests := []struct {
		name string
		c    Community
		want string
	}{
		{name: "standard", c: Community{Value: 65000<<16 | 100}, want: "65000:100"},
		{name: "zero", c: Community{}, want: "0:0"},
		{name: "large", c: Community{Large: true, LargeValue: [3]uint32{65000, 1, 2}}, want: "large:65000:1:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.c.String()); diff != "" {
				t.Errorf("String() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseCommunity(f *testing.F) {
	for _, s := range []string{"65000:100", "0:0", "65535:65535", "65536:0", "large:1:2:3", "large:4294967295:0:0", "large:", ":", "", "no-export", "007:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommunity(s)
		if err != nil {
			return
		}
		if !c.Large && c.LargeValue != [3]uint32{} {
			t.Errorf("ParseCommunity(%q) = %#v: a standard community with a large value", s, c)
		}
		if c.Large && c.Value != 0 {
			t.Errorf("ParseCommunity(%q) = %#v: a large community with a standard value", s, c)
		}
		again, err := ParseCommunity(c.String())
		if err != nil || again != c {
			t.Errorf("ParseCommunity(%q) = %v, but its String %q parses to %v, %v", s, c, c.String(), again, err)
		}
	})
}
