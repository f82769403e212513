package bfd

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDemux checks which session a received packet goes to, and the TTL checks of single-hop
// (RFC 5881: 255 only) and multi-hop (RFC 5883: the session's minimum) BFD.
func TestDemux(t *testing.T) {
	a := netip.MustParseAddr
	var d Demux[string]
	for _, s := range []struct {
		key    Key
		discr  uint32
		minTTL uint8
	}{
		{Key{Remote: a("192.0.2.1"), Local: a("192.0.2.9")}, 1, 0}, // single hop: Local dropped
		{Key{Remote: a("fe80::1%eth0")}, 2, 0},
		{Key{MultiHop: true, Remote: a("203.0.113.1"), Local: a("198.51.100.11")}, 3, 0},
		{Key{MultiHop: true, Remote: a("203.0.113.1"), Local: a("198.51.100.12")}, 4, 250},
		{Key{MultiHop: true, Remote: a("203.0.113.2")}, 5, 1},
		{Key{MultiHop: true, Remote: a("192.0.2.1")}, 6, 0}, // same peer as 1, other port
	} {
		if err := d.Add(s.key, s.discr, s.minTTL, s.key.String()); err != nil {
			t.Fatalf("Add(%v): %v", s.key, err)
		}
	}
	tests := []struct {
		name    string
		arrival Arrival
		your    uint32
		want    string
		wantErr error
	}{
		{name: "single hop by address", arrival: Arrival{Src: a("192.0.2.1"), Dst: a("192.0.2.7"), TTL: 255}, want: "single-hop 192.0.2.1"},
		{name: "single hop mapped source", arrival: Arrival{Src: a("::ffff:192.0.2.1"), TTL: 255}, want: "single-hop 192.0.2.1"},
		{name: "single hop by discriminator", arrival: Arrival{Src: a("192.0.2.1"), TTL: 255}, your: 1, want: "single-hop 192.0.2.1"},
		{name: "single hop link-local with zone", arrival: Arrival{Src: a("fe80::1%eth0"), TTL: 255}, your: 2, want: "single-hop fe80::1%eth0"},
		{name: "single hop TTL 254", arrival: Arrival{Src: a("192.0.2.1"), TTL: 254}, your: 1, wantErr: ErrTTL},
		{name: "single hop TTL unknown", arrival: Arrival{Src: a("192.0.2.1"), TTL: -1}, wantErr: ErrTTL},
		{name: "single hop unknown peer", arrival: Arrival{Src: a("192.0.2.99"), TTL: 255}, wantErr: ErrNoSession},
		{name: "single hop discriminator of another peer", arrival: Arrival{Src: a("192.0.2.99"), TTL: 255}, your: 1, wantErr: ErrAddresses},
		{name: "single-hop packet with a multi-hop discriminator", arrival: Arrival{Src: a("192.0.2.1"), TTL: 255}, your: 6, wantErr: ErrAddresses},
		{name: "unknown discriminator", arrival: Arrival{Src: a("192.0.2.1"), TTL: 255}, your: 77, wantErr: ErrNoSession},

		{name: "multi-hop by address pair", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.12"), TTL: 250}, want: "multi-hop 203.0.113.1 from 198.51.100.12"},
		{name: "multi-hop by other address pair", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.11"), TTL: 254}, want: "multi-hop 203.0.113.1 from 198.51.100.11"},
		{name: "multi-hop pair unknown", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.13"), TTL: 255}, wantErr: ErrNoSession},
		{name: "multi-hop any local address", arrival: Arrival{MultiHop: true, Src: a("203.0.113.2"), Dst: a("198.51.100.13"), TTL: 1}, want: "multi-hop 203.0.113.2"},
		{name: "multi-hop by discriminator", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.11"), TTL: 254}, your: 3, want: "multi-hop 203.0.113.1 from 198.51.100.11"},
		{name: "multi-hop discriminator, wrong local address", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.12"), TTL: 254}, your: 3, wantErr: ErrAddresses},
		{name: "multi-hop default minimum TTL 254: 253 refused", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.11"), TTL: 253}, your: 3, wantErr: ErrTTL},
		{name: "multi-hop minimum TTL 250: 250 accepted", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.12"), TTL: 250}, your: 4, want: "multi-hop 203.0.113.1 from 198.51.100.12"},
		{name: "multi-hop minimum TTL 250: 249 refused", arrival: Arrival{MultiHop: true, Src: a("203.0.113.1"), Dst: a("198.51.100.12"), TTL: 249}, your: 4, wantErr: ErrTTL},
		{name: "multi-hop TTL unknown", arrival: Arrival{MultiHop: true, Src: a("203.0.113.2"), TTL: -1}, wantErr: ErrTTL},
		{name: "multi-hop port, single-hop peer's discriminator", arrival: Arrival{MultiHop: true, Src: a("192.0.2.1"), TTL: 255}, your: 1, wantErr: ErrAddresses},
		{name: "multi-hop port, same peer as a single-hop session", arrival: Arrival{MultiHop: true, Src: a("192.0.2.1"), TTL: 255}, want: "multi-hop 192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Lookup(tt.arrival, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 9, YourDiscriminator: tt.your})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("session (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDemuxAddRemove checks that keys and discriminators are unique and that Remove frees both.
func TestDemuxAddRemove(t *testing.T) {
	a := netip.MustParseAddr
	var d Demux[int]
	mh := Key{MultiHop: true, Remote: a("203.0.113.1"), Local: a("198.51.100.11")}
	if err := d.Add(mh, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     Key
		discr   uint32
		wantErr error
	}{
		{name: "same key", key: Key{MultiHop: true, Remote: a("::ffff:203.0.113.1"), Local: a("198.51.100.11")}, discr: 2, wantErr: ErrDuplicate},
		{name: "same discriminator", key: Key{Remote: a("192.0.2.1")}, discr: 1, wantErr: ErrDuplicate},
		{name: "discriminator 0", key: Key{Remote: a("192.0.2.1")}, discr: 0, wantErr: ErrDuplicate},
		{name: "same addresses, single hop", key: Key{Remote: a("203.0.113.1"), Local: a("198.51.100.11")}, discr: 3},
		{name: "same remote, other local", key: Key{MultiHop: true, Remote: a("203.0.113.1"), Local: a("198.51.100.12")}, discr: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.Add(tt.key, tt.discr, 0, int(tt.discr)); !errors.Is(err, tt.wantErr) {
				t.Errorf("Add: %v, want %v", err, tt.wantErr)
			}
		})
	}
	if !d.Has(mh) || !d.Used(1) || d.Len() != 3 {
		t.Fatalf("Has %v, Used %v, Len %d; want true, true, 3", d.Has(mh), d.Used(1), d.Len())
	}
	d.Remove(1)
	d.Remove(1) // twice is fine
	if d.Has(mh) || d.Used(1) || d.Len() != 2 {
		t.Errorf("after Remove: Has %v, Used %v, Len %d; want false, false, 2", d.Has(mh), d.Used(1), d.Len())
	}
	keys := slices.SortedFunc(d.Keys(), func(x, y Key) int { return x.Local.Compare(y.Local) })
	want := []Key{{Remote: a("203.0.113.1")}, {MultiHop: true, Remote: a("203.0.113.1"), Local: a("198.51.100.12")}}
	if diff := cmp.Diff(want, keys, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("Keys (-want +got):\n%s", diff)
	}
}

// FuzzDemux feeds arbitrary packets and arrivals to a Demux: Lookup never panics, and a packet
// it accepts passed its TTL check and names its session's addresses.
func FuzzDemux(f *testing.F) {
	f.Add(AppendPacket(nil, Packet{State: StateUp, DetectMult: 3, MyDiscriminator: 1, YourDiscriminator: 3}), true, []byte{203, 0, 113, 1}, []byte{198, 51, 100, 11}, 254)
	f.Add(AppendPacket(nil, Packet{State: StateDown, DetectMult: 3, MyDiscriminator: 1}), false, []byte{192, 0, 2, 1}, []byte{}, 255)
	var d Demux[Key]
	for i, k := range []Key{
		{Remote: netip.MustParseAddr("192.0.2.1")},
		{MultiHop: true, Remote: netip.MustParseAddr("203.0.113.1"), Local: netip.MustParseAddr("198.51.100.11")},
		{MultiHop: true, Remote: netip.MustParseAddr("203.0.113.2")},
	} {
		if err := d.Add(k, uint32(i+1)*2-1, uint8(250+i), k); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, multiHop bool, src, dst []byte, ttl int) {
		p, err := ParsePacket(b)
		if err != nil {
			return
		}
		s, _ := netip.AddrFromSlice(src)
		ds, _ := netip.AddrFromSlice(dst)
		k, err := d.Lookup(Arrival{MultiHop: multiHop, Src: s, Dst: ds, TTL: ttl}, p)
		if err != nil {
			return
		}
		switch {
		case k.MultiHop != multiHop || k.Remote != normalAddr(s):
			t.Errorf("packet from %v (multi-hop %v) went to session %v", s, multiHop, k)
		case !multiHop && ttl != SendTTL, multiHop && ttl < 250:
			t.Errorf("packet with TTL %d accepted by session %v", ttl, k)
		case k.Local.IsValid() && k.Local != normalAddr(ds):
			t.Errorf("packet to %v went to session %v", ds, k)
		}
	})
}
