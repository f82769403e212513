package agent

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/config/configtest"
	"github.com/herald-lb/herald/speaker/bgp"
)

// FuzzConfiguredPeersAreUsable is the differential test between the configuration and the BGP
// adapter: every peer of a snapshot that config.Parse accepts, translated as the agent does
// (bgpPeers), is a peer the BGP speaker accepts (bgp.ValidatePeer) with the router ID a node
// derives from its addresses (bgp.RouterID), whatever the node's addresses. The BGPPeer's fields
// come straight from the fuzzer, so that every timer, address and length is tried, not only the
// examples of configtest.
func FuzzConfiguredPeersAreUsable(f *testing.F) {
	type seed struct {
		myASN, peerASN       uint32
		addr, src, routerID  string
		iface                string
		port                 uint16
		hold, keep, connect  int64
		set                  uint8 // bits: hold, keepalive, connect, maxPrefixes, password, multihop, graceful restart
		password             []byte
		maxPrefixes          uint32
		nodeV4, nodeV6, more []byte
	}
	v6 := netip.MustParseAddr("2001:db8::11").AsSlice()
	v4 := []byte{198, 51, 100, 11}
	ms := int64(time.Millisecond)
	s := int64(time.Second)
	for _, sd := range []seed{
		// The four peers of issue 10 that config accepted and the speaker refused.
		{myASN: 64512, peerASN: 64500, addr: "198.51.100.1", hold: 10 * s, set: 1, nodeV4: v4},
		{myASN: 64512, peerASN: 64500, addr: "198.51.100.1", connect: 1500 * ms, set: 4, nodeV4: v4},
		{myASN: 64512, peerASN: 64500, addr: "198.51.100.1", keep: 2500 * ms, set: 2, nodeV4: v4},
		{myASN: 64512, peerASN: 64500, addr: "0.0.0.0", nodeV4: v4},
		// An IPv6-only node, hold time 0, a long password, everything set.
		{myASN: 64512, peerASN: 64500, addr: "2001:db8::1", nodeV6: v6},
		{myASN: 64512, peerASN: 64500, addr: "2001:db8::1", hold: 0, set: 1, nodeV6: v6},
		{myASN: 64512, peerASN: 64500, addr: "198.51.100.1", set: 16, password: make([]byte, 81), nodeV4: v4},
		{myASN: 64512, peerASN: 64500, addr: "198.51.100.1", src: "198.51.100.11", routerID: "198.51.100.11", port: 1179,
			hold: 9 * s, keep: 3 * s, connect: 2 * s, set: 255, password: []byte("pw"), maxPrefixes: 10, nodeV4: v4, nodeV6: v6},
		// BGP unnumbered, alone and with what does not go with it.
		{myASN: 64512, peerASN: 64500, iface: "eth1", nodeV4: v4},
		{myASN: 64512, peerASN: 64500, iface: "eth1", addr: "fe80::1", src: "2001:db8::11", set: 32, nodeV6: v6},
	} {
		f.Add(sd.myASN, sd.peerASN, sd.addr, sd.src, sd.routerID, sd.iface, sd.port, sd.hold, sd.keep, sd.connect, sd.set,
			sd.password, sd.maxPrefixes, sd.nodeV4, sd.nodeV6, sd.more)
	}
	f.Fuzz(func(t *testing.T, myASN, peerASN uint32, addr, src, routerID, iface string, port uint16, hold, keep, connect int64,
		set uint8, password []byte, maxPrefixes uint32, nodeV4, nodeV6, more []byte) {
		peer := v1beta1.BGPPeer{
			ObjectMeta: metav1.ObjectMeta{Namespace: configtest.Namespace, Name: "fuzzed"},
			Spec: v1beta1.BGPPeerSpec{MyASN: myASN, PeerASN: peerASN, PeerAddress: addr, SourceAddress: src,
				RouterID: routerID, Interface: iface, PeerPort: port, EBGPMultiHop: set&32 != 0, EnableGracefulRestart: new(set&64 != 0)},
		}
		if set&1 != 0 {
			peer.Spec.HoldTime = &metav1.Duration{Duration: time.Duration(hold)}
		}
		if set&2 != 0 {
			peer.Spec.KeepaliveTime = &metav1.Duration{Duration: time.Duration(keep)}
		}
		if set&4 != 0 {
			peer.Spec.ConnectTime = &metav1.Duration{Duration: time.Duration(connect)}
		}
		if set&8 != 0 {
			peer.Spec.MaxPrefixes = &maxPrefixes
		}
		if set&128 != 0 {
			peer.Spec.GracefulShutdown = true
			peer.Spec.GracefulShutdownTime = &metav1.Duration{Duration: time.Duration(keep)}
		}
		snap := config.Snapshot{Peers: []v1beta1.BGPPeer{peer}}
		if set&16 != 0 {
			peer.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: "pw"}
			snap.Peers[0] = peer
			snap.Secrets = []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: configtest.Namespace, Name: "pw"},
				Data: map[string][]byte{"password": password}}}
		}
		// The peers of a whole random snapshot as well.
		rnd := configtest.RandomSnapshot(more)
		a4, _ := netip.AddrFromSlice(nodeV4)
		a6, _ := netip.AddrFromSlice(nodeV6)
		id := bgp.RouterID(a4, a6, "node")
		for _, sn := range []config.Snapshot{snap, rnd} {
			cfg, err := config.Parse(sn)
			if err != nil {
				continue
			}
			for _, name := range cfg.PeerNames() {
				bp := bgpPeers([]*config.Peer{cfg.Peers[name]})[0]
				if err := bgp.ValidatePeer(bp, id); err != nil {
					t.Fatalf("config.Parse accepted BGPPeer %s (%+v), the BGP speaker refuses it (node %v/%v, router ID %v): %v",
						name, *cfg.Peers[name], a4, a6, id, err)
				}
			}
		}
	})
}
