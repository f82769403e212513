package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func u32(v uint32) *uint32      { return &v }

var cmpOpts = []cmp.Option{
	cmp.AllowUnexported(attrs{}, ribChange{}, peerDiff{}),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func TestTablesFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		routes  Routes
		want    map[string]table
		wantErr string
	}{{
		name: "attributes normalised, peers kept apart",
		routes: Routes{
			"a": {{Prefix: pfx("198.51.100.10/32"), Communities: []uint32{2, 1, 2}, LargeCommunities: [][3]uint32{{1, 2, 3}, {1, 1, 9}, {1, 2, 3}}}},
			"b": {{Prefix: pfx("198.51.100.10/32"), LocalPref: u32(0)}, {Prefix: pfx("2001:db8::10/128")}},
		},
		want: map[string]table{
			"a": {pfx("198.51.100.10/32"): {communities: []uint32{1, 2}, large: [][3]uint32{{1, 1, 9}, {1, 2, 3}}}},
			"b": {pfx("198.51.100.10/32"): {localPref: u32(0)}, pfx("2001:db8::10/128"): {}},
		},
	}, {
		name:   "prefix masked, IPv4-mapped prefix becomes IPv4",
		routes: Routes{"a": {{Prefix: pfx("198.51.100.7/24")}, {Prefix: pfx("::ffff:198.51.100.9/128")}}},
		want:   map[string]table{"a": {pfx("198.51.100.0/24"): {}, pfx("198.51.100.9/32"): {}}},
	}, {
		name:    "a prefix twice for one peer: the first is kept, the error says so",
		routes:  Routes{"a": {{Prefix: pfx("198.51.100.0/24"), Communities: []uint32{1}}, {Prefix: pfx("198.51.100.0/24"), Communities: []uint32{2}}}},
		want:    map[string]table{"a": {pfx("198.51.100.0/24"): {communities: []uint32{1}}}},
		wantErr: `invalid BGP route: peer "a": prefix 198.51.100.0/24 is listed twice; the first is advertised`,
	}, {
		name:    "invalid prefix is reported, others kept",
		routes:  Routes{"a": {{}, {Prefix: pfx("2001:db8::/120")}}},
		want:    map[string]table{"a": {pfx("2001:db8::/120"): {}}},
		wantErr: `invalid BGP route: peer "a": prefix invalid Prefix is not valid`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tablesFrom(tc.routes)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrInvalidRoute)) {
				t.Fatalf("tablesFrom error = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("tablesFrom (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendable(t *testing.T) {
	v4 := Peer{Name: "v4", Address: netip.MustParseAddr("198.51.100.1")}
	tbl := table{pfx("198.51.100.10/32"): {}, pfx("2001:db8::10/128"): {communities: []uint32{1}}}
	got, err := sendable(tbl, v4, netip.Addr{}, netip.MustParseAddr("2001:db8::11"))
	if err != nil || !got.equal(tbl) {
		t.Errorf("with a node IPv6 address: %v, %v; want every route", got, err)
	}
	got, err = sendable(tbl, v4, netip.Addr{}, netip.Addr{})
	if !errors.Is(err, ErrNoNextHop) || !got.equal(table{pfx("198.51.100.10/32"): {}}) {
		t.Errorf("without a node IPv6 address: %v, %v; want the IPv4 route and ErrNoNextHop", got, err)
	}
	// An unnumbered session carries both families with its link-local next hop: no node address
	// is needed.
	unnumbered := Peer{Name: "u", Interface: "eth1", Address: netip.MustParseAddr("fe80::1%eth1")}
	got, err = sendable(tbl, unnumbered, netip.Addr{}, netip.Addr{})
	if err != nil || !got.equal(tbl) {
		t.Errorf("unnumbered without node addresses: %v, %v; want every route", got, err)
	}
}

func TestPlanRIB(t *testing.T) {
	p1, p2, p3 := pfx("198.51.100.1/32"), pfx("198.51.100.2/32"), pfx("2001:db8::3/128")
	c1, c2 := attrs{communities: []uint32{1}}, attrs{communities: []uint32{2}}
	rib := func(ps ...netip.Prefix) map[netip.Prefix]bool {
		m := map[netip.Prefix]bool{}
		for _, p := range ps {
			m[p] = true
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		rib        map[netip.Prefix]bool
		have, want map[string]table
		change     ribChange
	}{
		{"nothing", rib(), nil, nil, ribChange{}},
		{"unchanged", rib(p1), map[string]table{"a": {p1: c1}}, map[string]table{"a": {p1: {communities: []uint32{1}}}}, ribChange{}},
		{"new prefix: added to the RIB, no reset",
			rib(p1), map[string]table{"a": {p1: c1}}, map[string]table{"a": {p1: c1, p2: c1}, "b": {p2: c2}},
			ribChange{add: []netip.Prefix{p2}}},
		{"last peer drops a prefix: deleted from the RIB, no reset",
			rib(p1, p2), map[string]table{"a": {p1: c1, p2: c1}}, map[string]table{"a": {p1: c1}},
			ribChange{del: []netip.Prefix{p2}}},
		{"one of two peers drops a prefix: that peer is reset",
			rib(p1), map[string]table{"a": {p1: c1}, "b": {p1: c1}}, map[string]table{"a": {p1: c1}, "b": {}},
			ribChange{reset: []string{"b"}}},
		{"a peer gets a prefix already in the RIB: reset",
			rib(p1), map[string]table{"a": {p1: c1}}, map[string]table{"a": {p1: c1}, "b": {p1: c2}},
			ribChange{reset: []string{"b"}}},
		{"attributes change: reset only that peer",
			rib(p1, p3), map[string]table{"a": {p1: c1, p3: c1}, "b": {p1: c1}}, map[string]table{"a": {p1: c1, p3: c2}, "b": {p1: c1}},
			ribChange{reset: []string{"a"}}},
		{"RIB holds a prefix no table had: deleted",
			rib(p1, p2), map[string]table{"a": {p1: c1}}, map[string]table{"a": {p1: c1}},
			ribChange{del: []netip.Prefix{p2}}},
		{"everything withdrawn",
			rib(p1, p3), map[string]table{"a": {p1: c1, p3: c1}, "b": {p1: c2}}, map[string]table{"a": nil, "b": nil},
			ribChange{del: []netip.Prefix{p1, p3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.change, planRIB(tc.rib, tc.have, tc.want), cmpOpts...); diff != "" {
				t.Errorf("planRIB (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffPeers(t *testing.T) {
	a := Peer{Name: "a", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("198.51.100.1")}
	b := Peer{Name: "b", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("2001:db8::1")}
	c := Peer{Name: "c", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.3")}
	b2 := b
	b2.Password = "new"
	have := map[string]Peer{"a": a, "b": b, "c": c}
	got := diffPeers(have, []Peer{b2, a, {Name: "d"}})
	want := peerDiff{start: []Peer{{Name: "d"}}, restart: []Peer{b2}, stop: []string{"c"}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("diffPeers (-want +got):\n%s", diff)
	}
	if d := diffPeers(have, []Peer{c, b, a}); len(d.start)+len(d.restart)+len(d.stop) != 0 {
		t.Errorf("diffPeers of the same peers = %+v, want nothing to do", d)
	}
	// The graceful shutdown time only matters when the speaker stops: changed without a reset.
	a2 := a
	a2.GracefulShutdown = 5 * time.Second
	got = diffPeers(have, []Peer{a2, b, c})
	want = peerDiff{update: []Peer{a2}}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("diffPeers of a changed graceful shutdown time (-want +got):\n%s", diff)
	}
}

func TestValidatePeer(t *testing.T) {
	ok := Peer{Name: "a", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("198.51.100.1"),
		HoldTime: 3 * time.Second, KeepaliveTime: time.Second}
	id := netip.MustParseAddr("198.51.100.10")
	for _, tc := range []struct {
		name string
		mod  func(*Peer)
		id   netip.Addr
	}{
		{"as given", func(*Peer) {}, id},
		{"defaults (zero timers, no prefix limit)", func(p *Peer) { p.HoldTime, p.KeepaliveTime = 0, 0 }, id},
		{"keepalive up to the default hold time", func(p *Peer) { p.HoldTime, p.KeepaliveTime = 0, 90*time.Second }, id},
		{"link-local with a zone", func(p *Peer) { p.Address = netip.MustParseAddr("fe80::1%eth0") }, id},
		{"router ID of the peer", func(p *Peer) { p.RouterID = netip.MustParseAddr("198.51.100.11") }, netip.Addr{}},
		{"password of 80 bytes", func(p *Peer) { p.Password = strings.Repeat("x", 80) }, id},
		{"longest timers", func(p *Peer) { p.HoldTime, p.KeepaliveTime, p.ConnectTime = maxTimer, maxTimer, maxTimer }, id},
		{"any external AS (dynamicASN external)", func(p *Peer) { p.PeerASN = 0 }, id},
		{"VRF", func(p *Peer) { p.VRF = "red-1.x_y" }, id},
		{"graceful shutdown", func(p *Peer) { p.GracefulShutdown = MaxGracefulShutdown }, id},
		{"interface (unnumbered)", func(p *Peer) { p.Address, p.Interface = netip.Addr{}, "eth1" }, id},
		{"interface with its learnt router address", func(p *Peer) { p.Address, p.Interface = netip.MustParseAddr("fe80::1%eth1"), "eth1" }, id},
		{"interface with a password", func(p *Peer) { p.Address, p.Interface, p.Password = netip.Addr{}, "eth1", "secret" }, id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.mod(&p)
			if err := ValidatePeer(p, tc.id); err != nil {
				t.Errorf("ValidatePeer = %v, want nil", err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		mod  func(*Peer)
		id   netip.Addr
		want string
	}{
		{"no name", func(p *Peer) { p.Name = "" }, id, "empty name"},
		{"no ASN", func(p *Peer) { p.MyASN = 0 }, id, "myASN 0 must not be 0"},
		{"VRF not a device name", func(p *Peer) { p.VRF = "red/blue" }, id, `VRF "red/blue" is not a Linux device name`},
		{"VRF name too long", func(p *Peer) { p.VRF = "sixteen-chars-xx" }, id, `VRF "sixteen-chars-xx" is not a Linux device name`},
		{"BFD in a VRF", func(p *Peer) {
			p.VRF, p.BFD = "red", BFD{Enabled: true, ReceiveInterval: time.Second, TransmitInterval: time.Second, DetectMultiplier: 3}
		}, id,
			"BFD on a session in a VRF is not supported"},
		{"no address", func(p *Peer) { p.Address = netip.Addr{} }, id, "is not a unicast address"},
		{"unspecified address", func(p *Peer) { p.Address = netip.MustParseAddr("0.0.0.0") }, id, "0.0.0.0 is not a unicast address"},
		{"multicast address", func(p *Peer) { p.Address = netip.MustParseAddr("ff02::1") }, id, "ff02::1 is not a unicast address"},
		{"link-local without a zone", func(p *Peer) { p.Address = netip.MustParseAddr("fe80::1") }, id, "names no interface"},
		{"source of other family", func(p *Peer) { p.SourceAddress = netip.MustParseAddr("2001:db8::1") }, id, "not of the family"},
		{"no router ID", func(*Peer) {}, netip.Addr{}, "router ID invalid IP"},
		{"IPv6 router ID", func(p *Peer) { p.RouterID = netip.MustParseAddr("2001:db8::1") }, id, "router ID 2001:db8::1"},
		{"router ID 0.0.0.0", func(p *Peer) { p.RouterID = netip.MustParseAddr("0.0.0.0") }, id, "router ID 0.0.0.0"},
		{"multicast router ID", func(p *Peer) {}, netip.MustParseAddr("224.0.0.1"), "router ID 224.0.0.1"},
		{"fractional connect time", func(p *Peer) { p.ConnectTime = 1500 * time.Millisecond }, id, "connectTime 1.5s is not a whole number"},
		{"fractional keepalive", func(p *Peer) { p.HoldTime, p.KeepaliveTime = 10*time.Second, 3333*time.Millisecond }, id, "keepaliveTime 3.333s"},
		{"hold time too short", func(p *Peer) { p.HoldTime = 2 * time.Second }, id, "holdTime 2s is below 3s"},
		{"hold time beyond 16 bits", func(p *Peer) { p.HoldTime = maxTimer + time.Second }, id, "holdTime 18h12m16s"},
		{"keepalive above hold", func(p *Peer) { p.KeepaliveTime = 5 * time.Second }, id, "keepaliveTime 5s is longer than holdTime 3s"},
		{"keepalive above the default hold", func(p *Peer) { p.HoldTime, p.KeepaliveTime = 0, 91*time.Second }, id, "longer than holdTime 1m30s"},
		{"graceful shutdown time negative", func(p *Peer) { p.GracefulShutdown = -time.Second }, id, "graceful shutdown time -1s is not from 0 to 1m0s"},
		{"graceful shutdown time too long", func(p *Peer) { p.GracefulShutdown = MaxGracefulShutdown + time.Second }, id, "graceful shutdown time 1m1s is not from 0 to 1m0s"},
		{"password too long", func(p *Peer) { p.Password = strings.Repeat("x", 81) }, id, "81 bytes"},
		{"interface not a device name", func(p *Peer) { p.Address, p.Interface = netip.Addr{}, "eth 1" }, id, `interface "eth 1" is not a Linux device name`},
		{"interface and address", func(p *Peer) { p.Interface = "eth1" }, id, `address 198.51.100.1 with interface "eth1": an interface peer's address is learnt; set only one of them`},
		{"interface and link-local of another interface", func(p *Peer) { p.Address, p.Interface = netip.MustParseAddr("fe80::1%eth2"), "eth1" }, id, "set only one of them"},
		{"interface and multihop", func(p *Peer) { p.Address, p.Interface, p.EBGPMultiHop = netip.Addr{}, "eth1", true }, id, "ebgpMultiHop with interface"},
		{"interface and source address", func(p *Peer) {
			p.Address, p.Interface, p.SourceAddress = netip.Addr{}, "eth1", netip.MustParseAddr("2001:db8::1")
		}, id, "source address 2001:db8::1 with interface"},
		{"interface in a VRF", func(p *Peer) { p.Address, p.Interface, p.VRF = netip.Addr{}, "eth1", "red" }, id, `VRF "red" with interface "eth1"`},
		{"interface with BFD", func(p *Peer) {
			p.Address, p.Interface = netip.Addr{}, "eth1"
			p.BFD = BFD{Enabled: true, ReceiveInterval: time.Second, TransmitInterval: time.Second, DetectMultiplier: 3}
		}, id, "BFD on an unnumbered session is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.mod(&p)
			err := ValidatePeer(p, tc.id)
			if !errors.Is(err, ErrInvalidPeer) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("peer %q", p.Name)) {
				t.Errorf("ValidatePeer = %v, want ErrInvalidPeer naming the peer and saying %q", err, tc.want)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestGracefulShutdownTable: every route keeps its attributes and gains the GRACEFUL_SHUTDOWN
// community 65535:0 (RFC 8326) once; towards iBGP peers LOCAL_PREF becomes 0 as well.
func TestGracefulShutdownTable(t *testing.T) {
	in := table{
		pfx("198.51.100.10/32"): {communities: []uint32{64512<<16 | 1}, localPref: u32(200)},
		pfx("198.51.100.11/32"): {communities: []uint32{communityGracefulShutdown}, large: [][3]uint32{{1, 2, 3}}},
		pfx("2001:db8::10/128"): {},
	}
	for _, tc := range []struct {
		name string
		ibgp bool
		want table
	}{{
		name: "eBGP: community added, LOCAL_PREF kept (not sent to eBGP peers anyway)",
		want: table{
			pfx("198.51.100.10/32"): {communities: []uint32{64512<<16 | 1, communityGracefulShutdown}, localPref: u32(200)},
			pfx("198.51.100.11/32"): {communities: []uint32{communityGracefulShutdown}, large: [][3]uint32{{1, 2, 3}}},
			pfx("2001:db8::10/128"): {communities: []uint32{communityGracefulShutdown}},
		},
	}, {
		name: "iBGP: community added and LOCAL_PREF 0",
		ibgp: true,
		want: table{
			pfx("198.51.100.10/32"): {communities: []uint32{64512<<16 | 1, communityGracefulShutdown}, localPref: u32(0)},
			pfx("198.51.100.11/32"): {communities: []uint32{communityGracefulShutdown}, large: [][3]uint32{{1, 2, 3}}, localPref: u32(0)},
			pfx("2001:db8::10/128"): {communities: []uint32{communityGracefulShutdown}, localPref: u32(0)},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(in)
			got := gracefulShutdownTable(in, tc.ibgp)
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Errorf("gracefulShutdownTable (-want +got):\n%s", diff)
			}
			if after := fmt.Sprint(in); after != before {
				t.Errorf("gracefulShutdownTable changed its input: %s, was %s", after, before)
			}
		})
	}
}
