package bgp

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/protobuf/testing/protocmp"
)

func TestToAPIPeer(t *testing.T) {
	p := Peer{
		Name: "r1", MyASN: 64512, PeerASN: 64500,
		Address: netip.MustParseAddr("2001:db8::1"), SourceAddress: netip.MustParseAddr("2001:db8::11"),
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 2 * time.Second,
		EBGPMultiHop: true, Password: "pw", GracefulRestart: true, MaxPrefixes: 50,
	}
	gr := &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	want := &api.Peer{
		Conf:            &api.PeerConf{NeighborAddress: "2001:db8::1", PeerAsn: 64500, LocalAsn: 64512, AuthPassword: "pw", Description: "r1"},
		Transport:       &api.Transport{RemotePort: 179, LocalAddress: "2001:db8::11"},
		Timers:          &api.Timers{Config: &api.TimersConfig{ConnectRetry: 2, HoldTime: 9, KeepaliveInterval: 3, IdleHoldTimeAfterReset: 2}},
		EbgpMultihop:    &api.EbgpMultihop{Enabled: true, MultihopTtl: 255},
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}, MpGracefulRestart: gr,
				PrefixLimits: &api.PrefixLimit{Family: familyIPv4, MaxPrefixes: 50}},
			{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}, MpGracefulRestart: gr,
				PrefixLimits: &api.PrefixLimit{Family: familyIPv6, MaxPrefixes: 50}},
		},
	}
	if diff := cmp.Diff(want, toAPIPeer(p, false), protocmp.Transform()); diff != "" {
		t.Errorf("toAPIPeer (-want +got):\n%s", diff)
	}

	// iBGP: no multihop (TTL is not limited for iBGP), port kept.
	p = Peer{Name: "i", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.1"), Port: 1179, EBGPMultiHop: true}
	got := toAPIPeer(p, false)
	if got.EbgpMultihop != nil || got.Transport.RemotePort != 1179 || got.GracefulRestart != nil {
		t.Errorf("iBGP peer = %v, want no multihop, no graceful restart, port 1179", got)
	}
	k := serverKey{asn: 64512, routerID: netip.MustParseAddr("198.51.100.10")}
	if g := toAPIGlobal(k, listen{}); g.Asn != 64512 || g.RouterId != "198.51.100.10" || g.ListenPort != -1 || len(g.ListenAddresses) != 0 {
		t.Errorf("toAPIGlobal = %v, want AS 64512, router ID 198.51.100.10, no listener", g)
	}
	l := listen{port: 179, addrs: []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")}}
	if g := toAPIGlobal(k, l); g.ListenPort != 179 || !slices.Equal(g.ListenAddresses, []string{"198.51.100.11", "2001:db8::11"}) {
		t.Errorf("toAPIGlobal with a listener = %v, want port 179 on 198.51.100.11 and 2001:db8::11 only", g)
	}
}

// TestToAPIPeerDynamicASNAndVRF: a peer in any AS but the speaker's (PeerASN 0) is a GoBGP
// neighbour with peer AS 0, whose ASN negotiation GoBGP skips; GoBGP then ignores the multihop
// TTL, so multihop is asked for as TTL security without a minimum TTL (TTL 255 on the
// connection). A VRF binds the connection to the VRF device.
func TestToAPIPeerDynamicASNAndVRF(t *testing.T) {
	base := Peer{Name: "r", MyASN: 64512, Address: netip.MustParseAddr("198.51.100.1")}
	af := func(f *api.Family) *api.AfiSafi {
		return &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}, PrefixLimits: &api.PrefixLimit{Family: f, MaxPrefixes: DefaultMaxPrefixes}}
	}
	want := func(f func(*api.Peer)) *api.Peer {
		ap := &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: "198.51.100.1", LocalAsn: 64512, Description: "r"},
			Transport: &api.Transport{RemotePort: 179},
			Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 90, KeepaliveInterval: 30}},
			AfiSafis:  []*api.AfiSafi{af(familyIPv4), af(familyIPv6)},
		}
		f(ap)
		return ap
	}
	for _, tc := range []struct {
		name string
		mod  func(*Peer)
		want *api.Peer
	}{
		{"any external AS", func(*Peer) {}, want(func(*api.Peer) {})},
		{"any external AS, multihop", func(p *Peer) { p.EBGPMultiHop = true }, want(func(ap *api.Peer) {
			ap.TtlSecurity = &api.TtlSecurity{Enabled: true}
		})},
		{"pinned AS, multihop", func(p *Peer) { p.PeerASN, p.EBGPMultiHop = 64500, true }, want(func(ap *api.Peer) {
			ap.Conf.PeerAsn = 64500
			ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
		})},
		{"VRF", func(p *Peer) { p.PeerASN, p.VRF = 64500, "red" }, want(func(ap *api.Peer) {
			ap.Conf.PeerAsn = 64500
			ap.Transport.BindInterface = "red"
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.mod(&p)
			if diff := cmp.Diff(tc.want, toAPIPeer(p, false), protocmp.Transform()); diff != "" {
				t.Errorf("toAPIPeer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestToAPIPeerGracefulRestart: the restart time and the Restart State bit of the graceful restart
// capability (RFC 4724), and nothing of it when graceful restart is off.
func TestToAPIPeerGracefulRestart(t *testing.T) {
	base := Peer{Name: "r", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("198.51.100.1")}
	with := func(gr bool, rt time.Duration) Peer {
		p := base
		p.GracefulRestart, p.RestartTime = gr, rt
		return p
	}
	for _, tc := range []struct {
		name       string
		peer       Peer
		restarting bool
		want       *api.GracefulRestart // nil: no capability, and no per-family graceful restart
	}{
		{"off", with(false, 0), false, nil},
		{"off, restarting ignored", with(false, 30*time.Second), true, nil},
		{"on, default restart time", with(true, 0), false, &api.GracefulRestart{Enabled: true, RestartTime: 120}},
		{"on, restart time 30s", with(true, 30*time.Second), false, &api.GracefulRestart{Enabled: true, RestartTime: 30}},
		{"on, longest restart time", with(true, MaxRestartTime), false, &api.GracefulRestart{Enabled: true, RestartTime: 4095}},
		{"on, restarting: R and F bits", with(true, 0), true, &api.GracefulRestart{Enabled: true, RestartTime: 120, LocalRestarting: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toAPIPeer(tc.peer, tc.restarting)
			if diff := cmp.Diff(tc.want, got.GracefulRestart, protocmp.Transform()); diff != "" {
				t.Errorf("graceful restart (-want +got):\n%s", diff)
			}
			for _, af := range got.AfiSafis {
				if on := af.GetMpGracefulRestart().GetConfig().GetEnabled(); on != (tc.want != nil) {
					t.Errorf("graceful restart of %v enabled = %v, want %v", af.Config.Family, on, tc.want != nil)
				}
			}
		})
	}
}

// TestToAPIPeerDefaults: the adapter fills in every timer and the prefix limit itself, in whole
// seconds, so GoBGP's own defaults (a keepalive of hold/3 as a fraction of a second, no prefix
// limit) never apply.
func TestToAPIPeerDefaults(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		name            string
		hold, keepalive time.Duration
		wantHold        uint64
		wantKeepalive   uint64
	}{
		{"nothing set", 0, 0, 90, 30},
		{"hold 10s: keepalive 3s, not 3.333s", 10 * time.Second, 0, 10, 3},
		{"hold 5s: keepalive 1s", 5 * time.Second, 0, 5, 1},
		{"keepalive given", 10 * time.Second, 5 * time.Second, 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toAPIPeer(Peer{Name: "r", MyASN: 1, PeerASN: 2, Address: addr, HoldTime: tc.hold, KeepaliveTime: tc.keepalive}, false)
			if c := got.Timers.Config; c.HoldTime != tc.wantHold || c.KeepaliveInterval != tc.wantKeepalive {
				t.Errorf("hold %d s, keepalive %d s; want %d s and %d s", c.HoldTime, c.KeepaliveInterval, tc.wantHold, tc.wantKeepalive)
			}
			for _, af := range got.AfiSafis {
				if af.PrefixLimits.GetMaxPrefixes() != DefaultMaxPrefixes {
					t.Errorf("prefix limit of %v = %d, want %d", af.Config.Family, af.PrefixLimits.GetMaxPrefixes(), DefaultMaxPrefixes)
				}
			}
		})
	}
}

// pathAttrs decodes a path into readable strings.
func pathAttrs(t *testing.T, p *apiutil.Path) (string, []string) {
	t.Helper()
	var out []string
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *gobgp.PathAttributeMpReachNLRI:
			out = append(out, "mp-nexthop:"+a.Nexthop.String())
		default:
			out = append(out, strings.ReplaceAll(a.String(), " ", ""))
		}
	}
	return p.Nlri.String(), out
}

// TestRIBPath: the RIB holds each prefix without attributes of its own, with the unspecified
// next hop of its family, which GoBGP replaces by the session's local address (or the export
// policy by the node's address), and LOCAL_PREF 0 (see serverPolicies).
func TestRIBPath(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"198.51.100.100/32", []string{"{Origin:i}", "{LocalPref:0}", "{Nexthop:0.0.0.0}"}},
		{"2001:db8:5::/120", []string{"{Origin:i}", "{LocalPref:0}", "mp-nexthop:::"}},
	} {
		p, err := ribPath(pfx(tc.prefix), false)
		if err != nil {
			t.Fatal(err)
		}
		nlri, got := pathAttrs(t, p)
		if nlri != tc.prefix || p.Withdrawal {
			t.Errorf("path of %s: NLRI %s, withdrawal %v", tc.prefix, nlri, p.Withdrawal)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("attributes of %s (-want +got):\n%s", tc.prefix, diff)
		}
	}
	if p, err := ribPath(pfx("198.51.100.100/32"), true); err != nil || !p.Withdrawal {
		t.Errorf("withdrawal path = %+v, %v", p, err)
	}
}

func TestNextHopFor(t *testing.T) {
	v4 := Peer{Name: "v4", Address: netip.MustParseAddr("198.51.100.1")}
	v6 := Peer{Name: "v6", Address: netip.MustParseAddr("2001:db8::1")}
	n4, n6 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")
	for _, tc := range []struct {
		name   string
		prefix string
		peer   Peer
		n4, n6 netip.Addr
		want   netip.Addr
		err    error
	}{
		{"same family v4", "198.51.100.100/32", v4, n4, n6, netip.Addr{}, nil},
		{"same family v6", "2001:db8:5::1/128", v6, n4, n6, netip.Addr{}, nil},
		{"v6 over v4", "2001:db8:5::1/128", v4, n4, n6, n6, nil},
		{"v4 over v6", "198.51.100.100/32", v6, n4, n6, n4, nil},
		{"v6 over v4 without node IPv6", "2001:db8:5::1/128", v4, n4, netip.Addr{}, netip.Addr{}, ErrNoNextHop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nextHopFor(pfx(tc.prefix), tc.peer, tc.n4, tc.n6)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("nextHopFor = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
