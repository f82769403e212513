package config

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

const ns = "herald-system"

func objectMeta(name string, kv ...string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[kv[i]] = kv[i+1]
	}
	return m
}

func ipPool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: objectMeta(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func bgpPeer(name string, myASN, peerASN uint32, addr string) v1beta1.BGPPeer {
	return v1beta1.BGPPeer{ObjectMeta: objectMeta(name), Spec: v1beta1.BGPPeerSpec{MyASN: myASN, PeerASN: peerASN, PeerAddress: addr}}
}

func ptr[T any](v T) *T { return &v }

// created gives an object a creationTimestamp of minute m of a fixed day.
func created[T any, PT interface {
	*T
	SetCreationTimestamp(metav1.Time)
}](o T, m int) T {
	PT(&o).SetCreationTimestamp(metav1.NewTime(time.Date(2026, 1, 1, 0, m, 0, 0, time.UTC)))
	return o
}

func selector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatalf("labels.Parse(%q): %v", s, err)
	}
	return sel
}

// errorLines returns the messages of the errors Parse returned, checking that they are Errors
// matching ErrInvalid.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Parse error %v is not config.Errors matching ErrInvalid", err)
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return lines
}

// lines returns the messages of es (nil when empty).
func lines(es Errors) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// mustParse parses s and fails the test on error.
func mustParse(t *testing.T, s Snapshot) *Config {
	t.Helper()
	cfg, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse: unexpected errors:\n%v", err)
	}
	return cfg
}

func TestParseEmptySnapshot(t *testing.T) {
	want := &Config{Pools: map[string]*Pool{}, Peers: map[string]*Peer{}, BFDProfiles: map[string]*BFDProfile{}}
	if diff := cmp.Diff(want, mustParse(t, Snapshot{}), cmpOpts()); diff != "" {
		t.Errorf("Parse(empty) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseCollectsAllErrors(t *testing.T) {
	s := Snapshot{
		Pools: []v1beta1.IPAddressPool{ipPool("b", "192.0.2.300/24", "2001:db8::1/64"), ipPool("a")},
		Peers: []v1beta1.BGPPeer{bgpPeer("p", 0, 64512, "198.51.100.1")},
	}
	cfg, err := Parse(s)
	if cfg != nil {
		t.Errorf("Parse returned a Config with errors: %+v", cfg)
	}
	want := []string{
		`IPAddressPool herald-system/a: spec.addresses: the pool has no addresses; add a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		`IPAddressPool herald-system/b: spec.addresses[0] "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		`IPAddressPool herald-system/b: spec.addresses[1] "2001:db8::1/64": 2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?`,
		`BGPPeer herald-system/p: spec.myASN "0": an AS number must be between 1 and 4294967295, such as 64512`,
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *FieldError) = false", err)
	}
	wantFirst := &FieldError{Kind: KindIPAddressPool, Namespace: ns, Name: "a", Field: "spec.addresses",
		Reason: "the pool has no addresses; add a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20"}
	if diff := cmp.Diff(wantFirst, fe); diff != "" {
		t.Errorf("first FieldError mismatch (-want +got):\n%s", diff)
	}
}

func TestParseDuplicateNames(t *testing.T) {
	other := ipPool("a", "198.51.100.0/24")
	other.Namespace = "other"
	s := Snapshot{Pools: []v1beta1.IPAddressPool{ipPool("a", "192.0.2.0/24"), other}}
	_, err := Parse(s)
	want := []string{
		`IPAddressPool other/a: metadata.name "a": IPAddressPool herald-system/a has the same name; Herald configuration names must be unique, rename one of them`,
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
	}
}

// fullSnapshot has one of everything, with a few errors when broken is true.
func fullSnapshot(broken bool) Snapshot {
	s := Snapshot{
		Pools: []v1beta1.IPAddressPool{
			ipPool("pool-a", "192.0.2.0/28", "2001:db8::/120"),
			ipPool("pool-b", "198.51.100.10-198.51.100.20"),
			ipPool("pool-c", "203.0.113.0/24"),
		},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: objectMeta("l2-b"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"pool-b"}}},
			{ObjectMeta: objectMeta("l2-a")},
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{
			{ObjectMeta: objectMeta("bgp-b"), Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"65000:1", "blackhole"}}},
			{ObjectMeta: objectMeta("bgp-a"), Spec: v1beta1.BGPAdvertisementSpec{Peers: []string{"peer-b"}, LocalPref: ptr[uint32](100)}},
		},
		Peers: []v1beta1.BGPPeer{
			bgpPeer("peer-b", 64512, 64513, "198.51.100.2"),
			bgpPeer("peer-a", 64512, 64512, "198.51.100.1"),
		},
		BFDProfiles: []v1beta1.BFDProfile{{ObjectMeta: objectMeta("fast")}, {ObjectMeta: objectMeta("slow")}},
		Communities: []v1beta1.Community{
			{ObjectMeta: objectMeta("c2"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "blackhole", Value: "65535:666"}}}},
			{ObjectMeta: objectMeta("c1"), Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "big", Value: "large:1:2:3"}}}},
		},
		Secrets: []corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pw"}, Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	s.Peers[0].Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: "pw"}
	s.Peers[0].Spec.BFDProfile = "fast"
	if broken {
		s.Pools = append(s.Pools, ipPool("pool-d", "192.0.2.8/29"), ipPool("pool-e", "192.0.2.1/24"))
		s.BGPAdvertisements = append(s.BGPAdvertisements, v1beta1.BGPAdvertisement{
			ObjectMeta: objectMeta("bgp-c"), Spec: v1beta1.BGPAdvertisementSpec{LocalPref: ptr[uint32](200), Communities: []string{"nope", "1:99999"}},
		})
		s.Peers = append(s.Peers, bgpPeer("peer-c", 64512, 64512, "198.51.100.1"))
	}
	return s
}

