package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

// summary is what a test needs to see of a Config: every object in force, in a few words.
type summary struct {
	Pools map[string]string   // ranges
	Peers map[string]string   // address, password, BFD profile
	BFD   map[string]string   // transmit interval
	L2    map[string][]string // pools
	BGP   map[string]string   // pools | peers | communities
}

func summarize(c *Config) summary {
	s := summary{Pools: map[string]string{}, Peers: map[string]string{}, BFD: map[string]string{}, L2: map[string][]string{}, BGP: map[string]string{}}
	for n, p := range c.Pools {
		var rs []string
		for _, r := range p.Ranges {
			rs = append(rs, r.String())
		}
		s.Pools[n] = strings.Join(rs, ",")
	}
	for n, p := range c.Peers {
		bfd := ""
		if p.BFDProfile != nil {
			bfd = p.BFDProfile.Name + "@" + p.BFDProfile.TransmitInterval.String()
		}
		s.Peers[n] = fmt.Sprintf("%s pw=%q bfd=%s", p.Address, p.Password, bfd)
	}
	for n, b := range c.BFDProfiles {
		s.BFD[n] = b.TransmitInterval.String()
	}
	for _, a := range c.L2Advertisements {
		s.L2[a.Name] = append([]string{}, a.Pools...)
	}
	for _, a := range c.BGPAdvertisements {
		var cs []string
		for _, c := range a.Communities {
			cs = append(cs, c.String())
		}
		s.BGP[a.Name] = strings.Join(a.Pools, ",") + " | " + strings.Join(a.Peers, ",") + " | " + strings.Join(cs, ",")
	}
	return s
}

// problems lists errors as "Kind/name field".
func problems(es Errors) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind+"/"+e.Name+" "+e.Field)
	}
	return out
}

func secret(name, key, value string) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{key: []byte(value)}}
}

func withPassword(p v1beta1.BGPPeer, secret, key string) v1beta1.BGPPeer {
	p.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: secret, Key: key}
	return p
}

func withBFD(p v1beta1.BGPPeer, profile string) v1beta1.BGPPeer {
	p.Spec.BFDProfile = profile
	return p
}

func bfdProfile(name string, txMillis uint32) v1beta1.BFDProfile {
	return v1beta1.BFDProfile{ObjectMeta: objectMeta(name), Spec: v1beta1.BFDProfileSpec{TransmitInterval: &txMillis}}
}

