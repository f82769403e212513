package frr

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/testing/netlab"
)

func TestRender(t *testing.T) {
	cfg := Config{
		Hostname: "r1",
		ASN:      64500,
		RouterID: netip.MustParseAddr("198.51.100.1"),
		Groups: []PeerGroup{{
			Name:          "nodes",
			ListenRanges:  []netip.Prefix{netip.MustParsePrefix("198.51.100.7/24")},
			Neighbors:     []netip.Addr{netip.MustParseAddr("2001:db8::5")},
			Password:      "s3cret",
			KeepaliveTime: time.Second,
			HoldTime:      3 * time.Second,
			ConnectTime:   2 * time.Second,
		}, {
			Name:      "ibgp",
			RemoteASN: 64500,
			Passive:   true,
		}},
		MaximumPaths: 4,
		Networks:     []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:1::/48")},
		Extra:        []string{"bgp log-neighbor-changes"},
	}
	got, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	want := `frr defaults traditional
hostname r1
!
router bgp 64500
 bgp router-id 198.51.100.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 neighbor nodes peer-group
 neighbor nodes remote-as external
 neighbor nodes password s3cret
 neighbor nodes timers 1 3
 neighbor nodes timers connect 2
 bgp listen range 198.51.100.0/24 peer-group nodes
 neighbor 2001:db8::5 peer-group nodes
 neighbor ibgp peer-group
 neighbor ibgp remote-as 64500
 neighbor ibgp passive
 !
 address-family ipv4 unicast
  maximum-paths 4
  maximum-paths ibgp 4
  neighbor nodes activate
  neighbor ibgp activate
  network 203.0.113.0/24
 exit-address-family
 !
 address-family ipv6 unicast
  maximum-paths 4
  maximum-paths ibgp 4
  neighbor nodes activate
  neighbor ibgp activate
  network 2001:db8:1::/48
 exit-address-family
 bgp log-neighbor-changes
exit
!
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

func TestRenderBFD(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{name: "no profiles", cfg: Config{Hostname: "r1"}, want: "hostname r1\ndebug bfd peer\ndebug bfd network\n"},
		{
			name: "profiles",
			cfg: Config{Hostname: "r1", BFDProfiles: []BFDProfile{
				{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 100 * time.Millisecond, DetectMultiplier: 5, Passive: true},
				{Name: "defaults"},
			}},
			want: `hostname r1
debug bfd peer
debug bfd network
bfd
 profile fast
  receive-interval 300
  transmit-interval 100
  detect-multiplier 5
  passive-mode
 exit
 profile defaults
 exit
exit
!
`,
		},
		{name: "bad name", cfg: Config{BFDProfiles: []BFDProfile{{Name: "a b"}}}, wantErr: "BFD profile name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.RenderBFD()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RenderBFD error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RenderBFD (-want +got):\n%s", diff)
			}
		})
	}
	g := Config{ASN: 1, RouterID: netip.MustParseAddr("198.51.100.1"), Groups: []PeerGroup{{Name: "g", BFD: true, BFDProfile: "fast", UpdateSource: netip.MustParseAddr("198.51.100.1")}}}
	conf, err := g.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, " neighbor g update-source 198.51.100.1\n neighbor g bfd\n neighbor g bfd profile fast\n") {
		t.Errorf("bgpd configuration of a group with BFD lacks its update-source, `neighbor g bfd` or its profile:\n%s", conf)
	}
}

func TestRenderErrors(t *testing.T) {
	id := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no ASN", Config{RouterID: id}, "ASN is 0"},
		{"IPv6 router ID", Config{ASN: 1, RouterID: netip.MustParseAddr("2001:db8::1")}, "router ID"},
		{"bad group name", Config{ASN: 1, RouterID: id, Groups: []PeerGroup{{Name: "a b"}}}, "peer-group name"},
		{"password with space", Config{ASN: 1, RouterID: id, Groups: []PeerGroup{{Name: "g", Password: "a b"}}}, "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.Render()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseKernelRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"none", "", nil},
		{"empty list", "[]\n", nil},
		{"single", `[{"dst":"203.0.113.0/24","nhid":7,"gateway":"198.51.100.2","dev":"eth0","protocol":"bgp"}]`, []string{"198.51.100.2"}},
		{"ecmp", `[{"dst":"198.51.100.100","nhid":30,"protocol":"bgp","nexthops":[{"gateway":"198.51.100.13","dev":"eth0"},{"gateway":"198.51.100.11","dev":"eth0"},{"gateway":"198.51.100.12","dev":"eth0"}]}]`,
			[]string{"198.51.100.11", "198.51.100.12", "198.51.100.13"}},
		{"ipv6", `[{"dst":"2001:db8:5::1","nexthops":[{"gateway":"2001:db8::12"},{"gateway":"2001:db8::11"}]}]`, []string{"2001:db8::11", "2001:db8::12"}},
		{"ipv4 via ipv6 (RFC 8950)", `[{"dst":"203.0.113.5","via":{"family":"inet6","host":"fe80::1"},"dev":"d0","flags":[]}]`, []string{"fe80::1"}},
		{"ipv4 ecmp via ipv6", `[{"dst":"203.0.113.6","flags":[],"nexthops":[{"via":{"family":"inet6","host":"fe80::2"},"dev":"d0","weight":1,"flags":[]},{"via":{"family":"inet6","host":"fe80::1"},"dev":"d0","weight":1,"flags":[]}]}]`,
			[]string{"fe80::1", "fe80::2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKernelRoutes([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var gotS []string
			for _, a := range got {
				gotS = append(gotS, a.String())
			}
			if diff := cmp.Diff(tc.want, gotS); diff != "" {
				t.Errorf("next hops (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseKernelRoutes(f *testing.F) {
	f.Add([]byte(`[{"dst":"198.51.100.100","nexthops":[{"gateway":"198.51.100.13"}]}]`))
	f.Add([]byte(`[{"gateway":"zz"}]`))
	f.Add([]byte(`[{"dst":"203.0.113.5","via":{"family":"inet6","host":"fe80::1"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hops, err := parseKernelRoutes(data)
		if err != nil {
			return
		}
		for i, h := range hops {
			if !h.IsValid() || (i > 0 && hops[i-1].Compare(h) >= 0) {
				t.Fatalf("next hops not valid, sorted and unique: %v", hops)
			}
		}
	})
}

// TestRouterPair runs two FRR routers that peer over IPv4 (one through a listen range) and
// checks neighbors, paths with communities and the kernel table, and that Close cleans up.
func TestRouterPair(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	l := netlab.ForTest(t)
	sw, err := l.AddNS("sw")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bridge(sw, "br0"); err != nil {
		t.Fatal(err)
	}
	var nss []string
	for i, name := range []string{"a", "b"} {
		ns, err := l.AddNS(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Veth(ns, "eth0", sw, "p"+name, "br0"); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"198.51.100.%d/24", "2001:db8::%d/64"} {
			if _, err := l.Exec(ns, "ip", "addr", "add", strings.Replace(a, "%d", string(rune('1'+i)), 1), "dev", "eth0"); err != nil {
				t.Fatal(err)
			}
		}
		nss = append(nss, ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ra, err := Start(ctx, nss[0], Config{
		ASN: 64500, RouterID: netip.MustParseAddr("198.51.100.1"), BFD: true,
		Groups: []PeerGroup{{Name: "nodes", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
			KeepaliveTime: time.Second, HoldTime: 3 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := ra.Dir()
	defer ra.Close()
	if out, err := ra.VtyshDaemon(ctx, "bfdd", "show bfd peers json"); err != nil || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("bfdd answers show bfd peers json with %q (%v), want a JSON list", out, err)
	}
	rb, err := Start(ctx, nss[1], Config{
		ASN: 64501, RouterID: netip.MustParseAddr("198.51.100.2"),
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		Groups: []PeerGroup{{Name: "up", Neighbors: []netip.Addr{netip.MustParseAddr("198.51.100.1")},
			KeepaliveTime: time.Second, HoldTime: 3 * time.Second, ConnectTime: time.Second}},
		Extra: []string{
			"address-family ipv4 unicast",
			" neighbor up route-map tag out",
			"exit-address-family",
			"exit",
			"route-map tag permit 10",
			" set community 64501:7",
			" set large-community 64501:1:2",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	nbs, err := ra.WaitEstablished(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	nb := nbs[netip.MustParseAddr("198.51.100.2")]
	if nb.RemoteAS != 64501 || nb.PeerGroup != "nodes" || nb.ConnectionsEstablished != 1 {
		t.Errorf("neighbor = %+v, want remote AS 64501 in group nodes, 1 connection", nb)
	}
	prefix := netip.MustParsePrefix("203.0.113.0/24")
	if _, err := ra.WaitKernelNextHops(ctx, prefix, []netip.Addr{netip.MustParseAddr("198.51.100.2")}, 0); err != nil {
		t.Fatal(err)
	}
	paths, err := ra.Paths(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []Path{{
		Peer:             netip.MustParseAddr("198.51.100.2"),
		NextHops:         []netip.Addr{netip.MustParseAddr("198.51.100.2")},
		ASPath:           "64501",
		Communities:      []string{"64501:7"},
		LargeCommunities: []string{"64501:1:2"},
		Best:             true,
	}}
	if diff := cmp.Diff(want, paths, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if none, err := ra.Paths(ctx, netip.MustParsePrefix("192.0.2.0/24")); err != nil || len(none) != 0 {
		t.Errorf("paths of an unknown prefix = %v, %v; want none", none, err)
	}

	if err := rb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.WaitKernelNextHops(ctx, prefix, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := ra.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still present after Close (stat err %v)", dir, err)
	}
}
