package config

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

func duration(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func peerSecrets() []corev1.Secret {
	return []corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bgp"}, Data: map[string][]byte{"password": []byte("pw1"), "other": []byte("pw2"),
			"max": []byte(strings.Repeat("p", 80)), "long": []byte(strings.Repeat("p", 81)), "empty": {}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "far"}, Data: map[string][]byte{"password": []byte("x")}},
	}
}

func peerBFDProfiles() []v1beta1.BFDProfile {
	return []v1beta1.BFDProfile{{ObjectMeta: objectMeta("fast"), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: ptr[uint32](50)}}}
}

func TestParsePeers(t *testing.T) {
	withSpec := func(p v1beta1.BGPPeer, f func(*v1beta1.BGPPeerSpec)) v1beta1.BGPPeer {
		f(&p.Spec)
		return p
	}
	defaults := func(p *Peer) *Peer {
		p.Port, p.HoldTime, p.KeepaliveTime, p.ConnectTime, p.MaxPrefixes = 179, 90*time.Second, 30*time.Second, 10*time.Second, 1000
		p.GracefulRestart, p.GracefulRestartTime = true, 120*time.Second
		return p
	}
	fast := &BFDProfile{Name: "fast", ReceiveInterval: 50 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254}
	tests := []struct {
		name string
		peer v1beta1.BGPPeer
		want *Peer
	}{
		{
			name: "defaults",
			peer: bgpPeer("p", 64512, 64513, "198.51.100.1"),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1")}),
		},
		{
			name: "everything set",
			peer: withSpec(bgpPeer("p", 64512, 64513, "2001:db8::1"), func(s *v1beta1.BGPPeerSpec) {
				s.PeerPort = 1179
				s.SourceAddress = "2001:db8::10"
				s.HoldTime = duration(30 * time.Second)
				s.KeepaliveTime = duration(5 * time.Second)
				s.ConnectTime = duration(2 * time.Second)
				s.RouterID = "198.51.100.10"
				s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}
				s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp", Key: "other"}
				s.EnableGracefulRestart = ptr(true)
				s.GracefulRestartTime = duration(30 * time.Second)
				s.BFDProfile = "fast"
				s.MaxPrefixes = ptr[uint32](50)
			}),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("2001:db8::1"), Port: 1179,
				SourceAddress: netip.MustParseAddr("2001:db8::10"),
				HoldTime:      30 * time.Second, KeepaliveTime: 5 * time.Second, ConnectTime: 2 * time.Second, MaxPrefixes: 50,
				RouterID:      netip.MustParseAddr("198.51.100.10"),
				NodeSelectors: []labels.Selector{selector(t, "rack=r1")},
				Password:      "pw2", GracefulRestart: true, GracefulRestartTime: 30 * time.Second, BFDProfile: fast,
			},
		},
		{
			name: "graceful restart off",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.EnableGracefulRestart = ptr(false) }),
			want: func() *Peer {
				p := defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1")})
				p.GracefulRestart, p.GracefulRestartTime = false, 0
				return p
			}(),
		},
		{
			name: "unnumbered (interface)",
			peer: withSpec(bgpPeer("p", 64512, 64513, ""), func(s *v1beta1.BGPPeerSpec) { s.Interface = "eth1" }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Interface: "eth1"}),
		},
		{
			name: "graceful restart explicitly on, restart time default",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.EnableGracefulRestart = ptr(true) }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1")}),
		},
		{
			name: "graceful shutdown, default time",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.GracefulShutdown = true }),
			want: func() *Peer {
				p := defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1")})
				p.GracefulShutdown, p.GracefulShutdownTime = true, 5*time.Second
				return p
			}(),
		},
		{
			name: "graceful shutdown with its time",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.GracefulShutdown = true
				s.GracefulShutdownTime = duration(1500 * time.Millisecond)
			}),
			want: func() *Peer {
				p := defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1")})
				p.GracefulShutdown, p.GracefulShutdownTime = true, 1500*time.Millisecond
				return p
			}(),
		},
		{
			name: "multi-hop",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.EBGPMultiHop = true }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), EBGPMultiHop: true}),
		},
		{
			name: "multi-hop with BFD (RFC 5883)",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.EBGPMultiHop, s.BFDProfile = true, "fast" }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), EBGPMultiHop: true, BFDProfile: fast}),
		},
		{
			name: "password under the default key",
			peer: withSpec(bgpPeer("p", 64512, 64512, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp"}
			}),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.1"), Password: "pw1"}),
		},
		{
			// The default keepalive is one third of the hold time rounded down to whole seconds:
			// GoBGP counts seconds, and 10s/3 would be 3.333s.
			name: "keepalive derived from hold time, whole seconds",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(10 * time.Second) }),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 10 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 10 * time.Second, MaxPrefixes: 1000,
				GracefulRestart: true, GracefulRestartTime: 120 * time.Second,
			},
		},
		{
			name: "shortest hold time",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(5 * time.Second) }),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 5 * time.Second, KeepaliveTime: time.Second, ConnectTime: 10 * time.Second, MaxPrefixes: 1000,
				GracefulRestart: true, GracefulRestartTime: 120 * time.Second,
			},
		},
		{
			name: "keepalive equal to hold time, longest timers",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime = duration(65535 * time.Second)
				s.KeepaliveTime = duration(65535 * time.Second)
				s.ConnectTime = duration(65535 * time.Second)
			}),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 65535 * time.Second, KeepaliveTime: 65535 * time.Second, ConnectTime: 65535 * time.Second, MaxPrefixes: 1000,
				GracefulRestart: true, GracefulRestartTime: 120 * time.Second,
			},
		},
		{
			// internal pins the router's AS to myASN: the same session as peerASN = myASN.
			name: "dynamic ASN internal",
			peer: withSpec(bgpPeer("p", 64512, 0, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.DynamicASN = v1beta1.DynamicASNInternal }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64512, DynamicASN: v1beta1.DynamicASNInternal, Address: netip.MustParseAddr("198.51.100.1")}),
		},
		{
			name: "dynamic ASN external, multi-hop",
			peer: withSpec(bgpPeer("p", 64512, 0, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.DynamicASN = v1beta1.DynamicASNExternal
				s.EBGPMultiHop = true
			}),
			want: defaults(&Peer{Name: "p", MyASN: 64512, DynamicASN: v1beta1.DynamicASNExternal, Address: netip.MustParseAddr("198.51.100.1"), EBGPMultiHop: true}),
		},
		{
			name: "VRF",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.VRF = "red-1.x_y" }),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), VRF: "red-1.x_y"}),
		},
		{
			name: "password of 80 bytes, unique-local IPv6 peer",
			peer: withSpec(bgpPeer("p", 64512, 64513, "fd00::1"), func(s *v1beta1.BGPPeerSpec) {
				s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp", Key: "max"}
			}),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("fd00::1"), Password: strings.Repeat("p", 80)}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, Snapshot{Peers: []v1beta1.BGPPeer{tt.peer}, Secrets: peerSecrets(), BFDProfiles: peerBFDProfiles()})
			if diff := cmp.Diff(map[string]*Peer{tt.want.Name: tt.want}, cfg.Peers, cmpOpts()); diff != "" {
				t.Errorf("Peers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePeerErrors(t *testing.T) {
	peer := func(f func(*v1beta1.BGPPeerSpec)) []v1beta1.BGPPeer {
		p := bgpPeer("p", 64512, 64513, "198.51.100.1")
		f(&p.Spec)
		return []v1beta1.BGPPeer{p}
	}
	// Each helper gives the peer its own address, so that several fit in one snapshot.
	var next byte
	named := func(name string) v1beta1.BGPPeer {
		next++
		return bgpPeer(name, 64512, 64513, netip.AddrFrom4([4]byte{198, 51, 100, next}).String())
	}
	withKeepalive := func(name string, d time.Duration) v1beta1.BGPPeer {
		p := named(name)
		p.Spec.KeepaliveTime = duration(d)
		return p
	}
	withRouterID := func(name, id string) v1beta1.BGPPeer {
		p := named(name)
		p.Spec.RouterID = id
		return p
	}
	withPassword := func(name, key string) v1beta1.BGPPeer {
		p := named(name)
		p.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp", Key: key}
		return p
	}
	const useRouter = "use the router's unicast address, such as 198.51.100.1 or 2001:db8::1"
	const badID = "is not a usable BGP identifier: 0.0.0.0 is invalid (RFC 6286), and routers that follow RFC 4271 (a unicast host address) answer an identifier in 224.0.0.0/3 with a Bad BGP Identifier NOTIFICATION; use an address such as 198.51.100.10, or leave it empty for the node's own"
	tests := []struct {
		name  string
		peers []v1beta1.BGPPeer
		want  []string
	}{
		{
			name:  "AS numbers 0",
			peers: []v1beta1.BGPPeer{bgpPeer("p", 0, 0, "198.51.100.1")},
			want: []string{
				`BGPPeer herald-system/p: spec.myASN "0": an AS number must be between 1 and 4294967295, such as 64512`,
				`BGPPeer herald-system/p: spec.peerASN "0": is required (or dynamicASN): set the router's AS number, such as 64500, or dynamicASN internal (the router is in myASN) or external (any other AS)`,
			},
		},
		{
			name: "peerASN and dynamicASN: none, both, unknown",
			peers: []v1beta1.BGPPeer{
				bgpPeer("none", 64512, 0, "198.51.100.1"),
				func() v1beta1.BGPPeer {
					p := bgpPeer("both", 64512, 64513, "198.51.100.2")
					p.Spec.DynamicASN = v1beta1.DynamicASNExternal
					return p
				}(),
				func() v1beta1.BGPPeer {
					p := bgpPeer("unknown", 64512, 0, "198.51.100.3")
					p.Spec.DynamicASN = "any"
					return p
				}(),
			},
			want: []string{
				`BGPPeer herald-system/both: spec.dynamicASN "external": set either peerASN (64513) or dynamicASN, not both; remove one`,
				`BGPPeer herald-system/none: spec.peerASN "0": is required (or dynamicASN): set the router's AS number, such as 64500, or dynamicASN internal (the router is in myASN) or external (any other AS)`,
				`BGPPeer herald-system/unknown: spec.dynamicASN "any": must be internal (the router is in myASN) or external (any AS number but myASN)`,
			},
		},
		{
			name: "ebgpMultiHop on dynamic internal",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.PeerASN, s.DynamicASN, s.EBGPMultiHop = 0, v1beta1.DynamicASNInternal, true
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.ebgpMultiHop "true": applies only to eBGP sessions, but dynamicASN internal makes this iBGP (AS 64512); remove ebgpMultiHop or use dynamicASN external`,
			},
		},
		{
			name: "VRF names, BFD in a VRF",
			peers: func() []v1beta1.BGPPeer {
				var out []v1beta1.BGPPeer
				for i, v := range []string{"-red", "red/blue", "sixteen-chars-xx", "..", "ok"} {
					p := named(fmt.Sprintf("v%d", i))
					p.Spec.VRF = v
					if v == "ok" {
						p.Spec.BFDProfile = "fast"
					}
					out = append(out, p)
				}
				return out
			}(),
			want: []string{
				`BGPPeer herald-system/v0: spec.vrf "-red": is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as red (the VRF device on the nodes)`,
				`BGPPeer herald-system/v1: spec.vrf "red/blue": is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as red (the VRF device on the nodes)`,
				`BGPPeer herald-system/v2: spec.vrf "sixteen-chars-xx": is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as red (the VRF device on the nodes)`,
				`BGPPeer herald-system/v3: spec.vrf "..": is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as red (the VRF device on the nodes)`,
				`BGPPeer herald-system/v4: spec.bfdProfile "fast": BFD on a session in a VRF is not supported: Herald's BFD sockets live in the default VRF; remove bfdProfile, or vrf`,
			},
		},
		{
			name:  "ebgpMultiHop on iBGP",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.PeerASN = 64512; s.EBGPMultiHop = true }),
			want: []string{
				`BGPPeer herald-system/p: spec.ebgpMultiHop "true": applies only to eBGP sessions, but myASN and peerASN are both 64512 (iBGP); remove ebgpMultiHop or correct the AS numbers`,
			},
		},
		{
			name: "addresses",
			peers: []v1beta1.BGPPeer{
				bgpPeer("a", 64512, 64513, "198.51.100.300"),
				bgpPeer("b", 64512, 64513, ""),
				bgpPeer("c", 64512, 64513, "fe80::1%eth0"),
				bgpPeer("d", 64512, 64513, "::ffff:198.51.100.1"),
			},
			want: []string{
				`BGPPeer herald-system/a: spec.peerAddress "198.51.100.300": not a valid IP address; use an address such as 198.51.100.1 or 2001:db8::1`,
				`BGPPeer herald-system/b: spec.peerAddress: is required (or interface): set the router's address, such as 198.51.100.1 or 2001:db8::1, or interface for BGP unnumbered, such as eth1 (the nodes' interface to the router)`,
				`BGPPeer herald-system/c: spec.peerAddress "fe80::1%eth0": has an IPv6 zone; remove the part from '%' on`,
				`BGPPeer herald-system/d: spec.peerAddress "::ffff:198.51.100.1": is an IPv4-mapped IPv6 address; write it as 198.51.100.1`,
			},
		},
		{
			name: "source address and router ID",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.SourceAddress = "2001:db8::10"
				s.RouterID = "2001:db8::10"
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.sourceAddress "2001:db8::10": is not of the same IP family as peerAddress 198.51.100.1; use an IPv4 address of the node`,
				`BGPPeer herald-system/p: spec.routerID "2001:db8::10": a BGP router ID must be an IPv4 address, such as 198.51.100.10 (also for IPv6 sessions)`,
			},
		},
		{
			name: "bad source address and router ID",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.SourceAddress = "nope"
				s.RouterID = "1.2.3"
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.sourceAddress "nope": not a valid IP address; use an address such as 198.51.100.10 or 2001:db8::10`,
				`BGPPeer herald-system/p: spec.routerID "1.2.3": not a valid IP address; use an address such as 198.51.100.10`,
			},
		},
		{
			name: "hold time too short, keepalive above it, connect time too short",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime = duration(2 * time.Second)
				s.KeepaliveTime = duration(3 * time.Second)
				s.ConnectTime = duration(500 * time.Millisecond)
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "2s": must be between 3s and 65535s (default 90s)`,
				`BGPPeer herald-system/p: spec.keepaliveTime "3s": must not be longer than holdTime 2s; use at most 2s (one third of holdTime is usual)`,
				`BGPPeer herald-system/p: spec.connectTime "500ms": must be between 1s and 65535s (default 10s)`,
			},
		},
		{
			name:  "graceful restart time too long",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.GracefulRestartTime = duration(4096 * time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulRestartTime "1h8m16s": must be between 1s and 4095s (RFC 4724 carries it in 12 bits of seconds); default 120s`,
			},
		},
		{
			name:  "graceful restart time not whole seconds",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.GracefulRestartTime = duration(1500 * time.Millisecond) }),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulRestartTime "1.5s": must be a whole number of seconds (BGP carries it in seconds), such as 1s`,
			},
		},
		{
			name: "graceful restart time without graceful restart",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.EnableGracefulRestart = ptr(false)
				s.GracefulRestartTime = duration(30 * time.Second)
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulRestartTime "30s": applies only with graceful restart, and enableGracefulRestart is false; remove gracefulRestartTime, or enableGracefulRestart`,
			},
		},
		{
			name:  "graceful shutdown time without graceful shutdown",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.GracefulShutdownTime = duration(10 * time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulShutdownTime "10s": applies only with gracefulShutdown: true; set gracefulShutdown: true, or remove gracefulShutdownTime`,
			},
		},
		{
			name: "graceful shutdown time too short",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.GracefulShutdown = true
				s.GracefulShutdownTime = duration(500 * time.Millisecond)
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulShutdownTime "500ms": must be between 1s and 1m0s (default 5s): how long the routes carry the GRACEFUL_SHUTDOWN community before they are withdrawn`,
			},
		},
		{
			name: "graceful shutdown time too long",
			peers: peer(func(s *v1beta1.BGPPeerSpec) {
				s.GracefulShutdown = true
				s.GracefulShutdownTime = duration(61 * time.Second)
			}),
			want: []string{
				`BGPPeer herald-system/p: spec.gracefulShutdownTime "1m1s": must be between 1s and 1m0s (default 5s): how long the routes carry the GRACEFUL_SHUTDOWN community before they are withdrawn`,
			},
		},
		{
			name:  "hold time too long",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(65536 * time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "18h12m16s": must be between 3s and 65535s (default 90s)`,
			},
		},
		{
			name:  "hold time not whole seconds",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(4500 * time.Millisecond) }),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "4.5s": must be a whole number of seconds (BGP carries it in seconds), such as 4s`,
			},
		},
		{
			// GoBGP turns a configured hold time of 0 into 90s.
			name:  "hold time 0",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(0) }),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "0s": must be between 3s and 65535s (default 90s): a hold time of 0 (no keepalives) is not supported by the embedded GoBGP, which would run the session with 90s; use a hold time such as 90s, or remove holdTime`,
			},
		},
		{
			name:  "keepalive not whole seconds",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = duration(2500 * time.Millisecond) }),
			want: []string{
				`BGPPeer herald-system/p: spec.keepaliveTime "2.5s": must be a whole number of seconds (BGP timers count seconds), such as 2s`,
			},
		},
		{
			name:  "keepalive 0 or below a second",
			peers: []v1beta1.BGPPeer{withKeepalive("a", 0), withKeepalive("b", 999*time.Millisecond), withKeepalive("c", -time.Second)},
			want: []string{
				`BGPPeer herald-system/a: spec.keepaliveTime "0s": must be at least 1s; use a whole number of seconds up to holdTime 1m30s, or remove keepaliveTime for one third of holdTime (30s)`,
				`BGPPeer herald-system/b: spec.keepaliveTime "999ms": must be at least 1s; use a whole number of seconds up to holdTime 1m30s, or remove keepaliveTime for one third of holdTime (30s)`,
				`BGPPeer herald-system/c: spec.keepaliveTime "-1s": must be at least 1s; use a whole number of seconds up to holdTime 1m30s, or remove keepaliveTime for one third of holdTime (30s)`,
			},
		},
		{
			name:  "connect time not whole seconds",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.ConnectTime = duration(1500 * time.Millisecond) }),
			want: []string{
				`BGPPeer herald-system/p: spec.connectTime "1.5s": must be a whole number of seconds (the speaker counts it in seconds), such as 1s`,
			},
		},
		{
			name: "unusable peer addresses",
			peers: []v1beta1.BGPPeer{
				bgpPeer("a", 64512, 64513, "0.0.0.0"),
				bgpPeer("b", 64512, 64513, "::"),
				bgpPeer("c", 64512, 64513, "127.0.0.1"),
				bgpPeer("d", 64512, 64513, "::1"),
				bgpPeer("e", 64512, 64513, "224.0.0.5"),
				bgpPeer("f", 64512, 64513, "ff02::5"),
				bgpPeer("g", 64512, 64513, "169.254.0.1"),
				bgpPeer("h", 64512, 64513, "fe80::1"),
				bgpPeer("i", 64512, 64513, "255.255.255.255"),
				bgpPeer("j", 64512, 64513, "0.1.2.3"),
				bgpPeer("k", 64512, 64513, "240.0.0.1"),
			},
			want: []string{
				`BGPPeer herald-system/a: spec.peerAddress "0.0.0.0": is the unspecified address; ` + useRouter,
				`BGPPeer herald-system/b: spec.peerAddress "::": is the unspecified address; ` + useRouter,
				`BGPPeer herald-system/c: spec.peerAddress "127.0.0.1": is a loopback address, which never leaves the node; ` + useRouter,
				`BGPPeer herald-system/d: spec.peerAddress "::1": is a loopback address, which never leaves the node; ` + useRouter,
				`BGPPeer herald-system/e: spec.peerAddress "224.0.0.5": is a multicast address; ` + useRouter,
				`BGPPeer herald-system/f: spec.peerAddress "ff02::5": is a multicast address; ` + useRouter,
				`BGPPeer herald-system/g: spec.peerAddress "169.254.0.1": is a link-local address, which needs an interface that a BGPPeer cannot name; ` + useRouter,
				`BGPPeer herald-system/h: spec.peerAddress "fe80::1": is a link-local address, which needs an interface that a BGPPeer cannot name; ` + useRouter,
				`BGPPeer herald-system/i: spec.peerAddress "255.255.255.255": is the IPv4 broadcast address; ` + useRouter,
				`BGPPeer herald-system/j: spec.peerAddress "0.1.2.3": is in 0.0.0.0/8 (this host on this network), which cannot be connected to; ` + useRouter,
				`BGPPeer herald-system/k: spec.peerAddress "240.0.0.1": is in the reserved range 240.0.0.0/4; ` + useRouter,
			},
		},
		{
			name:  "unusable source address",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.SourceAddress = "127.0.0.1" }),
			want: []string{
				`BGPPeer herald-system/p: spec.sourceAddress "127.0.0.1": is a loopback address, which never leaves the node; use a unicast address of the nodes, such as 198.51.100.10 or 2001:db8::10, or leave it empty`,
			},
		},
		{
			name: "unusable router IDs",
			peers: []v1beta1.BGPPeer{
				withRouterID("a", "0.0.0.0"), withRouterID("b", "224.0.0.1"), withRouterID("c", "255.255.255.255"),
			},
			want: []string{
				`BGPPeer herald-system/a: spec.routerID "0.0.0.0": ` + badID,
				`BGPPeer herald-system/b: spec.routerID "224.0.0.1": ` + badID,
				`BGPPeer herald-system/c: spec.routerID "255.255.255.255": ` + badID,
			},
		},
		{
			name: "password too long or empty",
			peers: []v1beta1.BGPPeer{
				withPassword("a", "long"), withPassword("b", "empty"),
			},
			want: []string{
				`BGPPeer herald-system/a: spec.passwordSecret "bgp": the password in key "long" of Secret herald-system/bgp is 81 bytes long; a TCP MD5 key holds at most 80 bytes (Linux TCP_MD5SIG_MAXKEYLEN), so no session could open; use a shorter password here and on the router`,
				`BGPPeer herald-system/b: spec.passwordSecret "bgp": the password in key "empty" of Secret herald-system/bgp is empty, which would run the session without TCP MD5; put the password there, or remove passwordSecret`,
			},
		},
		{
			name:  "max prefixes 0",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.MaxPrefixes = ptr[uint32](0) }),
			want: []string{
				`BGPPeer herald-system/p: spec.maxPrefixes "0": must be between 1 and 4294967295 (default 1000): it is the most prefixes accepted from the router per address family before the session is closed`,
			},
		},
		{
			name:  "no name",
			peers: []v1beta1.BGPPeer{bgpPeer("", 64512, 64513, "198.51.100.1")},
			want: []string{
				`BGPPeer herald-system/: metadata.name: is required; name the BGPPeer, such as tor-1 (BGPAdvertisements and session status refer to peers by name)`,
			},
		},
		{
			name:  "keepalive above the default hold time",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = duration(91 * time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.keepaliveTime "1m31s": must not be longer than holdTime 1m30s; use at most 1m30s (one third of holdTime is usual)`,
			},
		},
		{
			name: "missing secret, secret in another namespace, missing key",
			peers: []v1beta1.BGPPeer{
				{ObjectMeta: objectMeta("a"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.1",
					PasswordSecret: &v1beta1.SecretKeyReference{Name: "missing"}}},
				{ObjectMeta: objectMeta("b"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.2",
					PasswordSecret: &v1beta1.SecretKeyReference{Name: "far"}}},
				{ObjectMeta: objectMeta("c"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.3",
					PasswordSecret: &v1beta1.SecretKeyReference{Name: "bgp", Key: "pass"}}},
			},
			want: []string{
				`BGPPeer herald-system/a: spec.passwordSecret.name "missing": no Secret with this name in namespace "herald-system"; create it with the password under key "password" and the label herald.dev/speaker-secret=true (the speakers read only Secrets with it), or remove passwordSecret`,
				`BGPPeer herald-system/b: spec.passwordSecret.name "far": no Secret with this name in namespace "herald-system"; create it with the password under key "password" and the label herald.dev/speaker-secret=true (the speakers read only Secrets with it), or remove passwordSecret`,
				`BGPPeer herald-system/c: spec.passwordSecret.key "pass": Secret herald-system/bgp has no such key (known: empty, long, max, other, password); put the password under this key or name the right one`,
			},
		},
		{
			name:  "missing BFD profile",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "slow" }),
			want: []string{
				`BGPPeer herald-system/p: spec.bfdProfile "slow": no BFDProfile with this name (known: fast); create it or name an existing one`,
			},
		},
		{
			name: "unnumbered: interface and the fields that do not go with it",
			peers: func() []v1beta1.BGPPeer {
				unnumbered := func(name string, f func(*v1beta1.BGPPeerSpec)) v1beta1.BGPPeer {
					p := bgpPeer(name, 64512, 64513, "")
					p.Spec.Interface = name
					f(&p.Spec)
					return p
				}
				return []v1beta1.BGPPeer{
					unnumbered("both", func(s *v1beta1.BGPPeerSpec) { s.PeerAddress = "198.51.100.1" }),
					unnumbered("bad", func(s *v1beta1.BGPPeerSpec) { s.Interface = "eth 1" }),
					unnumbered("mh", func(s *v1beta1.BGPPeerSpec) { s.EBGPMultiHop = true }),
					unnumbered("src", func(s *v1beta1.BGPPeerSpec) { s.SourceAddress = "2001:db8::10" }),
					unnumbered("vrf", func(s *v1beta1.BGPPeerSpec) { s.VRF = "red" }),
					unnumbered("bfd", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" }),
					bgpPeer("none", 64512, 64513, ""),
				}
			}(),
			want: []string{
				`BGPPeer herald-system/bad: spec.interface "eth 1": is not a Linux device name: use up to 15 letters, digits, '_', '.' and '-', starting with a letter or digit, such as eth1 (the nodes' interface to the router)`,
				`BGPPeer herald-system/bfd: spec.bfdProfile "fast": BFD on an unnumbered session (interface bfd) is not supported; remove bfdProfile, or use peerAddress`,
				`BGPPeer herald-system/both: spec.interface "both": set either peerAddress (198.51.100.1) or interface, not both: interface runs BGP unnumbered to the router's link-local address, learnt on the interface; remove one`,
				`BGPPeer herald-system/mh: spec.ebgpMultiHop "true": does not apply to an unnumbered session (interface mh): it runs to the router's link-local address, one hop away; remove ebgpMultiHop`,
				`BGPPeer herald-system/none: spec.peerAddress: is required (or interface): set the router's address, such as 198.51.100.1 or 2001:db8::1, or interface for BGP unnumbered, such as eth1 (the nodes' interface to the router)`,
				`BGPPeer herald-system/src: spec.sourceAddress "2001:db8::10": does not apply to an unnumbered session (interface src): it runs from the interface's link-local address; remove sourceAddress`,
				`BGPPeer herald-system/vrf: spec.vrf "red": an unnumbered session (interface vrf) in a VRF is not supported; remove vrf, or use peerAddress`,
			},
		},
		{
			name: "two unnumbered sessions on one interface from the same nodes: the later peer is reported",
			peers: []v1beta1.BGPPeer{
				{ObjectMeta: objectMeta("b"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, Interface: "eth1"}},
				{ObjectMeta: objectMeta("a"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 3, Interface: "eth1"}},
				// Another interface, or other nodes: allowed.
				{ObjectMeta: objectMeta("c"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, Interface: "eth2"}},
				{ObjectMeta: objectMeta("d"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, Interface: "eth1",
					NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}}},
			},
			want: []string{
				`BGPPeer herald-system/b: spec.interface "eth1": BGPPeer a has the same interface on the same nodes; a node opens one unnumbered session per interface; merge the peers or give them nodeSelectors that select different nodes`,
				`BGPPeer herald-system/d: spec.interface "eth1": BGPPeer a has the same interface on the same nodes; a node opens one unnumbered session per interface; merge the peers or give them nodeSelectors that select different nodes`,
			},
		},
		{
			name: "two sessions to one address from the same nodes: the later peer is reported",
			peers: []v1beta1.BGPPeer{
				bgpPeer("b", 64512, 64513, "198.51.100.1"),
				bgpPeer("a", 64512, 64514, "198.51.100.1"),
				// Different node selectors: allowed.
				{ObjectMeta: objectMeta("c"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.2",
					NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}}},
				{ObjectMeta: objectMeta("d"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.2",
					NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r2"}}}}},
				// The same address in two VRFs (and the default one): three routers, allowed.
				{ObjectMeta: objectMeta("e"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.1", VRF: "red"}},
				{ObjectMeta: objectMeta("f"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.1", VRF: "blue"}},
			},
			want: []string{
				`BGPPeer herald-system/b: spec.peerAddress "198.51.100.1": BGPPeer a has the same peer address on the same nodes; a node opens one session per peer address; merge the peers or give them nodeSelectors that select different nodes`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Snapshot{Peers: tt.peers, Secrets: peerSecrets(), BFDProfiles: peerBFDProfiles()})
			if diff := cmp.Diff(tt.want, errorLines(t, err)); diff != "" {
				t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBFDProfiles(t *testing.T) {
	tests := []struct {
		name    string
		spec    v1beta1.BFDProfileSpec
		want    *BFDProfile
		wantErr []string
	}{
		{
			name: "defaults",
			want: &BFDProfile{Name: "bfd", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254},
		},
		{
			name: "everything set",
			spec: v1beta1.BFDProfileSpec{
				ReceiveInterval: ptr[uint32](10), TransmitInterval: ptr[uint32](60000), DetectMultiplier: ptr[uint32](255), PassiveMode: true, MinimumTTL: ptr[uint32](1),
			},
			want: &BFDProfile{Name: "bfd", ReceiveInterval: 10 * time.Millisecond, TransmitInterval: time.Minute, DetectMultiplier: 255, PassiveMode: true, MinimumTTL: 1},
		},
		{
			name: "minimum TTL 254, the highest",
			spec: v1beta1.BFDProfileSpec{MinimumTTL: ptr[uint32](254)},
			want: &BFDProfile{Name: "bfd", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254},
		},
		{
			name: "echo mode is refused, not ignored",
			spec: v1beta1.BFDProfileSpec{EchoMode: true},
			wantErr: []string{
				`BFDProfile herald-system/bfd: spec.echoMode "true": the BFD echo function is not supported: Herald runs BFD in asynchronous mode only; remove echoMode (or set it to false)`,
			},
		},
		{
			name: "out of bounds",
			spec: v1beta1.BFDProfileSpec{
				ReceiveInterval: ptr[uint32](9), TransmitInterval: ptr[uint32](60001), DetectMultiplier: ptr[uint32](1), MinimumTTL: ptr[uint32](255),
			},
			wantErr: []string{
				`BFDProfile herald-system/bfd: spec.receiveInterval "9": must be between 10 and 60000 milliseconds (default 300)`,
				`BFDProfile herald-system/bfd: spec.transmitInterval "60001": must be between 10 and 60000 milliseconds (default 300)`,
				`BFDProfile herald-system/bfd: spec.detectMultiplier "1": must be between 2 and 255 (default 3)`,
				`BFDProfile herald-system/bfd: spec.minimumTtl "255": must be between 1 and 254 (default 254)`,
			},
		},
		{
			name: "minimum TTL 0",
			spec: v1beta1.BFDProfileSpec{MinimumTTL: ptr[uint32](0)},
			wantErr: []string{
				`BFDProfile herald-system/bfd: spec.minimumTtl "0": must be between 1 and 254 (default 254)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(Snapshot{BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: objectMeta("bfd"), Spec: tt.spec}}})
			if diff := cmp.Diff(tt.wantErr, errorLines(t, err)); diff != "" {
				t.Fatalf("Parse errors mismatch (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(map[string]*BFDProfile{"bfd": tt.want}, cfg.BFDProfiles); diff != "" {
				t.Errorf("BFDProfiles mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