// shuffled returns a copy of s with every slice in a random order.
func shuffled(s Snapshot, r *rand.Rand) Snapshot {
	shuffle := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	out := s
	out.Pools = append([]v1beta1.IPAddressPool(nil), s.Pools...)
	shuffle(len(out.Pools), func(i, j int) { out.Pools[i], out.Pools[j] = out.Pools[j], out.Pools[i] })
	out.L2Advertisements = append([]v1beta1.L2Advertisement(nil), s.L2Advertisements...)
	shuffle(len(out.L2Advertisements), func(i, j int) {
		out.L2Advertisements[i], out.L2Advertisements[j] = out.L2Advertisements[j], out.L2Advertisements[i]
	})
	out.BGPAdvertisements = append([]v1beta1.BGPAdvertisement(nil), s.BGPAdvertisements...)
	shuffle(len(out.BGPAdvertisements), func(i, j int) {
		out.BGPAdvertisements[i], out.BGPAdvertisements[j] = out.BGPAdvertisements[j], out.BGPAdvertisements[i]
	})
	out.Peers = append([]v1beta1.BGPPeer(nil), s.Peers...)
	shuffle(len(out.Peers), func(i, j int) { out.Peers[i], out.Peers[j] = out.Peers[j], out.Peers[i] })
	out.BFDProfiles = append([]v1beta1.BFDProfile(nil), s.BFDProfiles...)
	shuffle(len(out.BFDProfiles), func(i, j int) { out.BFDProfiles[i], out.BFDProfiles[j] = out.BFDProfiles[j], out.BFDProfiles[i] })
	out.Communities = append([]v1beta1.Community(nil), s.Communities...)
	shuffle(len(out.Communities), func(i, j int) { out.Communities[i], out.Communities[j] = out.Communities[j], out.Communities[i] })
	return out
}