func l2Adv(name string, pools ...string) v1beta1.L2Advertisement {
	return v1beta1.L2Advertisement{ObjectMeta: objectMeta(name), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func bgpAdv(name string, f func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: objectMeta(name)}
	if f != nil {
		f(&a.Spec)
	}
	return a
}

func community(name string, kv ...string) v1beta1.Community {
	c := v1beta1.Community{ObjectMeta: objectMeta(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

// labSnapshot is a small working configuration: a layer-2 pool and advertisement, a BGP pool and
// advertisement, two peers (one with a password and a BFD profile).
func labSnapshot() Snapshot {
	return Snapshot{
		Pools: []v1beta1.IPAddressPool{
			created(ipPool("l2", "192.0.2.0/28"), 1),
			created(ipPool("bgp", "198.51.100.0/28"), 1),
		},
		L2Advertisements:  []v1beta1.L2Advertisement{created(l2Adv("l2", "l2"), 2)},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{created(bgpAdv("bgp", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"bgp"} }), 2)},
		Peers: []v1beta1.BGPPeer{
			created(bgpPeer("tor-a", 64512, 64500, "203.0.113.1"), 3),
			created(withBFD(withPassword(bgpPeer("tor-b", 64512, 64500, "203.0.113.2"), "tor-b-pw", ""), "fast"), 3),
		},
		BFDProfiles: []v1beta1.BFDProfile{created(bfdProfile("fast", 100), 1)},
		Secrets:     []corev1.Secret{secret("tor-b-pw", "password", "old-secret")},
	}
}

// labSummary is the summary of labSnapshot's Config.
func labSummary() summary {
	return summary{
		Pools: map[string]string{"l2": "192.0.2.0/28", "bgp": "198.51.100.0/28"},
		Peers: map[string]string{
			"tor-a": `203.0.113.1 pw="" bfd=`,
			"tor-b": `203.0.113.2 pw="old-secret" bfd=fast@100ms`,
		},
		BFD: map[string]string{"fast": "100ms"},
		L2:  map[string][]string{"l2": {"l2"}},
		BGP: map[string]string{"bgp": "bgp | tor-a,tor-b | "},
	}
}

func TestParseUsable(t *testing.T) {
	tests := []struct {
		name string
		// last is the snapshot whose usable Config is lastGood (none at start-up).
		last   *Snapshot
		snap   func(s *Snapshot)
		want   func(s *summary)
		errors []string
		warns  []string
		fates  map[ObjectRef]Fate
	}{
		{
			name: "valid: everything in force",
		},
		{
			name: "start-up, peer's Secret missing: only that peer is out",
			snap: func(s *Snapshot) { s.Secrets = nil },
			want: func(s *summary) {
				delete(s.Peers, "tor-b")
				s.BGP["bgp"] = "bgp | tor-a | "
			},
			errors: []string{"BGPPeer/tor-b spec.passwordSecret.name"},
			fates:  map[ObjectRef]Fate{{KindBGPPeer, ns, "tor-b"}: FateLeftOut},
		},
		{
			name: "start-up, Secret key missing: only that peer is out",
			snap: func(s *Snapshot) { s.Secrets = []corev1.Secret{secret("tor-b-pw", "other", "x")} },
			want: func(s *summary) {
				delete(s.Peers, "tor-b")
				s.BGP["bgp"] = "bgp | tor-a | "
			},
			errors: []string{"BGPPeer/tor-b spec.passwordSecret.key"},
			fates:  map[ObjectRef]Fate{{KindBGPPeer, ns, "tor-b"}: FateLeftOut},
		},
		{
			name: "start-up, BFD profile missing: only that peer is out",
			snap: func(s *Snapshot) { s.BFDProfiles = nil },
			want: func(s *summary) {
				delete(s.Peers, "tor-b")
				s.BFD = map[string]string{}
				s.BGP["bgp"] = "bgp | tor-a | "
			},
			errors: []string{"BGPPeer/tor-b spec.bfdProfile"},
			fates:  map[ObjectRef]Fate{{KindBGPPeer, ns, "tor-b"}: FateLeftOut},
		},
		{
			name: "start-up, BFD profile invalid: the profile and its peer are out",
			snap: func(s *Snapshot) { s.BFDProfiles = []v1beta1.BFDProfile{bfdProfile("fast", 1)} },
			want: func(s *summary) {
				delete(s.Peers, "tor-b")
				s.BFD = map[string]string{}
				s.BGP["bgp"] = "bgp | tor-a | "
			},
			errors: []string{"BFDProfile/fast spec.transmitInterval", "BGPPeer/tor-b spec.bfdProfile"},
			fates:  map[ObjectRef]Fate{{KindBFDProfile, ns, "fast"}: FateLeftOut, {KindBGPPeer, ns, "tor-b"}: FateLeftOut},
		},
		{
			name: "start-up, invalid pool: out, with the advertisement's cover of it; the rest works",
			snap: func(s *Snapshot) {
				s.Pools[1] = created(ipPool("bgp", "198.51.100.1/28"), 1)
				s.L2Advertisements[0].Spec.IPAddressPools = []string{"l2", "bgp"}
			},
			want: func(s *summary) {
				delete(s.Pools, "bgp")
				s.BGP["bgp"] = " | tor-a,tor-b | "
			},
			errors: []string{"IPAddressPool/bgp spec.addresses[0]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "bgp"}: FateLeftOut},
		},
		{
			name: "start-up, overlapping pools: the older keeps working whatever its name",
			snap: func(s *Snapshot) {
				s.Pools = append(s.Pools, created(ipPool("a-new", "192.0.2.8/29"), 5))
			},
			errors: []string{"IPAddressPool/a-new spec.addresses[0]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "a-new"}: FateLeftOut},
		},
		{
			name: "start-up, same peer address: the older keeps its session",
			snap: func(s *Snapshot) {
				s.Peers = append(s.Peers, created(bgpPeer("a-new", 64512, 64501, "203.0.113.1"), 5))
			},
			errors: []string{"BGPPeer/a-new spec.peerAddress"},
			fates:  map[ObjectRef]Fate{{KindBGPPeer, ns, "a-new"}: FateLeftOut},
		},
		{
			name: "start-up, disagreeing localPref: the newer advertisement loses only the common pools",
			snap: func(s *Snapshot) {
				s.BGPAdvertisements[0].Spec.LocalPref = ptr[uint32](100)
				s.BGPAdvertisements = append(s.BGPAdvertisements, created(bgpAdv("a-new", func(s *v1beta1.BGPAdvertisementSpec) {
					s.IPAddressPools = []string{"bgp", "l2"}
					s.LocalPref = ptr[uint32](200)
				}), 5))
			},
			want: func(s *summary) {
				s.BGP["a-new"] = "l2 | tor-a,tor-b | "
			},
			errors: []string{"BGPAdvertisement/a-new spec.localPref"},
			fates:  map[ObjectRef]Fate{{KindBGPAdvertisement, ns, "a-new"}: FateReduced},
		},
		{
			name: "start-up, conflicting community alias: the older declaration is used",
			snap: func(s *Snapshot) {
				s.Communities = []v1beta1.Community{
					created(community("z-old", "edge", "65000:1"), 1),
					created(community("a-new", "edge", "65000:2", "other", "65000:3"), 5),
				}
				s.BGPAdvertisements[0].Spec.Communities = []string{"edge", "other"}
			},
			want: func(s *summary) {
				s.BGP["bgp"] = "bgp | tor-a,tor-b | 65000:1,65000:3"
			},
			errors: []string{"Community/a-new spec.communities[0].name"},
			fates:  map[ObjectRef]Fate{{KindCommunity, ns, "a-new"}: FateReduced},
		},
		{
			name:   "start-up, unknown community alias: the advertisement is out",
			snap:   func(s *Snapshot) { s.BGPAdvertisements[0].Spec.Communities = []string{"nope"} },
			want:   func(s *summary) { delete(s.BGP, "bgp") },
			errors: []string{"BGPAdvertisement/bgp spec.communities[0]"},
			fates:  map[ObjectRef]Fate{{KindBGPAdvertisement, ns, "bgp"}: FateLeftOut},
		},
		{
			name: "dangling references are warnings and change nothing else",
			snap: func(s *Snapshot) {
				s.L2Advertisements[0].Spec.IPAddressPools = []string{"l2", "gone"}
				s.BGPAdvertisements[0].Spec.Peers = []string{"tor-a", "tor-b", "gone"}
				s.BGPAdvertisements[0].Spec.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"x": "y"}}}
			},
			warns: []string{
				"L2Advertisement/l2 spec.ipAddressPools[1]",
				"BGPAdvertisement/bgp spec.ipAddressPoolSelectors[0]",
				"BGPAdvertisement/bgp spec.peers[2]",
			},
		},
		{
			name:   "run time, peer's Secret deleted: the peer keeps the password it had",
			last:   ptr(labSnapshot()),
			snap:   func(s *Snapshot) { s.Secrets = nil },
			errors: []string{"BGPPeer/tor-b spec.passwordSecret.name"},
			fates:  map[ObjectRef]Fate{{KindBGPPeer, ns, "tor-b"}: FateLastGood},
		},
		{
			name: "run time, Secret rotated: the new password is used",
			last: ptr(labSnapshot()),
			snap: func(s *Snapshot) { s.Secrets = []corev1.Secret{secret("tor-b-pw", "password", "new-secret")} },
			want: func(s *summary) { s.Peers["tor-b"] = `203.0.113.2 pw="new-secret" bfd=fast@100ms` },
		},
		{
			name:   "run time, invalid edit of a pool: its last version stays",
			last:   ptr(labSnapshot()),
			snap:   func(s *Snapshot) { s.Pools[0].Spec.Addresses = []string{"192.0.2.0/27", "bad"} },
			errors: []string{"IPAddressPool/l2 spec.addresses[1]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "l2"}: FateLastGood},
		},
		{
			name: "run time, valid edit of a pool: in force",
			last: ptr(labSnapshot()),
			snap: func(s *Snapshot) { s.Pools[0].Spec.Addresses = []string{"192.0.2.0/27"} },
			want: func(s *summary) { s.Pools["l2"] = "192.0.2.0/27" },
		},
		{
			name:   "run time, a new pool overlapping one in force is out even when created earlier",
			last:   ptr(labSnapshot()),
			snap:   func(s *Snapshot) { s.Pools = append(s.Pools, created(ipPool("new", "192.0.2.0/30"), 0)) },
			errors: []string{"IPAddressPool/new spec.addresses[0]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "new"}: FateLeftOut},
		},
		{
			name:   "run time, an edit growing into another pool in force keeps its last version",
			last:   ptr(labSnapshot()),
			snap:   func(s *Snapshot) { s.Pools[1].Spec.Addresses = []string{"192.0.2.0/16"} },
			errors: []string{"IPAddressPool/bgp spec.addresses[0]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "bgp"}: FateLastGood},
		},
		{
			name: "run time, two pools swapping ranges: both keep their last version",
			last: ptr(labSnapshot()),
			snap: func(s *Snapshot) {
				s.Pools[0].Spec.Addresses = []string{"198.51.100.0/28"}
				s.Pools[1].Spec.Addresses = []string{"192.0.2.0/28"}
			},
			errors: []string{"IPAddressPool/bgp spec.addresses[0]", "IPAddressPool/l2 spec.addresses[0]"},
			fates:  map[ObjectRef]Fate{{KindIPAddressPool, ns, "bgp"}: FateLastGood, {KindIPAddressPool, ns, "l2"}: FateLastGood},
		},
		{
			name:   "run time, BFD profile edited invalid: the last version stays, and so does its peer",
			last:   ptr(labSnapshot()),
			snap:   func(s *Snapshot) { s.BFDProfiles = []v1beta1.BFDProfile{created(bfdProfile("fast", 1), 1)} },
			errors: []string{"BFDProfile/fast spec.transmitInterval"},
			fates:  map[ObjectRef]Fate{{KindBFDProfile, ns, "fast"}: FateLastGood},
		},
		{
			name: "run time, invalid edit of an advertisement: the last version, for the pools still in force",
			last: ptr(labSnapshot()),
			snap: func(s *Snapshot) {
				s.Pools = s.Pools[:1] // bgp deleted
				s.BGPAdvertisements[0].Spec.AggregationLength = ptr[int32](99)
				s.L2Advertisements[0].Spec.Interfaces = []string{"bad/name"}
			},
			want: func(s *summary) {
				delete(s.Pools, "bgp")
				s.BGP["bgp"] = " | tor-a,tor-b | "
			},
			errors: []string{"L2Advertisement/l2 spec.interfaces[0]", "BGPAdvertisement/bgp spec.aggregationLength"},
			fates:  map[ObjectRef]Fate{{KindL2Advertisement, ns, "l2"}: FateLastGood, {KindBGPAdvertisement, ns, "bgp"}: FateLastGood},
			warns:  []string{"BGPAdvertisement/bgp spec.ipAddressPools[0]"},
		},
		{
			name: "run time, a deleted object does not come back from the last configuration",
			last: ptr(labSnapshot()),
			snap: func(s *Snapshot) { s.Peers = s.Peers[:1] },
			want: func(s *summary) {
				delete(s.Peers, "tor-b")
				s.BGP["bgp"] = "bgp | tor-a | "
			},
		},
		{
			name: "run time, unknown alias in an edit: the advertisement keeps its last communities",
			last: func() *Snapshot {
				s := labSnapshot()
				s.Communities = []v1beta1.Community{community("c", "edge", "65000:1")}
				s.BGPAdvertisements[0].Spec.Communities = []string{"edge"}
				return &s
			}(),
			snap:   func(s *Snapshot) { s.BGPAdvertisements[0].Spec.Communities = []string{"edge"} }, // Community deleted
			want:   func(s *summary) { s.BGP["bgp"] = "bgp | tor-a,tor-b | 65000:1" },
			errors: []string{"BGPAdvertisement/bgp spec.communities[0]"},
			fates:  map[ObjectRef]Fate{{KindBGPAdvertisement, ns, "bgp"}: FateLastGood},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last *Config
			if tt.last != nil {
				var rep Report
				last, rep = ParseUsable(*tt.last, nil)
				if len(rep.Errors) > 0 {
					t.Fatalf("last snapshot has errors: %v", rep.Errors)
				}
			}
			s := labSnapshot()
			if tt.snap != nil {
				tt.snap(&s)
			}
			want := labSummary()
			if tt.want != nil {
				tt.want(&want)
			}
			cfg, rep := ParseUsable(s, last)
			if diff := cmp.Diff(want, summarize(cfg)); diff != "" {
				t.Errorf("Config mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errors, problems(rep.Errors)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s\n%v", diff, rep.Errors)
			}
			if diff := cmp.Diff(tt.warns, problems(rep.Warnings)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s\n%v", diff, rep.Warnings)
			}
			wantFates := tt.fates
			if wantFates == nil {
				wantFates = map[ObjectRef]Fate{}
			}
			if diff := cmp.Diff(wantFates, rep.Fates); diff != "" {
				t.Errorf("fates mismatch (-want +got):\n%s", diff)
			}
			// Parse is the strict form: it fails exactly when there are errors at start-up.
			if _, err := Parse(s); tt.last == nil && (err != nil) != (len(rep.Errors) > 0) {
				t.Errorf("Parse error %v with %d ParseUsable errors", err, len(rep.Errors))
			}
		})
	}
}

func TestReportInvalidObjects(t *testing.T) {
	s := labSnapshot()
	s.Secrets = nil
	s.Pools = append(s.Pools, ipPool("bad", "x"), ipPool("worse", "y"))
	_, rep := ParseUsable(s, nil)
	want := map[string]int{KindBFDProfile: 0, KindCommunity: 0, KindIPAddressPool: 2, KindBGPPeer: 1, KindL2Advertisement: 0, KindBGPAdvertisement: 0}
	if diff := cmp.Diff(want, rep.InvalidObjects()); diff != "" {
		t.Errorf("InvalidObjects mismatch (-want +got):\n%s", diff)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "BGPPeer herald-system/tor-b") {
		t.Errorf("Err() = %v, want the errors", err)
	}
	if got := rep.Fate(rep.Errors[0]).Consequence(); got != "the object is not used until this is fixed" {
		t.Errorf("Consequence = %q", got)
	}
	if _, clean := ParseUsable(labSnapshot(), nil); clean.Err() != nil {
		t.Errorf("Err() of a valid snapshot = %v", clean.Err())
	}
}

func TestParseUsableDoesNotModifyItsInputs(t *testing.T) {
	s := fullSnapshot(true)
	before := fullSnapshot(true)
	last := mustParse(t, fullSnapshot(false))
	lastBefore := mustParse(t, fullSnapshot(false))
	_, _ = ParseUsable(s, last)
	if diff := cmp.Diff(before, s); diff != "" {
		t.Errorf("ParseUsable modified the snapshot (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(lastBefore, last, cmpOpts()); diff != "" {
		t.Errorf("ParseUsable modified lastGood (-before +after):\n%s", diff)
	}
}
