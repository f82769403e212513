package config

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

// byteSource hands out small choices from fuzz input; it returns 0 once the input is used up.
type byteSource struct {
	b []byte
}

func (s *byteSource) pick(n int) int {
	if len(s.b) == 0 || n <= 0 {
		return 0
	}
	v := int(s.b[0]) % n
	s.b = s.b[1:]
	return v
}

func (s *byteSource) from(options ...string) string { return options[s.pick(len(options))] }

func (s *byteSource) some(options ...string) []string {
	var out []string
	for range s.pick(3) {
		out = append(out, s.from(options...))
	}
	return out
}

// genSnapshot builds a snapshot from fuzz input, with few names and values so that objects
// often conflict and reference each other. Names are unique per kind (a namespace cannot hold
// two objects of a kind with one name). minute offsets the creation times.
func genSnapshot(src *byteSource, minute int) Snapshot {
	names := func() []string {
		var out []string
		for _, n := range []string{"a", "b", "c", "d"} {
			if src.pick(2) == 1 {
				out = append(out, n)
			}
		}
		return out
	}
	meta := func(name string) metav1.ObjectMeta {
		m := objectMeta(name)
		if src.pick(3) == 0 {
			m.Labels = map[string]string{"tier": src.from("gold", "silver")}
		}
		m.CreationTimestamp = created(v1beta1.BFDProfile{}, minute+src.pick(4)).CreationTimestamp
		return m
	}
	var s Snapshot
	for _, n := range names() {
		s.Pools = append(s.Pools, v1beta1.IPAddressPool{ObjectMeta: meta(n), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: src.some("192.0.2.0/28", "192.0.2.8/29", "192.0.2.0/24", "192.0.2.16-192.0.2.20", "2001:db8::/120", "198.51.100.0/28", "bad", "192.0.2.1/24"),
		}})
	}
	for _, n := range names() {
		p := v1beta1.BGPPeer{ObjectMeta: meta(n), Spec: v1beta1.BGPPeerSpec{
			MyASN: uint32(src.pick(2)) * 64512, PeerASN: 64500, PeerAddress: src.from("203.0.113.1", "203.0.113.2", "2001:db8:1::1", "bad"),
			BFDProfile: src.from("", "", "fast", "slow"),
		}}
		if src.pick(2) == 1 {
			p.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: src.from("pw-a", "pw-b"), Key: src.from("", "other")}
		}
		if src.pick(3) == 0 {
			p.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": src.from("r1", "r2")}}}
		}
		s.Peers = append(s.Peers, p)
	}
	for _, n := range []string{"pw-a", "pw-b"} {
		if src.pick(2) == 1 {
			s.Secrets = append(s.Secrets, secret(n, src.from("password", "other"), src.from("one", "two")))
		}
	}
	for _, n := range []string{"fast", "slow"} {
		if src.pick(2) == 1 {
			s.BFDProfiles = append(s.BFDProfiles, v1beta1.BFDProfile{ObjectMeta: meta(n),
				Spec: v1beta1.BFDProfileSpec{TransmitInterval: ptr([]uint32{100, 300, 1}[src.pick(3)])}})
		}
	}
	for _, n := range names() {
		c := v1beta1.Community{ObjectMeta: meta(n)}
		for range src.pick(3) {
			c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: src.from("edge", "core", "Bad"), Value: src.from("65000:1", "65000:2", "bad")})
		}
		s.Communities = append(s.Communities, c)
	}
	selectors := func() []metav1.LabelSelector {
		var out []metav1.LabelSelector
		for range src.pick(2) {
			out = append(out, metav1.LabelSelector{MatchLabels: map[string]string{"tier": src.from("gold", "silver", "-")}})
		}
		return out
	}
	for _, n := range names() {
		s.L2Advertisements = append(s.L2Advertisements, v1beta1.L2Advertisement{ObjectMeta: meta(n), Spec: v1beta1.L2AdvertisementSpec{
			IPAddressPools: src.some("a", "b", "c", "zzz"), IPAddressPoolSelectors: selectors(), Interfaces: src.some("eth0", "bad/x"),
		}})
	}
	for _, n := range names() {
		a := v1beta1.BGPAdvertisement{ObjectMeta: meta(n), Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: src.some("a", "b", "c", "zzz"), IPAddressPoolSelectors: selectors(),
			Peers: src.some("a", "b", "zzz"), Communities: src.some("edge", "core", "65000:5", "nope"),
			NodeSelectors: selectors(),
		}}
		switch src.pick(3) {
		case 1:
			a.Spec.LocalPref = ptr[uint32](100)
		case 2:
			a.Spec.LocalPref = ptr[uint32](200)
		}
		switch src.pick(4) {
		case 1:
			a.Spec.AggregationLength = ptr[int32](24)
		case 2:
			a.Spec.AggregationLength = ptr[int32](99)
		}
		s.BGPAdvertisements = append(s.BGPAdvertisements, a)
	}
	return s
}

