package routeradv

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/ndp"
)

func TestTracker(t *testing.T) {
	r1 := netip.MustParseAddr("fe80::1%eth1")
	r2 := netip.MustParseAddr("fe80::2%eth1")
	type obs struct {
		src netip.Addr
		hop int
	}
	type result struct {
		Addr    string
		Changed bool
	}
	tests := []struct {
		name string
		obs  []obs
		want []result
	}{
		{name: "first advertisement is learnt", obs: []obs{{r1, 255}}, want: []result{{r1.String(), true}}},
		{name: "same router again is no change", obs: []obs{{r1, 255}, {r1, 255}}, want: []result{{r1.String(), true}, {r1.String(), false}}},
		{name: "other router replaces", obs: []obs{{r1, 255}, {r2, 255}}, want: []result{{r1.String(), true}, {r2.String(), true}}},
		{name: "unknown hop limit accepted", obs: []obs{{r1, -1}}, want: []result{{r1.String(), true}}},
		{name: "hop limit below 255 discarded (RFC 4861 6.1.2)", obs: []obs{{r1, 64}}, want: []result{{"invalid IP", false}}},
		{name: "global source discarded", obs: []obs{{netip.MustParseAddr("2001:db8::1"), 255}}, want: []result{{"invalid IP", false}}},
		{name: "IPv4 source discarded", obs: []obs{{netip.MustParseAddr("169.254.0.1"), 255}}, want: []result{{"invalid IP", false}}},
		{name: "bad one keeps the router", obs: []obs{{r1, 255}, {r2, 1}}, want: []result{{r1.String(), true}, {r1.String(), false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr Tracker
			var got []result
			for _, o := range tt.obs {
				a, c := tr.Observe(o.src, o.hop)
				got = append(got, result{a.String(), c})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if last := tt.want[len(tt.want)-1].Addr; tr.Router().String() != last {
				t.Errorf("Router() = %v, want %v", tr.Router(), last)
			}
		})
	}
}

func TestNextInterval(t *testing.T) {
	tests := []struct {
		name     string
		sent     int
		interval time.Duration
		want     time.Duration
	}{
		{name: "after the first", sent: 0, interval: 10 * time.Second, want: FastInterval},
		{name: "after the second", sent: 1, interval: 10 * time.Second, want: FastInterval},
		{name: "after the last fast one", sent: FastAdvertisements - 1, interval: 10 * time.Second, want: 10 * time.Second},
		{name: "later", sent: 100, interval: 3 * time.Second, want: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextInterval(tt.sent, tt.interval); got != tt.want {
				t.Errorf("NextInterval(%d, %v) = %v, want %v", tt.sent, tt.interval, got, tt.want)
			}
		})
	}
}

// TestAdvertisement checks the message on the wire: it parses back as a Router Advertisement
// that makes no host take the node for a default router and announces no prefix.
func TestAdvertisement(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	tests := []struct {
		name string
		mac  net.HardwareAddr
		want *ndp.RouterAdvertisement
	}{
		{name: "with link-layer address", mac: mac, want: &ndp.RouterAdvertisement{CurrentHopLimit: 64,
			Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}},
		{name: "without link-layer address", want: &ndp.RouterAdvertisement{CurrentHopLimit: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ndp.MarshalMessage(Advertisement(tt.mac))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ndp.ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, m); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
