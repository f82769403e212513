// Package configtest builds config.Snapshots from fuzz input, for the fuzz tests of config.Parse
// and of what consumes a config.Config (the controller's allocator translation, the speaker's
// plan and BGP peers).
//
// RandomSnapshot reads its choices from the bytes it is given, so a fuzzer that mutates the bytes
// explores snapshots of every kind: pools, advertisements, peers, BFD profiles, community aliases
// and Secrets, with values drawn mostly from lists of good and bad examples (so that many
// snapshots are valid and many are wrong in one way) and sometimes from the bytes themselves.
// Names are unique per kind and references mostly hit, as in a real cluster.
package configtest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// Namespace holds every object of a RandomSnapshot.
const Namespace = "herald-system"

// Source hands out choices read from fuzz input; it returns zeros once the input is used up.
type Source struct {
	b []byte
	// Clean makes every choice a good one, so that whole snapshots are valid.
	Clean bool
}

// Bad reports, one time in n, that a bad value is to be chosen; never when Clean.
func (s *Source) Bad(n int) bool { return !s.Clean && s.Intn(n) == 0 }

// NewSource reads choices from b.
func NewSource(b []byte) *Source { return &Source{b: b} }

// Byte returns the next input byte.
func (s *Source) Byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

// Intn returns a number from 0 to n-1 (n from 1 to 256).
func (s *Source) Intn(n int) int { return int(s.Byte()) % n }

// Bool returns true or false.
func (s *Source) Bool() bool { return s.Byte()&1 == 1 }

// Uint32 returns four input bytes as a number.
func (s *Source) Uint32() uint32 {
	return uint32(s.Byte())<<24 | uint32(s.Byte())<<16 | uint32(s.Byte())<<8 | uint32(s.Byte())
}

// String returns up to 16 input bytes as a string.
func (s *Source) String() string {
	n := s.Intn(17)
	out := make([]byte, 0, n)
	for range n {
		out = append(out, s.Byte())
	}
	return string(out)
}

// Pick returns one of options, or (one time in 16) a string from the input.
func (s *Source) Pick(options ...string) string {
	if s.Bad(16) {
		return s.String()
	}
	return options[s.Intn(len(options))]
}

// Choose returns one of good, or one time in 8 one of bad (or a string from the input), so that
// most objects are valid and many snapshots are accepted.
func (s *Source) Choose(good, bad []string) string {
	if s.Bad(8) {
		return s.Pick(bad...)
	}
	return good[s.Intn(len(good))]
}

func (s *Source) list(max int, item func() string) []string {
	var out []string
	for range s.Intn(max + 1) {
		out = append(out, item())
	}
	return out
}

// Duration returns one of good, or one time in 8 a duration from a list of bad examples or from
// the input.
func (s *Source) Duration(good ...time.Duration) *metav1.Duration {
	bad := []time.Duration{0, time.Nanosecond, 500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Second,
		2500 * time.Millisecond, 3000001 * time.Microsecond, 10 * time.Second / 3, 91 * time.Second,
		65536 * time.Second, -time.Second}
	if s.Bad(8) {
		if s.Bool() {
			return &metav1.Duration{Duration: time.Duration(int64(s.Uint32())<<s.Intn(24) - 1<<30)}
		}
		return &metav1.Duration{Duration: bad[s.Intn(len(bad))]}
	}
	return &metav1.Duration{Duration: good[s.Intn(len(good))]}
}

func (s *Source) selectors() []metav1.LabelSelector {
	var out []metav1.LabelSelector
	for range s.Intn(3) {
		sel := metav1.LabelSelector{}
		if s.Bool() {
			sel.MatchLabels = map[string]string{s.Choose([]string{"rack", "zone", "app"}, []string{"bad key!"}): s.Choose([]string{"r1", "r2", "web", ""}, []string{"bad value!"})}
		}
		if s.Bool() {
			req := metav1.LabelSelectorRequirement{
				Key:      s.Choose([]string{"rack", "zone", "app"}, []string{"bad key!"}),
				Operator: metav1.LabelSelectorOperator(s.Choose([]string{"Exists", "DoesNotExist", "In", "NotIn"}, []string{"Gt", ""})),
			}
			if req.Operator == metav1.LabelSelectorOpIn || req.Operator == metav1.LabelSelectorOpNotIn {
				req.Values = []string{s.Pick("r1", "r2", "web")}
			} else if s.Bad(16) {
				req.Values = []string{"r1"}
			}
			sel.MatchExpressions = []metav1.LabelSelectorRequirement{req}
		}
		out = append(out, sel)
	}
	return out
}