// checkConsistent fails t when cfg breaks a rule every Config must keep.
func checkConsistent(t *testing.T, cfg *Config, rep Report) {
	t.Helper()
	if cfg == nil {
		t.Fatal("nil Config")
	}
	var ranges []Range
	for _, p := range cfg.Pools {
		ranges = append(ranges, p.Ranges...)
	}
	for i, a := range ranges {
		for _, b := range ranges[i+1:] {
			if a.Overlaps(b) {
				t.Fatalf("pools in force overlap: %v and %v", a, b)
			}
		}
	}
	peers := slices.Collect(func(yield func(*Peer) bool) {
		for _, n := range cfg.PeerNames() {
			if !yield(cfg.Peers[n]) {
				return
			}
		}
	})
	for i, a := range peers {
		if c := peerConflicts(a, peers[i+1:]); len(c) > 0 {
			t.Fatalf("peers in force conflict: %s: %v", a.Name, c)
		}
		// A peer kept at its last version keeps the BFD profile it had, even a deleted one.
		atLast := rep.Fates[ObjectRef{KindBGPPeer, ns, a.Name}] == FateLastGood
		if a.BFDProfile != nil && cfg.BFDProfiles[a.BFDProfile.Name] == nil && !atLast {
			t.Errorf("peer %s uses BFD profile %s, which is not in force", a.Name, a.BFDProfile.Name)
		}
	}
	for _, a := range cfg.L2Advertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Errorf("L2Advertisement %s covers pool %s, which is not in force", a.Name, p)
			}
		}
	}
	for _, a := range cfg.BGPAdvertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Errorf("BGPAdvertisement %s covers pool %s, which is not in force", a.Name, p)
			}
		}
		for _, p := range a.Peers {
			if cfg.Peers[p] == nil {
				t.Errorf("BGPAdvertisement %s names peer %s, which is not in force", a.Name, p)
			}
		}
		for _, v := range []int{a.AggregationLength, a.AggregationLengthV6} {
			if v < 0 || v > 128 {
				t.Errorf("BGPAdvertisement %s has aggregation length %d", a.Name, v)
			}
		}
		for _, p := range a.Pools {
			if aggregationTooShort(a.AggregationLength, 32, cfg.Pools[p]).IsValid() || aggregationTooShort(a.AggregationLengthV6, 128, cfg.Pools[p]).IsValid() {
				t.Errorf("BGPAdvertisement %s aggregates pool %s beyond its addresses", a.Name, p)
			}
		}
	}
}

// inForce returns the names in force of each kind.
func inForce(cfg *Config) map[string][]string {
	out := map[string][]string{
		KindIPAddressPool: cfg.PoolNames(), KindBGPPeer: cfg.PeerNames(), KindBFDProfile: sortedKeys(cfg.BFDProfiles),
	}
	for _, a := range cfg.L2Advertisements {
		out[KindL2Advertisement] = append(out[KindL2Advertisement], a.Name)
	}
	for _, a := range cfg.BGPAdvertisements {
		out[KindBGPAdvertisement] = append(out[KindBGPAdvertisement], a.Name)
	}
	return out
}

// present returns the names of each kind in the snapshot.
func present(s Snapshot) map[string][]string {
	out := map[string][]string{}
	for _, o := range s.Pools {
		out[KindIPAddressPool] = append(out[KindIPAddressPool], o.Name)
	}
	for _, o := range s.Peers {
		out[KindBGPPeer] = append(out[KindBGPPeer], o.Name)
	}
	for _, o := range s.BFDProfiles {
		out[KindBFDProfile] = append(out[KindBFDProfile], o.Name)
	}
	for _, o := range s.L2Advertisements {
		out[KindL2Advertisement] = append(out[KindL2Advertisement], o.Name)
	}
	for _, o := range s.BGPAdvertisements {
		out[KindBGPAdvertisement] = append(out[KindBGPAdvertisement], o.Name)
	}
	return out
}

// olderPart returns the objects of s created before minute, and every Secret.
func olderPart(s Snapshot, minute int) Snapshot {
	cut := created(v1beta1.BFDProfile{}, minute).CreationTimestamp.Time
	keep := func(m metav1.ObjectMeta) bool { return m.CreationTimestamp.Time.Before(cut) }
	var out Snapshot
	for _, o := range s.Pools {
		if keep(o.ObjectMeta) {
			out.Pools = append(out.Pools, o)
		}
	}
	for _, o := range s.Peers {
		if keep(o.ObjectMeta) {
			out.Peers = append(out.Peers, o)
		}
	}
	for _, o := range s.BFDProfiles {
		if keep(o.ObjectMeta) {
			out.BFDProfiles = append(out.BFDProfiles, o)
		}
	}
	for _, o := range s.Communities {
		if keep(o.ObjectMeta) {
			out.Communities = append(out.Communities, o)
		}
	}
	for _, o := range s.L2Advertisements {
		if keep(o.ObjectMeta) {
			out.L2Advertisements = append(out.L2Advertisements, o)
		}
	}
	for _, o := range s.BGPAdvertisements {
		if keep(o.ObjectMeta) {
			out.BGPAdvertisements = append(out.BGPAdvertisements, o)
		}
	}
	out.Secrets = s.Secrets
	return out
}

