package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestAPIServerAloneWithoutWebhook records, with no webhook installed, which malformed objects
// the API server refuses on its own (OpenAPI schema and CEL rules of the CRDs) and which it
// accepts, so that only the webhook (config.Parse) can refuse them. Every case is also checked
// against config.Parse, which refuses all of them but one rule that only the CRD states (an
// empty serviceAllocation) and references to pools or peers that do not exist, which are
// warnings (the webhook allows them with an admission warning, so that a configuration can be
// created and deleted in any order): the webhook closes every gap the API server leaves.
func TestAPIServerAloneWithoutWebhook(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	ensureNamespace(t, heraldNS)
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: webhookName}, &vwc); !apierrors.IsNotFound(err) {
		t.Fatalf("webhook configuration present (err %v); this test needs the webhook off", err)
	}
	// Context objects, really created (the dry-run cases are checked against them).
	existing := newPool("existing", "198.51.100.0/28")
	create(t, existing)
	existingPeer := newPeer("existing", "198.51.100.1", nil)
	create(t, existingPeer)
	existingComm := &v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "existing"},
		Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "dc-east", Value: "65000:1"}}}}
	create(t, existingComm)

	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: heraldNS, Name: name} }
	dur := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	cases := []struct {
		name    string
		obj     client.Object
		celCaps bool // the API server alone refuses it
		// cfgOK: config.Parse accepts it (a rule only the CRD has, which the API server enforces
		// with or without the webhook; or a dangling reference, a warning).
		cfgOK bool
	}{
		{"pool: not a CIDR (192.0.2.300/24)", newPool("p1", "192.0.2.300/24"), true, false},
		{"pool: no addresses", newPool("p2"), true, false},
		{"pool: range first after last", newPool("p3", "192.0.2.20-192.0.2.10"), false, false},
		{"pool: CIDR with host bits (192.0.2.1/24)", newPool("p4", "192.0.2.1/24"), true, false},
		{"pool: overlaps another pool", newPool("p5", "198.51.100.8-198.51.100.20"), false, false},
		{"pool: IPv4-mapped IPv6 range", newPool("p6", "::ffff:192.0.2.1-::ffff:192.0.2.9"), true, false},
		{"pool: empty serviceAllocation", &v1beta1.IPAddressPool{ObjectMeta: meta("p7"), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: []string{"203.0.113.0/28"}, ServiceAllocation: &v1beta1.ServiceAllocation{}}}, true, true},
		{"peer: myASN 0", newPeer("b1", "198.51.100.11", func(s *v1beta1.BGPPeerSpec) { s.MyASN = 0 }), true, false},
		{"peer: peer address 198.51.100.300", newPeer("b2", "198.51.100.300", nil), true, false},
		{"peer: holdTime 1s", newPeer("b3", "198.51.100.13", func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(time.Second) }), true, false},
		{"peer: holdTime 3.5s (not whole seconds)", newPeer("b4", "198.51.100.14", func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(3500 * time.Millisecond) }), true, false},
		{"peer: keepalive longer than hold", newPeer("b5", "198.51.100.15", func(s *v1beta1.BGPPeerSpec) {
			s.HoldTime, s.KeepaliveTime = dur(9*time.Second), dur(30*time.Second)
		}), true, false},
		{"peer: IPv6 routerID", newPeer("b6", "198.51.100.16", func(s *v1beta1.BGPPeerSpec) { s.RouterID = "2001:db8::1" }), true, false},
		{"peer: ebgpMultiHop on iBGP", newPeer("b7", "198.51.100.17", func(s *v1beta1.BGPPeerSpec) { s.PeerASN, s.EBGPMultiHop = 64512, true }), true, false},
		{"peer: unknown BFD profile", newPeer("b8", "198.51.100.18", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "nope" }), false, false},
		{"peer: missing password Secret", newPeer("b9", "198.51.100.19", func(s *v1beta1.BGPPeerSpec) {
			s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "nope"}
		}), false, false},
		{"peer: same address as another peer", newPeer("b10", "198.51.100.1", nil), false, false},
		{"peer: holdTime 0s", newPeer("b11", "198.51.100.21", func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(0) }), true, false},
		// CEL sees whole milliseconds only; config.Parse refuses the rest.
		{"peer: holdTime 3000001us (not whole seconds, below a millisecond)", newPeer("b12", "198.51.100.22", func(s *v1beta1.BGPPeerSpec) { s.HoldTime = dur(3000001 * time.Microsecond) }), false, false},
		{"peer: keepaliveTime 2.5s", newPeer("b13", "198.51.100.23", func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(2500 * time.Millisecond) }), true, false},
		{"peer: keepaliveTime 91s above the default holdTime", newPeer("b14", "198.51.100.24", func(s *v1beta1.BGPPeerSpec) { s.KeepaliveTime = dur(91 * time.Second) }), true, false},
		{"peer: connectTime 1500ms", newPeer("b15", "198.51.100.25", func(s *v1beta1.BGPPeerSpec) { s.ConnectTime = dur(1500 * time.Millisecond) }), true, false},
		{"peer: peerAddress 0.0.0.0", newPeer("b16", "0.0.0.0", nil), true, false},
		{"peer: peerAddress 127.0.0.1", newPeer("b17", "127.0.0.1", nil), true, false},
		{"peer: peerAddress fe80::1", newPeer("b18", "fe80::1", nil), true, false},
		{"peer: routerID 0.0.0.0", newPeer("b19", "198.51.100.29", func(s *v1beta1.BGPPeerSpec) { s.RouterID = "0.0.0.0" }), true, false},
		{"peer: maxPrefixes 0", newPeer("b20", "198.51.100.30", func(s *v1beta1.BGPPeerSpec) { s.MaxPrefixes = ptr.To[uint32](0) }), true, false},
		// Secrets have no schema: only config.Parse sees the password.
		{"peer: password of 81 bytes", newPeer("b21", "198.51.100.31", func(s *v1beta1.BGPPeerSpec) {
			s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "long-password"}
		}), false, false},
		{"bfd: receiveInterval 5", &v1beta1.BFDProfile{ObjectMeta: meta("f1"), Spec: v1beta1.BFDProfileSpec{ReceiveInterval: ptr.To[uint32](5)}}, true, false},
		{"community: value 65536:1", &v1beta1.Community{ObjectMeta: meta("c1"), Spec: v1beta1.CommunitySpec{
			Communities: []v1beta1.CommunityAlias{{Name: "x", Value: "65536:1"}}}}, true, false},
		{"community: alias declared twice with other values", &v1beta1.Community{ObjectMeta: meta("c2"), Spec: v1beta1.CommunitySpec{
			Communities: []v1beta1.CommunityAlias{{Name: "dc-east", Value: "65000:2"}}}}, false, false},
		{"bgpadv: aggregationLength 33", &v1beta1.BGPAdvertisement{ObjectMeta: meta("a1"), Spec: v1beta1.BGPAdvertisementSpec{AggregationLength: ptr.To[int32](33)}}, true, false},
		{"bgpadv: community 1:2:3", &v1beta1.BGPAdvertisement{ObjectMeta: meta("a2"), Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"1:2:3"}}}, true, false},
		{"bgpadv: unknown community alias", &v1beta1.BGPAdvertisement{ObjectMeta: meta("a3"), Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"no-such-alias"}}}, false, false},
		{"bgpadv: aggregation shorter than the pool", &v1beta1.BGPAdvertisement{ObjectMeta: meta("a4"), Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"existing"}, AggregationLength: ptr.To[int32](24)}}, false, false},
		{"bgpadv: unknown peer", &v1beta1.BGPAdvertisement{ObjectMeta: meta("a5"), Spec: v1beta1.BGPAdvertisementSpec{Peers: []string{"nope"}}}, false, true},
		{"l2adv: interface eth0/1", &v1beta1.L2Advertisement{ObjectMeta: meta("l1"), Spec: v1beta1.L2AdvertisementSpec{Interfaces: []string{"eth0/1"}}}, true, false},
		{"l2adv: unknown pool", &v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"nope"}}}, false, true},
	}
	longPassword := corev1.Secret{ObjectMeta: meta("long-password"), Data: map[string][]byte{"password": []byte(strings.Repeat("x", 81))}}
	base := config.Snapshot{Pools: []v1beta1.IPAddressPool{*existing}, Peers: []v1beta1.BGPPeer{*existingPeer}, Communities: []v1beta1.Community{*existingComm},
		Secrets: []corev1.Secret{longPassword}}
	var refusedByAPI, acceptedByAPI []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := env.Client.Create(context.Background(), tc.obj.DeepCopyObject().(client.Object), client.DryRunAll)
			refusedHere := err != nil
			if refusedHere && !apierrors.IsInvalid(err) {
				t.Fatalf("unexpected error: %v", err)
			}
			if refusedHere {
				refusedByAPI = append(refusedByAPI, tc.name)
				t.Logf("API server refuses: %v", err)
			} else {
				acceptedByAPI = append(acceptedByAPI, tc.name)
			}
			if refusedHere != tc.celCaps {
				t.Errorf("API server alone refuses = %v, want %v (did the CRD validation change? update this table and the report)", refusedHere, tc.celCaps)
			}
			s := snapshotWith(t, base, tc.obj)
			if _, err := config.Parse(s); (err == nil) != tc.cfgOK {
				t.Errorf("config.Parse error = %v, want accepted=%v", err, tc.cfgOK)
			}
		})
	}
	t.Logf("with the webhook off, the API server alone REFUSES (%d):\n  %s", len(refusedByAPI), strings.Join(refusedByAPI, "\n  "))
	t.Logf("with the webhook off, the API server ACCEPTS (%d), only config/the webhook catch these:\n  %s", len(acceptedByAPI), strings.Join(acceptedByAPI, "\n  "))
}

func snapshotWith(t *testing.T, s config.Snapshot, obj client.Object) config.Snapshot {
	t.Helper()
	s.Pools = append([]v1beta1.IPAddressPool(nil), s.Pools...)
	s.Peers = append([]v1beta1.BGPPeer(nil), s.Peers...)
	s.Communities = append([]v1beta1.Community(nil), s.Communities...)
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		s.Pools = append(s.Pools, *o)
	case *v1beta1.BGPPeer:
		s.Peers = append(s.Peers, *o)
	case *v1beta1.BFDProfile:
		s.BFDProfiles = append(s.BFDProfiles, *o)
	case *v1beta1.Community:
		s.Communities = append(s.Communities, *o)
	case *v1beta1.BGPAdvertisement:
		s.BGPAdvertisements = append(s.BGPAdvertisements, *o)
	case *v1beta1.L2Advertisement:
		s.L2Advertisements = append(s.L2Advertisements, *o)
	default:
		t.Fatalf("no snapshot field for %T", obj)
	}
	return s
}
