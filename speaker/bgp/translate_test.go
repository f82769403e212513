package bgp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v3/pkg/packet/bgp"
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
		GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}, MpGracefulRestart: gr,
				PrefixLimits: &api.PrefixLimit{Family: familyIPv4, MaxPrefixes: 50}},
			{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}, MpGracefulRestart: gr,
				PrefixLimits: &api.PrefixLimit{Family: familyIPv6, MaxPrefixes: 50}},
		},
	}
	if diff := cmp.Diff(want, toAPIPeer(p), protocmp.Transform()); diff != "" {
		t.Errorf("toAPIPeer (-want +got):\n%s", diff)
	}

	// iBGP: no multihop (TTL is not limited for iBGP), port kept.
	p = Peer{Name: "i", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.1"), Port: 1179, EBGPMultiHop: true}
	got := toAPIPeer(p)
	if got.EbgpMultihop != nil || got.Transport.RemotePort != 1179 || got.GracefulRestart != nil {
		t.Errorf("iBGP peer = %v, want no multihop, no graceful restart, port 1179", got)
	}
	if g := toAPIGlobal(p, netip.MustParseAddr("198.51.100.10")); g.Asn != 64512 || g.RouterId != "198.51.100.10" || g.ListenPort != -1 {
		t.Errorf("toAPIGlobal = %v, want AS 64512, router ID 198.51.100.10, no listener", g)
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
			got := toAPIPeer(Peer{Name: "r", MyASN: 1, PeerASN: 2, Address: addr, HoldTime: tc.hold, KeepaliveTime: tc.keepalive})
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

// pathAttrs decodes what toAPIPath produced into readable strings.
func pathAttrs(t *testing.T, p *api.Path) (string, []string) {
	t.Helper()
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		t.Fatal(err)
	}
	as, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		switch a := a.(type) {
		case *gobgp.PathAttributeMpReachNLRI:
			out = append(out, "mp-nexthop:"+a.Nexthop.String())
		default:
			out = append(out, strings.ReplaceAll(a.String(), " ", ""))
		}
	}
	return nlri.String(), out
}

func TestToAPIPath(t *testing.T) {
	a := attrs{communities: []uint32{64512<<16 | 100}, large: [][3]uint32{{64512, 1, 2}}, localPref: u32(150)}
	for _, tc := range []struct {
		name     string
		prefix   string
		nextHop  netip.Addr
		ibgp     bool
		wantNLRI string
		want     []string
	}{
		{"IPv4 eBGP: no local pref, next hop left to GoBGP", "198.51.100.100/32", netip.Addr{}, false, "198.51.100.100/32",
			[]string{"{Origin:i}", "{Nexthop:0.0.0.0}", "{Communities:64512:100}", "{LargeCommunity:[64512:1:2]}"}},
		{"IPv4 iBGP carries local pref", "198.51.100.0/24", netip.Addr{}, true, "198.51.100.0/24",
			[]string{"{Origin:i}", "{Nexthop:0.0.0.0}", "{Communities:64512:100}", "{LargeCommunity:[64512:1:2]}", "{LocalPref:150}"}},
		{"IPv6 over IPv4 session with node address", "2001:db8:5::/120", netip.MustParseAddr("2001:db8::11"), false, "2001:db8:5::/120",
			[]string{"{Origin:i}", "mp-nexthop:2001:db8::11", "{Communities:64512:100}", "{LargeCommunity:[64512:1:2]}"}},
		{"IPv4 over IPv6 session with node address", "198.51.100.100/32", netip.MustParseAddr("198.51.100.11"), false, "198.51.100.100/32",
			[]string{"{Origin:i}", "{Nexthop:198.51.100.11}", "{Communities:64512:100}", "{LargeCommunity:[64512:1:2]}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := toAPIPath(pfx(tc.prefix), a, tc.nextHop, tc.ibgp)
			if err != nil {
				t.Fatal(err)
			}
			nlri, got := pathAttrs(t, p)
			if nlri != tc.wantNLRI {
				t.Errorf("NLRI = %s, want %s", nlri, tc.wantNLRI)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := toAPIPath(pfx("198.51.100.1/32"), attrs{}, netip.MustParseAddr("2001:db8::1"), false); !errors.Is(err, ErrNoNextHop) {
		t.Errorf("IPv4 route with IPv6 next hop: %v, want ErrNoNextHop", err)
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

func TestSessionLogLastError(t *testing.T) {
	l := newSessionLog(discardLogger(), Peer{Name: "p", Password: "x"})
	l.Debug("failed to connect", map[string]any{"Error": timeoutErr{}})
	if got := l.lastError(); !strings.Contains(got, "TCP MD5 password mismatch") {
		t.Errorf("last error after a connect timeout with a password = %q", got)
	}
	l.Info("Peer Up", nil)
	if got := l.lastError(); got != "" {
		t.Errorf("last error after Peer Up = %q, want none", got)
	}
	l.Info("Peer Down", map[string]any{"Reason": "hold-timer-expired"})
	if got := l.lastError(); got != "session went down: hold-timer-expired" {
		t.Errorf("last error after Peer Down = %q", got)
	}
	l.Debug("state changed", map[string]any{"old": "BGP_FSM_OPENSENT", "new": "BGP_FSM_IDLE", "reason": "notification-received code 2"})
	if got := l.lastError(); got != "session failed in OpenSent: notification-received code 2" {
		t.Errorf("last error after a failed OPEN = %q", got)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "dial tcp 198.51.100.1:179: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
