package bfd

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPacketRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		wire []byte
	}{
		{
			name: "down, slow start",
			p: Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 0x01020304,
				DesiredMinTx: time.Second, RequiredMinRx: 300 * time.Millisecond},
			wire: []byte{0x20, 0x40, 3, 24, 1, 2, 3, 4, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x04, 0x93, 0xe0, 0, 0, 0, 0},
		},
		{
			name: "up with poll, diag and every flag but A and M",
			p: Packet{Diag: DiagControlDetectExpired, State: StateUp, Poll: true, Final: true, ControlPlaneIndependent: true, Demand: true,
				DetectMult: 255, MyDiscriminator: 7, YourDiscriminator: 0xffffffff,
				DesiredMinTx: 10 * time.Millisecond, RequiredMinRx: time.Minute, RequiredMinEchoRx: time.Microsecond},
			wire: []byte{0x21, 0xfa, 255, 24, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x27, 0x10, 0x03, 0x93, 0x87, 0x00, 0, 0, 0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendPacket(nil, tt.p)
			if diff := cmp.Diff(tt.wire, got); diff != "" {
				t.Errorf("AppendPacket (-want +got):\n%s", diff)
			}
			back, err := ParsePacket(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.p, back); diff != "" {
				t.Errorf("ParsePacket (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePacketErrors(t *testing.T) {
	good := AppendPacket(nil, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 1, DesiredMinTx: time.Second, RequiredMinRx: time.Second})
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShortPacket},
		{"23 bytes", good[:23], ErrShortPacket},
		{"version 0", mod(func(b []byte) []byte { b[0] &= 0x1f; return b }), ErrVersion},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2<<5 | b[0]&0x1f; return b }), ErrVersion},
		{"length below 24", mod(func(b []byte) []byte { b[3] = 20; return b }), ErrLength},
		{"length beyond the data", mod(func(b []byte) []byte { b[3] = 25; return b }), ErrLength},
		{"authentication", mod(func(b []byte) []byte { b[1] |= 0x04; b[3] = 26; return append(b, 1, 2) }), ErrAuthentication},
		{"authentication, too short", mod(func(b []byte) []byte { b[1] |= 0x04; return b }), ErrLength},
		{"detect mult 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrInvalidPacket},
		{"multipoint", mod(func(b []byte) []byte { b[1] |= 0x01; return b }), ErrInvalidPacket},
		{"my discriminator 0", mod(func(b []byte) []byte { b[7] = 0; return b }), ErrInvalidPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePacket(tt.b)
			if !errors.Is(err, tt.want) {
				t.Errorf("ParsePacket error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParsePacket(append(good, 9, 9)); err != nil {
		t.Errorf("trailing bytes after the length: %v, want them ignored", err)
	}
}

// FuzzParsePacket checks that ParsePacket never panics, and that what it accepts encodes back
// to the same 24 bytes (but the length field).
func FuzzParsePacket(f *testing.F) {
	f.Add(AppendPacket(nil, Packet{State: StateUp, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 2, DesiredMinTx: time.Second}))
	f.Add([]byte{0x20, 0x44, 3, 26, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		got := AppendPacket(nil, p)
		want := append([]byte(nil), b[:PacketLen]...)
		want[3] = PacketLen // a longer length field (trailing bytes) encodes as 24
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("re-encoding (-want +got):\n%s", diff)
		}
	})
}
