package config

import (
	"net/netip"
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
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bgp"}, Data: map[string][]byte{"password": []byte("pw1"), "other": []byte("pw2")}},
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
		p.Port, p.HoldTime, p.KeepaliveTime, p.ConnectTime = 179, 90*time.Second, 30*time.Second, 10*time.Second
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
				s.EBGPMultiHop = true
				s.EnableGracefulRestart = true
				s.BFDProfile = "fast"
			}),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("2001:db8::1"), Port: 1179,
				SourceAddress: netip.MustParseAddr("2001:db8::10"),
				HoldTime:      30 * time.Second, KeepaliveTime: 5 * time.Second, ConnectTime: 2 * time.Second,
				RouterID:      netip.MustParseAddr("198.51.100.10"),
				NodeSelectors: []labels.Selector{selector(t, "rack=r1")},
				Password:      "pw2", EBGPMultiHop: true, GracefulRestart: true, BFDProfile: fast,
			},
		},
		{
			name: "password under the default key",
			peer: withSpec(bgpPeer("p", 64512, 64512, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "bgp"}
			}),
			want: defaults(&Peer{Name: "p", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.1"), Password: "pw1"}),
		},
		{
			name: "keepalive derived from hold time",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(9 * time.Second) }),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 10 * time.Second,
			},
		},
		{
			name: "hold time 0 means no keepalives",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(0) }),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				ConnectTime: 10 * time.Second,
			},
		},
		{
			name: "keepalive equal to hold time",
			peer: withSpec(bgpPeer("p", 64512, 64513, "198.51.100.1"), func(s *v1beta1.BGPPeerSpec) {
				s.HoldTime = duration(3 * time.Second)
				s.KeepaliveTime = duration(3 * time.Second)
			}),
			want: &Peer{
				Name: "p", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 3 * time.Second, KeepaliveTime: 3 * time.Second, ConnectTime: 10 * time.Second,
			},
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
				`BGPPeer herald-system/p: spec.peerASN "0": an AS number must be between 1 and 4294967295, such as 64512`,
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
				`BGPPeer herald-system/b: spec.peerAddress: is required; use an IPv4 or IPv6 address such as 198.51.100.1 or 2001:db8::1`,
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
				`BGPPeer herald-system/p: spec.holdTime "2s": must be 0s (no keepalives) or between 3s and 65535s (default 90s)`,
				`BGPPeer herald-system/p: spec.keepaliveTime "3s": must not be longer than holdTime 2s; use at most 2s (one third of holdTime is usual)`,
				`BGPPeer herald-system/p: spec.connectTime "500ms": must be between 1s and 65535s (default 10s)`,
			},
		},
		{
			name:  "hold time too long",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(65536 * time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "18h12m16s": must be 0s (no keepalives) or between 3s and 65535s (default 90s)`,
			},
		},
		{
			name:  "hold time not whole seconds",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(4500 * time.Millisecond) }),
			want: []string{
				`BGPPeer herald-system/p: spec.holdTime "4.5s": must be a whole number of seconds (BGP carries it in seconds), such as 90s`,
			},
		},
		{
			name:  "keepalive with hold time 0",
			peers: peer(func(s *v1beta1.BGPPeerSpec) { s.HoldTime = duration(0); s.KeepaliveTime = duration(time.Second) }),
			want: []string{
				`BGPPeer herald-system/p: spec.keepaliveTime "1s": must not be longer than holdTime 0s; use at most 0s (one third of holdTime is usual)`,
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
				`BGPPeer herald-system/a: spec.passwordSecret.name "missing": no Secret with this name in namespace "herald-system"; create it with the password under key "password", or remove passwordSecret`,
				`BGPPeer herald-system/b: spec.passwordSecret.name "far": no Secret with this name in namespace "herald-system"; create it with the password under key "password", or remove passwordSecret`,
				`BGPPeer herald-system/c: spec.passwordSecret.key "pass": Secret herald-system/bgp has no such key (known: other, password); put the password under this key or name the right one`,
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
			name: "two sessions to one address from the same nodes: the later peer is reported",
			peers: []v1beta1.BGPPeer{
				bgpPeer("b", 64512, 64513, "198.51.100.1"),
				bgpPeer("a", 64512, 64514, "198.51.100.1"),
				// Different node selectors: allowed.
				{ObjectMeta: objectMeta("c"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.2",
					NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}}},
				{ObjectMeta: objectMeta("d"), Spec: v1beta1.BGPPeerSpec{MyASN: 1, PeerASN: 2, PeerAddress: "198.51.100.2",
					NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r2"}}}}},
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
				ReceiveInterval: ptr[uint32](10), TransmitInterval: ptr[uint32](60000), DetectMultiplier: ptr[uint32](255),
				EchoMode: true, PassiveMode: true, MinimumTTL: ptr[uint32](1),
			},
			want: &BFDProfile{Name: "bfd", ReceiveInterval: 10 * time.Millisecond, TransmitInterval: time.Minute, DetectMultiplier: 255,
				EchoMode: true, PassiveMode: true, MinimumTTL: 1},
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
