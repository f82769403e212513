package nodemeta

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

func TestMaxSizeIsMemberlists(t *testing.T) {
	if MaxSize != memberlist.MetaMaxSize {
		t.Errorf("MaxSize = %d, memberlist.MetaMaxSize = %d", MaxSize, memberlist.MetaMaxSize)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name      string
		in        Meta
		want      string
		truncated bool
	}{
		{name: "not ready", in: Meta{}, want: `{"v":2}`},
		{name: "not ready publishes no interfaces", in: Meta{Interfaces: []string{"eth0"}, Defaults: []string{"eth0"}}, want: `{"v":2}`},
		{name: "ready, one default", in: Meta{Ready: true, Interfaces: []string{"eth0"}, Defaults: []string{"eth0"}},
			want: `{"v":2,"ready":true,"ifaces":["eth0"],"dflt":["eth0"]}`},
		{name: "ready, no interface", in: Meta{Ready: true}, want: `{"v":2,"ready":true}`},
		{name: "sorted and deduplicated", in: Meta{Ready: true, Interfaces: []string{"vlan20", "eth0", "eth0"}, Defaults: []string{"eth0"}},
			want: `{"v":2,"ready":true,"ifaces":["eth0","vlan20"],"dflt":["eth0"]}`},
		{name: "a default that is not an interface is dropped", in: Meta{Ready: true, Interfaces: []string{"eth1"}, Defaults: []string{"eth0"}},
			want: `{"v":2,"ready":true,"ifaces":["eth1"]}`},
		{name: "invalid names are dropped", in: Meta{Ready: true, Interfaces: []string{"eth0", "a/b", "", "x y", "sixteen-chars-xx"}, Defaults: []string{"eth0"}},
			want: `{"v":2,"ready":true,"ifaces":["eth0"],"dflt":["eth0"]}`, truncated: true},
		{name: "hardware addresses, canonical, sorted and deduplicated", in: Meta{Ready: true, Interfaces: []string{"eth0", "vlan20"}, Defaults: []string{"eth0"},
			MACs: []string{"02:00:5E:10:00:02", "02:00:5e:10:00:01", "02-00-5e-10-00-02"}},
			want: `{"v":2,"ready":true,"ifaces":["eth0","vlan20"],"dflt":["eth0"],"macs":["02:00:5e:10:00:01","02:00:5e:10:00:02"]}`},
		{name: "invalid hardware addresses are dropped", in: Meta{Ready: true, Interfaces: []string{"eth0"}, Defaults: []string{"eth0"},
			MACs: []string{"02:00:5e:10:00:01", "not-a-mac", "02:00:5e:10:00:01:02:03"}},
			want: `{"v":2,"ready":true,"ifaces":["eth0"],"dflt":["eth0"],"macs":["02:00:5e:10:00:01"]}`, truncated: true},
		{name: "not ready publishes no hardware address", in: Meta{MACs: []string{"02:00:5e:10:00:01"}}, want: `{"v":2}`},
		{name: "at most four defaults", in: Meta{Ready: true, Interfaces: []string{"a", "b", "c", "d", "e"}, Defaults: []string{"a", "b", "c", "d", "e"}},
			want: `{"v":2,"ready":true,"ifaces":["a","b","c","d","e"],"dflt":["a","b","c","d"]}`, truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.in)
			if errors.Is(err, ErrTruncated) != tt.truncated || (err != nil && !tt.truncated) {
				t.Errorf("Encode error = %v, want truncated: %v", err, tt.truncated)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Encode (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeBounded: whatever the node reports (here 300 interface names, as many as routed pod
// veths on a busy node), the metadata stays within memberlist's limit, keeps the default
// interfaces, and says what it left out.
func TestEncodeBounded(t *testing.T) {
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("cali%011x", i))
	}
	m := Meta{Ready: true, Interfaces: append(names, "eth0"), Defaults: []string{"eth0"}, MACs: []string{"02:00:5e:10:00:01"}}
	b, encErr := Encode(m)
	if !errors.Is(encErr, ErrTruncated) || !strings.Contains(encErr.Error(), "no room left") {
		t.Fatalf("Encode error = %v, want ErrTruncated naming what had no room", encErr)
	}
	if len(b) > MaxSize {
		t.Fatalf("Encode: %d bytes, more than %d", len(b), MaxSize)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode(Encode): %v", err)
	}
	if !got.Ready || len(got.Defaults) != 1 || got.Defaults[0] != "eth0" || len(got.Interfaces) < 20 {
		t.Errorf("Decode(Encode) = ready %v, defaults %v, %d interfaces; want ready, [eth0], and the interfaces that fit", got.Ready, got.Defaults, len(got.Interfaces))
	}
	// Interfaces come before hardware addresses: with no room left, the address is what goes.
	if len(got.MACs) != 0 || !strings.Contains(encErr.Error(), "hardware address 02:00:5e:10:00:01 (no room left)") {
		t.Errorf("with the interfaces filling the metadata: MACs %v, error %v; want the hardware address left out, and said so", got.MACs, encErr)
	}
	// A node with a few interfaces publishes all its hardware addresses.
	few := Meta{Ready: true, Interfaces: []string{"bond0", "eth0", "vlan20", "vlan30"}, Defaults: []string{"bond0"}}
	for i := range 8 {
		few.MACs = append(few.MACs, fmt.Sprintf("02:00:5e:10:00:%02x", i))
	}
	b, err = Encode(few)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", few, err)
	}
	if got, err := Decode(b); err != nil || !got.Equal(few) {
		t.Errorf("Decode(Encode(%+v)) = %+v, %v", few, got, err)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Meta
		invalid bool
	}{
		{name: "nothing published yet", in: ``, want: Meta{}},
		{name: "current", in: `{"v":2,"ready":true,"ifaces":["vlan20","eth0"],"dflt":["eth0"]}`,
			want: Meta{Version: 2, Ready: true, Interfaces: []string{"eth0", "vlan20"}, Defaults: []string{"eth0"}}},
		{name: "current, not ready: interfaces ignored", in: `{"v":2,"ifaces":["eth0"],"dflt":["eth0"]}`, want: Meta{Version: 2}},
		{name: "hardware addresses", in: `{"v":2,"ready":true,"ifaces":["eth0"],"dflt":["eth0"],"macs":["02:00:5E:10:00:02","02:00:5e:10:00:01"]}`,
			want: Meta{Version: 2, Ready: true, Interfaces: []string{"eth0"}, Defaults: []string{"eth0"}, MACs: []string{"02:00:5e:10:00:01", "02:00:5e:10:00:02"}}},
		{name: "not ready: hardware addresses ignored", in: `{"v":2,"macs":["02:00:5e:10:00:01"]}`, want: Meta{Version: 2}},
		{name: "bad hardware address", in: `{"v":2,"ready":true,"ifaces":["eth0"],"macs":["02:00:5e"]}`, invalid: true},
		{name: "hardware address of 8 bytes", in: `{"v":2,"ready":true,"ifaces":["eth0"],"macs":["02:00:5e:10:00:01:02:03"]}`, invalid: true},
		{name: "later version, unknown keys", in: `{"v":3,"ready":true,"ifaces":["eth0"],"dflt":["eth0"],"new":[1,2]}`,
			want: Meta{Version: 3, Ready: true, Interfaces: []string{"eth0"}, Defaults: []string{"eth0"}}},
		{name: "legacy with interfaces", in: `{"ifaces":["eth0","br0"]}`,
			want: Meta{Ready: true, Interfaces: []string{"br0", "eth0"}, Defaults: []string{"br0", "eth0"}}},
		{name: "legacy without interfaces", in: `{"ifaces":null}`, want: Meta{}},
		{name: "legacy empty object", in: `{}`, want: Meta{}},
		{name: "default not among interfaces", in: `{"v":2,"ready":true,"ifaces":["eth1"],"dflt":["eth0"]}`, invalid: true},
		{name: "version 1 never existed", in: `{"v":1,"ready":true}`, invalid: true},
		{name: "negative version", in: `{"v":-1}`, invalid: true},
		{name: "not JSON", in: `eth0,eth1`, invalid: true},
		{name: "wrong type", in: `{"ifaces":"eth0"}`, invalid: true},
		{name: "bad name", in: `{"ifaces":["../x"]}`, invalid: true},
		{name: "too long", in: `{"ifaces":["` + strings.Repeat("a", 600) + `"]}`, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if errors.Is(err, ErrInvalid) != tt.invalid || (err != nil && !tt.invalid) {
				t.Fatalf("Decode error = %v, want invalid: %v", err, tt.invalid)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecode: Decode never panics; what it accepts is canonical, encodes within MaxSize, and
// decodes again to the same (except the version, which Encode sets).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"ifaces":["eth0"]}`, `{"v":2,"ready":true,"ifaces":["eth0","vlan20"],"dflt":["eth0"]}`,
		`{"v":2,"ready":false}`, `{"v":9,"ready":true,"ifaces":["a"],"dflt":["a"],"x":{}}`, `{"v":2,"ready":true,"macs":["02:00:5e:10:00:01"]}`, `{"ifaces":["a","a","b"]}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !m.Ready && (len(m.Interfaces) > 0 || len(m.Defaults) > 0 || len(m.MACs) > 0) {
			t.Fatalf("Decode(%q) = %+v: interfaces on a node that is not ready", b, m)
		}
		for _, d := range m.Defaults {
			if !strings.Contains(strings.Join(m.Interfaces, "\x00")+"\x00", d+"\x00") {
				t.Fatalf("Decode(%q) = %+v: default %q not among the interfaces", b, m, d)
			}
		}
		enc, err := Encode(m)
		if len(enc) > MaxSize {
			t.Fatalf("Encode(%+v) = %d bytes", m, len(enc))
		}
		if err != nil {
			return // truncated: legacy metadata with more than MaxDefaults interfaces
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)) = %v", m, err)
		}
		if !again.Equal(m) || again.Version != Version {
			t.Fatalf("round trip of %q: %+v, then %+v", b, m, again)
		}
	})
}

// FuzzEncode: whatever the node reports, the metadata stays within MaxSize and decodes.
func FuzzEncode(f *testing.F) {
	f.Add(true, "eth0,vlan20", "eth0", "02:00:5e:10:00:01")
	f.Add(true, strings.Repeat("cali0123456789a,", 200), "eth0,br0,bond0,eth1,eth2", strings.Repeat("02:00:5e:10:00:01,", 30))
	f.Add(false, "eth0", "eth0", "x")
	f.Fuzz(func(t *testing.T, ready bool, ifaces, defaults, macs string) {
		m := Meta{Ready: ready, Interfaces: strings.Split(ifaces, ","), Defaults: strings.Split(defaults, ","), MACs: strings.Split(macs, ",")}
		b, _ := Encode(m)
		if len(b) > MaxSize {
			t.Fatalf("Encode: %d bytes", len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)) = %v (%s)", m, err, b)
		}
		if got.Ready != ready || len(got.Defaults) > MaxDefaults {
			t.Fatalf("Decode(Encode(%+v)) = %+v", m, got)
		}
	})
}

func TestCanonicalMAC(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{in: "02:00:5e:10:00:01", want: "02:00:5e:10:00:01", ok: true},
		{in: "02:00:5E:10:0A:FF", want: "02:00:5e:10:0a:ff", ok: true},
		{in: "02-00-5e-10-00-01", want: "02:00:5e:10:00:01", ok: true},
		{in: "02:00-5e:10:00:01"}, // mixed separators
		{in: "02:00:5e:10:00:0g"},
		{in: "02:00:5e:10:00"},
		{in: "02:00:5e:10:00:01:02:03"}, // EUI-64
		{in: "0200.5e10.0001"},
		{in: "02:00:5e:10:00:01 "},
		{in: ""},
	}
	for _, tt := range tests {
		got, err := canonicalMAC(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("canonicalMAC(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