func TestParseIsDeterministic(t *testing.T) {
	tests := []struct {
		name   string
		broken bool
	}{
		{name: "valid"},
		{name: "with errors", broken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fullSnapshot(tt.broken)
			wantCfg, wantErr := Parse(base)
			if (wantErr != nil) != tt.broken {
				t.Fatalf("Parse error = %v, want an error: %v", wantErr, tt.broken)
			}
			r := rand.New(rand.NewPCG(1, 2))
			for i := range 20 {
				gotCfg, gotErr := Parse(shuffled(base, r))
				if diff := cmp.Diff(wantCfg, gotCfg, cmpOpts()); diff != "" {
					t.Fatalf("shuffle %d: Config mismatch (-want +got):\n%s", i, diff)
				}
				if diff := cmp.Diff(errorLines(t, wantErr), errorLines(t, gotErr)); diff != "" {
					t.Fatalf("shuffle %d: errors mismatch (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestParseDoesNotModifySnapshot(t *testing.T) {
	for _, broken := range []bool{false, true} {
		s := fullSnapshot(broken)
		before := fullSnapshot(broken)
		_, _ = Parse(s) // only the snapshot matters here
		if diff := cmp.Diff(before, s); diff != "" {
			t.Errorf("Parse modified the snapshot (broken=%v) (-before +after):\n%s", broken, diff)
		}
	}
}

func TestParseFullSnapshot(t *testing.T) {
	cfg := mustParse(t, fullSnapshot(false))
	fast := &BFDProfile{Name: "fast", ReceiveInterval: DefaultBFDInterval, TransmitInterval: DefaultBFDInterval, DetectMultiplier: 3, MinimumTTL: DefaultBFDMinimumTTL}
	slow := &BFDProfile{Name: "slow", ReceiveInterval: DefaultBFDInterval, TransmitInterval: DefaultBFDInterval, DetectMultiplier: 3, MinimumTTL: DefaultBFDMinimumTTL}
	want := &Config{
		Pools: map[string]*Pool{
			"pool-a": {Name: "pool-a", AutoAssign: true, Ranges: []Range{rng("192.0.2.0", "192.0.2.15"), rng("2001:db8::", "2001:db8::ff")},
				Skip: addrs("192.0.2.0", "192.0.2.15", "2001:db8::")},
			"pool-b": {Name: "pool-b", AutoAssign: true, Ranges: []Range{rng("198.51.100.10", "198.51.100.20")}},
			"pool-c": {Name: "pool-c", AutoAssign: true, Ranges: []Range{rng("203.0.113.0", "203.0.113.255")},
				Skip: addrs("203.0.113.0", "203.0.113.255")},
		},
		L2Advertisements: []*L2Advertisement{
			{Name: "l2-a", Pools: []string{"pool-a", "pool-b", "pool-c"}},
			{Name: "l2-b", Pools: []string{"pool-b"}},
		},
		BGPAdvertisements: []*BGPAdvertisement{
			{Name: "bgp-a", Pools: []string{"pool-a", "pool-b", "pool-c"}, AggregationLength: 32, AggregationLengthV6: 128, LocalPref: ptr[uint32](100), Peers: []string{"peer-b"}},
			{
				Name: "bgp-b", Pools: []string{"pool-a", "pool-b", "pool-c"}, AggregationLength: 32, AggregationLengthV6: 128,
				Communities: []Community{{Value: 65000<<16 | 1}, {Value: 65535<<16 | 666}},
				Peers:       []string{"peer-a", "peer-b"},
			},
		},
		Peers: map[string]*Peer{
			"peer-a": {
				Name: "peer-a", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("198.51.100.1"), Port: 179,
				HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second, MaxPrefixes: 1000,
				GracefulRestart: true, GracefulRestartTime: 120 * time.Second,
			},
			"peer-b": {
				Name: "peer-b", MyASN: 64512, PeerASN: 64513, Address: netip.MustParseAddr("198.51.100.2"), Port: 179,
				HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: 10 * time.Second, MaxPrefixes: 1000,
				GracefulRestart: true, GracefulRestartTime: 120 * time.Second,
				Password: "s3cret", BFDProfile: fast,
			},
		},
		BFDProfiles: map[string]*BFDProfile{"fast": fast, "slow": slow},
	}
	if diff := cmp.Diff(want, cfg, cmpOpts()); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if cfg.Peers["peer-b"].BFDProfile != cfg.BFDProfiles["fast"] {
		t.Error("Peer.BFDProfile does not point at the Config's BFDProfile")
	}
	if diff := cmp.Diff([]string{"pool-a", "pool-b", "pool-c"}, cfg.PoolNames()); diff != "" {
		t.Errorf("PoolNames mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"peer-a", "peer-b"}, cfg.PeerNames()); diff != "" {
		t.Errorf("PeerNames mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFullSnapshotErrors(t *testing.T) {
	cfg, rep := ParseUsable(fullSnapshot(true), nil)
	want := []string{
		`IPAddressPool herald-system/pool-d: spec.addresses[0] "192.0.2.8/29": overlaps IPAddressPool pool-a spec.addresses[0] "192.0.2.0/28" in 192.0.2.8/29; an address may belong to one pool only; remove the common addresses from one of the pools`,
		`IPAddressPool herald-system/pool-e: spec.addresses[0] "192.0.2.1/24": 192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?`,
		`BGPPeer herald-system/peer-c: spec.peerAddress "198.51.100.1": BGPPeer peer-a has the same peer address on the same nodes; a node opens one session per peer address; merge the peers or give them nodeSelectors that select different nodes`,
		`BGPAdvertisement herald-system/bgp-c: spec.communities[0] "nope": no Community object declares this alias (known: big, blackhole); use a standard community a:b with 16-bit parts such as 65000:100, or a large one large:a:b:c with 32-bit parts such as large:65000:1:2, or declare the alias in a Community object`,
		`BGPAdvertisement herald-system/bgp-c: spec.communities[1] "1:99999": not a valid standard community; use a standard community a:b with 16-bit parts such as 65000:100, or a large one large:a:b:c with 32-bit parts such as large:65000:1:2`,
	}
	if diff := cmp.Diff(want, lines(rep.Errors)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	if _, err := Parse(fullSnapshot(true)); !errors.Is(err, ErrInvalid) || len(errorLines(t, err)) != len(want) {
		t.Errorf("Parse error %v, want the %d errors of ParseUsable", err, len(want))
	}
	wantFates := map[ObjectRef]Fate{
		{KindIPAddressPool, ns, "pool-d"}:   FateLeftOut,
		{KindIPAddressPool, ns, "pool-e"}:   FateLeftOut,
		{KindBGPPeer, ns, "peer-c"}:         FateLeftOut,
		{KindBGPAdvertisement, ns, "bgp-c"}: FateLeftOut,
	}
	if diff := cmp.Diff(wantFates, rep.Fates); diff != "" {
		t.Errorf("fates mismatch (-want +got):\n%s", diff)
	}
	// The rest is the valid configuration, untouched.
	if diff := cmp.Diff(mustParse(t, fullSnapshot(false)), cfg, cmpOpts()); diff != "" {
		t.Errorf("usable Config differs from the valid one (-want +got):\n%s", diff)
	}
}