// FuzzParseUsable checks that ParseUsable never panics and always returns a consistent Config;
// that it is deterministic (the order of the snapshot's slices does not matter); that it agrees
// with Parse; that objects Parse accepts together keep working whatever newer objects the
// snapshot also holds (start-up: the older wins); and that at run time no object in force is
// lost because of another object (it is in force in the next Config while it exists).
func FuzzParseUsable(f *testing.F) {
	f.Add([]byte{}, []byte{}, uint8(2))
	f.Add([]byte("\x01\x01\x00\x01\x02\x03\x01\x01\x00\x02\x01\x01\x01\x00\x03"), []byte("\x01\x00\x01\x02\x01\x03\x00\x01"), uint8(1))
	f.Add([]byte("\xff\xfe\x07\x13\x01\x44\x91\x02\x03\x05\x08\x0d\x15\x22\x37\x59\x90\xe9"), []byte("\x10\x20\x30\x40\x50\x60\x70"), uint8(3))
	f.Fuzz(checkParseUsable)
}

func checkParseUsable(t *testing.T, first, second []byte, cut uint8) {
	{
		src := &byteSource{b: first}
		s := genSnapshot(src, 0)
		cfg, rep := ParseUsable(s, nil)
		checkConsistent(t, cfg, rep)

		// Strict form.
		if _, err := Parse(s); (err != nil) != (len(rep.Errors) > 0) {
			t.Fatalf("Parse error %v but ParseUsable has %d errors", err, len(rep.Errors))
		}
		for ref := range rep.Fates {
			if !slices.ContainsFunc(rep.Errors, func(e *FieldError) bool { return e.Kind == ref.Kind && e.Name == ref.Name }) {
				t.Errorf("fate for %v, which has no error", ref)
			}
		}

		// Deterministic, whatever the order of the slices.
		again, repAgain := ParseUsable(shuffled(s, rand.New(rand.NewPCG(uint64(len(first)), 7))), nil)
		if diff := cmp.Diff(cfg, again, cmpOpts()); diff != "" {
			t.Fatalf("Config depends on the order of the snapshot (-first +shuffled):\n%s", diff)
		}
		if diff := cmp.Diff(rep, repAgain); diff != "" {
			t.Fatalf("Report depends on the order of the snapshot (-first +shuffled):\n%s", diff)
		}

		// What the older objects make, Parse accepting it, is kept whatever newer ones exist.
		older := olderPart(s, int(cut%5))
		if g, err := Parse(older); err == nil {
			for name, p := range g.Pools {
				if !reflect.DeepEqual(p, cfg.Pools[name]) {
					t.Errorf("pool %s of the older objects is %+v with newer ones, want %+v", name, cfg.Pools[name], p)
				}
			}
			for name, p := range g.Peers {
				if !reflect.DeepEqual(p, cfg.Peers[name]) {
					t.Errorf("peer %s of the older objects is %+v with newer ones, want %+v", name, cfg.Peers[name], p)
				}
			}
			for name, p := range g.BFDProfiles {
				if !reflect.DeepEqual(p, cfg.BFDProfiles[name]) {
					t.Errorf("BFD profile %s of the older objects is %+v with newer ones, want %+v", name, cfg.BFDProfiles[name], p)
				}
			}
			kept := inForce(cfg)
			for kind, names := range inForce(g) {
				for _, n := range names {
					if !slices.Contains(kept[kind], n) {
						t.Errorf("%s %s of the older objects is not in force with newer ones", kind, n)
					}
				}
			}
		}

		// Run time: nothing in force is lost while it exists.
		s2 := genSnapshot(&byteSource{b: second}, 0)
		cfg2, rep2 := ParseUsable(s2, cfg)
		checkConsistent(t, cfg2, rep2)
		was, now, exists := inForce(cfg), inForce(cfg2), present(s2)
		for kind, names := range was {
			for _, n := range names {
				if slices.Contains(exists[kind], n) && !slices.Contains(now[kind], n) {
					t.Errorf("%s %s was in force, still exists, and is lost", kind, n)
				}
			}
		}
		// And deterministic with a last good configuration too.
		cfg3, _ := ParseUsable(shuffled(s2, rand.New(rand.NewPCG(3, uint64(len(second))))), cfg)
		if diff := cmp.Diff(cfg2, cfg3, cmpOpts()); diff != "" {
			t.Fatalf("Config with lastGood depends on the order of the snapshot:\n%s", diff)
		}
	}
}