func meta(kind string, i int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: Namespace, Name: fmt.Sprintf("%s%d", kind, i),
		Labels: map[string]string{"index": fmt.Sprint(i % 2)}}
}

// ref names one of names, or one time in 16 (or when there are none) an object that does not
// exist.
func (s *Source) ref(names []string) string {
	if len(names) == 0 || s.Bad(16) {
		return s.Pick("", "missing")
	}
	return names[s.Intn(len(names))]
}

// refs names up to two of names, each once.
func (s *Source) refs(names []string) []string {
	if len(names) == 0 && !s.Bad(4) {
		return nil
	}
	var out []string
	for range s.Intn(3) {
		if n := s.ref(names); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// subset returns some of good in order, at least one, and one time in 8 one of bad too.
func (s *Source) subset(good, bad []string) []string {
	var out []string
	for _, g := range good {
		if s.Bool() {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		out = append(out, good[s.Intn(len(good))])
	}
	if s.Bad(8) {
		out = append(out, s.Pick(bad...))
	}
	if s.Bad(32) {
		out = nil
	}
	return out
}

// badPoolAddresses are wrong or overlapping pool entries.
var badPoolAddresses = []string{
	"192.0.2.0/24", "192.0.2.5/24", "192.0.2.300/24", "198.51.100.20-198.51.100.10", "2001:db8::/64",
	"::ffff:192.0.2.1-::ffff:192.0.2.9", "0.0.0.0/0", "pool", "",
}

// poolAddresses are good entries of pool i, which no other pool overlaps.
func poolAddresses(i int) []string {
	return []string{
		fmt.Sprintf("192.0.2.%d/28", 32*i), fmt.Sprintf("192.0.2.%d-192.0.2.%d", 32*i+16, 32*i+20),
		fmt.Sprintf("2001:db8:%x::/120", i+1), fmt.Sprintf("2001:db8:%x::1000-2001:db8:%x::1002", i+1, i+1),
	}
}

// badPeerAddresses are peer, source and router addresses config refuses.
var badPeerAddresses = []string{
	"0.0.0.0", "::", "127.0.0.1", "::1", "224.0.0.5", "ff02::5", "169.254.0.1", "fe80::1", "fe80::1%eth0",
	"255.255.255.255", "0.1.2.3", "240.0.0.1", "::ffff:198.51.100.1", "198.51.100.300", "router", "",
}

// RandomSnapshot builds a snapshot of every kind of Herald object from b. Half of the inputs
// (first byte even) make a clean snapshot, which config.Parse mostly accepts; the others have some
// bad values.
func RandomSnapshot(b []byte) config.Snapshot {
	s := NewSource(b)
	s.Clean = s.Byte()%2 == 0
	var snap config.Snapshot
	var bfds, aliases, secrets, pools, peers []string
	for i := range s.Intn(3) {
		o := v1beta1.BFDProfile{ObjectMeta: meta("bfd", i)}
		u32 := func(good ...uint32) *uint32 {
			if s.Bool() {
				return nil
			}
			v := good[s.Intn(len(good))]
			if s.Bad(16) {
				v = []uint32{0, 1, 9, 255, 60001, s.Uint32()}[s.Intn(6)]
			}
			return &v
		}
		o.Spec = v1beta1.BFDProfileSpec{ReceiveInterval: u32(10, 300, 60000), TransmitInterval: u32(10, 300, 60000),
			DetectMultiplier: u32(2, 3, 255), PassiveMode: s.Bool()}
		// Echo mode is refused (Herald's BFD cannot honour it); a minimum TTL is for multi-hop
		// sessions.
		o.Spec.EchoMode = s.Bad(16)
		o.Spec.MinimumTTL = u32(1, 254)
		snap.BFDProfiles = append(snap.BFDProfiles, o)
		bfds = append(bfds, o.Name)
	}
	for i := range s.Intn(3) {
		o := v1beta1.Community{ObjectMeta: meta("comm", i)}
		for j := range s.Intn(3) {
			a := v1beta1.CommunityAlias{
				Name:  s.Choose([]string{fmt.Sprintf("alias-%d-%d", i, j)}, []string{"alias-0-0", "no-export", ""}),
				Value: s.Choose([]string{fmt.Sprintf("65000:%d", j), "large:1:2:3"}, []string{"65536:1", "1:2:3", ""}),
			}
			o.Spec.Communities = append(o.Spec.Communities, a)
			aliases = append(aliases, a.Name)
		}
		snap.Communities = append(snap.Communities, o)
	}
	for i := range s.Intn(3) {
		sec := corev1.Secret{ObjectMeta: meta("secret", i), Data: map[string][]byte{"password": RandomPassword(s)}}
		if s.Bool() {
			sec.Data["other"] = RandomPassword(s)
		}
		snap.Secrets = append(snap.Secrets, sec)
		secrets = append(secrets, sec.Name)
	}
	for i := range s.Intn(5) {
		o := v1beta1.IPAddressPool{ObjectMeta: meta("pool", i)}
		o.Spec.Addresses = s.subset(poolAddresses(i), badPoolAddresses)
		if s.Bool() {
			v := s.Bool()
			o.Spec.AutoAssign = &v
		}
		o.Spec.AvoidBuggyIPs = s.Bool()
		if s.Intn(4) == 0 {
			o.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{
				Priority:           int32(s.Intn(4)),
				Namespaces:         s.list(2, func() string { return s.Choose([]string{"app", "web"}, []string{"bad ns!"}) }),
				NamespaceSelectors: s.selectors(),
				ServiceSelectors:   s.selectors(),
			}
		}
		snap.Pools = append(snap.Pools, o)
		pools = append(pools, o.Name)
	}
	for i := range s.Intn(4) {
		o := randomPeer(s, i, secrets, bfds)
		snap.Peers = append(snap.Peers, o)
		peers = append(peers, o.Name)
	}
	communities := append([]string{"65000:1", "large:1:2:3"}, aliases...)
	for i := range s.Intn(3) {
		o := v1beta1.L2Advertisement{ObjectMeta: meta("l2adv", i)}
		o.Spec.IPAddressPools = s.refs(pools)
		if s.Intn(4) == 0 {
			o.Spec.IPAddressPoolSelectors = s.selectors()
		}
		o.Spec.NodeSelectors = s.selectors()
		o.Spec.Interfaces = s.list(2, func() string { return s.Choose([]string{"eth0", "eth1", "bond0.100"}, []string{"eth0/1", ""}) })
		o.Spec.ServiceSelectors = s.selectors()
		snap.L2Advertisements = append(snap.L2Advertisements, o)
	}
	for i := range s.Intn(3) {
		o := v1beta1.BGPAdvertisement{ObjectMeta: meta("bgpadv", i)}
		o.Spec.IPAddressPools = s.refs(pools)
		if s.Intn(4) == 0 {
			o.Spec.IPAddressPoolSelectors = s.selectors()
		}
		// Pool entries are ranges of single addresses too: only /32 and /128 always fit.
		if s.Bool() {
			v := int32(32)
			if s.Bad(4) {
				v = int32(s.Intn(40)) - 2
			}
			o.Spec.AggregationLength = &v
		}
		if s.Bool() {
			v := int32(128)
			if s.Bad(4) {
				v = int32(s.Intn(140)) - 2
			}
			o.Spec.AggregationLengthV6 = &v
		}
		if s.Bool() {
			v := s.Uint32()
			o.Spec.LocalPref = &v
		}
		o.Spec.Communities = s.list(2, func() string { return s.Choose(communities, []string{"65536:1", "unknown-alias"}) })
		o.Spec.NodeSelectors = s.selectors()
		o.Spec.Peers = s.refs(peers)
		o.Spec.ServiceSelectors = s.selectors()
		snap.BGPAdvertisements = append(snap.BGPAdvertisements, o)
	}
	return snap
}

// RandomPassword is a TCP MD5 password of 1 to 80 bytes, or one time in 8 of 0 or 81 to 100
// bytes, which config refuses.
func RandomPassword(s *Source) []byte {
	n := []int{1, 8, 79, 80}[s.Intn(4)]
	if s.Bad(8) {
		n = []int{0, 81, 81 + s.Intn(20)}[s.Intn(3)]
	}
	pw := make([]byte, n)
	for i := range pw {
		pw[i] = 'a' + byte(i%26)
	}
	return pw
}

func randomPeer(s *Source, i int, secrets, bfds []string) v1beta1.BGPPeer {
	o := v1beta1.BGPPeer{ObjectMeta: meta("peer", i)}
	asn := func() uint32 {
		if s.Bad(8) {
			return []uint32{0, s.Uint32()}[s.Intn(2)]
		}
		return []uint32{1, 64512, 64513, 65535, 65536, 4294967295}[s.Intn(6)]
	}
	good := []string{fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("2001:db8::%x", i+1), fmt.Sprintf("fd00::%x", i+1)}
	o.Spec = v1beta1.BGPPeerSpec{MyASN: asn(), PeerASN: asn(), PeerAddress: s.Choose(good, badPeerAddresses),
		EnableGracefulRestart: []*bool{nil, new(true), new(false)}[s.Intn(3)]}
	if s.Bool() {
		o.Spec.PeerASN = o.Spec.MyASN // iBGP
	}
	if s.Intn(4) == 0 { // the router's AS not pinned
		o.Spec.DynamicASN = v1beta1.DynamicASN(s.Choose([]string{"internal", "external"}, []string{"any", ""}))
		if !s.Bad(8) {
			o.Spec.PeerASN = 0
		}
	}
	o.Spec.EBGPMultiHop = o.Spec.MyASN != o.Spec.PeerASN && o.Spec.DynamicASN != v1beta1.DynamicASNInternal && s.Bool() || s.Bad(16)
	if s.Intn(4) == 0 {
		o.Spec.VRF = s.Choose([]string{"red", "vrf-blue.10"}, []string{"-x", "a/b", "sixteen-chars-xx", ".."})
	}
	if s.Bool() {
		o.Spec.PeerPort = uint16(s.Uint32())
	}
	if s.Intn(4) == 0 {
		src := "198.51.100.200"
		if strings.Contains(o.Spec.PeerAddress, ":") {
			src = "2001:db8::200"
		}
		o.Spec.SourceAddress = s.Choose([]string{src}, append([]string{"198.51.100.200", "2001:db8::200"}, badPeerAddresses...))
	}
	if s.Intn(4) == 0 {
		o.Spec.RouterID = s.Choose([]string{"198.51.100.10", "1.2.3.4", "223.255.255.255"}, append([]string{"224.0.0.1", "2001:db8::1"}, badPeerAddresses...))
	}
	if s.Intn(6) == 0 { // BGP unnumbered
		o.Spec.Interface = s.Choose([]string{"eth1", "enp1s0f1.100"}, []string{"eth 1", "sixteen-chars-xx", "-x"})
		if !s.Bad(8) {
			o.Spec.PeerAddress = ""
		}
	}
	if s.Bool() {
		o.Spec.HoldTime = s.Duration(3*time.Second, 9*time.Second, 10*time.Second, 90*time.Second, 65535*time.Second)
	}
	if s.Bool() {
		o.Spec.KeepaliveTime = s.Duration(time.Second, 3*time.Second)
	}
	if s.Bool() {
		o.Spec.ConnectTime = s.Duration(time.Second, 10*time.Second, 65535*time.Second)
	}
	if s.Intn(4) == 0 {
		v := []uint32{1, 1000, s.Uint32() | 1}[s.Intn(3)]
		if s.Bad(8) {
			v = 0
		}
		o.Spec.MaxPrefixes = &v
	}
	o.Spec.NodeSelectors = s.selectors()
	if s.Intn(3) == 0 {
		o.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: s.ref(secrets), Key: s.Choose([]string{"", "password"}, []string{"other"})}
	}
	if s.Intn(4) == 0 {
		o.Spec.BFDProfile = s.ref(bfds)
	}
	return o
}
