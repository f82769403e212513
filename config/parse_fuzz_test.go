package config_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/config/configtest"
)

// parseCmp compares Configs: addresses by value, selectors by their text.
var parseCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b labels.Selector) bool { return a.String() == b.String() }),
}

// fuzzSeeds are inputs that make RandomSnapshot build valid and invalid snapshots of every kind.
func fuzzSeeds() [][]byte {
	seeds := [][]byte{nil, {0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for i := range 16 {
		b := make([]byte, 200)
		for j := range b {
			b[j] = byte(i*37 + j*11)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzParse parses random snapshots of every kind. Parse must not panic, must be deterministic and
// independent of the order of the snapshot's slices, every error must name kind, object, field
// and reason, and a Config it accepts must hold what its consumers rely on.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap := configtest.RandomSnapshot(data)
		cfg, err := config.Parse(snap)

		// Deterministic, and independent of the order of the objects.
		rev := reversed(snap)
		cfg2, err2 := config.Parse(rev)
		if errText(err) != errText(err2) {
			t.Fatalf("Parse depends on the order of the objects:\n%v\nreversed:\n%v", err, err2)
		}
		if diff := cmp.Diff(cfg, cfg2, parseCmp); diff != "" {
			t.Fatalf("Parse depends on the order of the objects (-given +reversed):\n%s", diff)
		}

		if err != nil {
			if cfg != nil || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse = %v, %v: want a nil Config and ErrInvalid", cfg, err)
			}
			var es config.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Parse error %T %v is not a non-empty config.Errors", err, err)
			}
			for _, e := range es {
				if e.Kind == "" || e.Field == "" || e.Reason == "" {
					t.Fatalf("error without kind, field or reason: %#v", e)
				}
			}
			return
		}
		checkConfig(t, cfg)
	})
}

// checkConfig checks what the controller and the speakers rely on in an accepted Config.
func checkConfig(t *testing.T, cfg *config.Config) {
	t.Helper()
	var all []config.Range
	for name, p := range cfg.Pools {
		if p.Name != name || len(p.Ranges) == 0 {
			t.Fatalf("pool %q: name %q, %d ranges", name, p.Name, len(p.Ranges))
		}
		for _, r := range p.Ranges {
			if !r.First.IsValid() || r.First.Is4() != r.Last.Is4() || r.Last.Less(r.First) || r.First.Is4In6() || r.First.Zone() != "" {
				t.Fatalf("pool %s: bad range %v-%v", name, r.First, r.Last)
			}
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(a, b config.Range) int { return a.First.Compare(b.First) })
	for i := 1; i < len(all); i++ {
		if all[i].First.Is4() == all[i-1].Last.Is4() && !all[i-1].Last.Less(all[i].First) {
			t.Fatalf("pools overlap: %v-%v and %v-%v", all[i-1].First, all[i-1].Last, all[i].First, all[i].Last)
		}
	}
	for _, a := range cfg.L2Advertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Fatalf("L2Advertisement %s covers unknown pool %q", a.Name, p)
			}
		}
	}
	for _, a := range cfg.BGPAdvertisements {
		for _, p := range a.Pools {
			if cfg.Pools[p] == nil {
				t.Fatalf("BGPAdvertisement %s covers unknown pool %q", a.Name, p)
			}
		}
		for _, p := range a.Peers {
			if cfg.Peers[p] == nil {
				t.Fatalf("BGPAdvertisement %s names unknown peer %q", a.Name, p)
			}
		}
		if a.AggregationLength < 0 || a.AggregationLength > 32 || a.AggregationLengthV6 < 0 || a.AggregationLengthV6 > 128 {
			t.Fatalf("BGPAdvertisement %s: aggregation lengths %d, %d", a.Name, a.AggregationLength, a.AggregationLengthV6)
		}
	}
	for name, p := range cfg.Peers {
		checkPeer(t, name, p)
	}
}

// checkPeer checks the rules of a peer in an accepted Config.
func checkPeer(t *testing.T, name string, p *config.Peer) {
	t.Helper()
	whole := func(d time.Duration) bool { return d%time.Second == 0 }
	switch {
	case p.Name != name || name == "":
		t.Fatalf("peer %q named %q", name, p.Name)
	case p.MyASN == 0 || (p.PeerASN == 0) != (p.DynamicASN == v1beta1.DynamicASNExternal) ||
		p.DynamicASN == v1beta1.DynamicASNInternal && p.PeerASN != p.MyASN:
		t.Fatalf("peer %s: ASNs %d, %d, dynamic %q", name, p.MyASN, p.PeerASN, p.DynamicASN)
	case p.BFDProfile != nil && (p.BFDProfile.MinimumTTL < 1 || p.BFDProfile.MinimumTTL > 254):
		t.Fatalf("peer %s: BFD minimum TTL %d", name, p.BFDProfile.MinimumTTL)
	case p.VRF != "" && (len(p.VRF) > 15 || strings.ContainsAny(p.VRF, "/: \t") || p.VRF[0] == '.' || p.VRF[0] == '-' || p.BFDProfile != nil):
		t.Fatalf("peer %s: VRF %q, BFD %v", name, p.VRF, p.BFDProfile)
	case !p.Address.IsValid() || !p.Address.IsGlobalUnicast() || p.Address.Is4In6() || p.Address.Zone() != "":
		t.Fatalf("peer %s: address %v", name, p.Address)
	case p.SourceAddress.IsValid() && (!p.SourceAddress.IsGlobalUnicast() || p.SourceAddress.Is4() != p.Address.Is4()):
		t.Fatalf("peer %s: source address %v for %v", name, p.SourceAddress, p.Address)
	case p.RouterID.IsValid() && (!p.RouterID.Is4() || p.RouterID.IsUnspecified() || p.RouterID.As4()[0] >= 224):
		t.Fatalf("peer %s: router ID %v", name, p.RouterID)
	case p.HoldTime < 3*time.Second || p.HoldTime > config.MaxTimer || !whole(p.HoldTime):
		t.Fatalf("peer %s: hold time %v", name, p.HoldTime)
	case p.KeepaliveTime < time.Second || p.KeepaliveTime > p.HoldTime || !whole(p.KeepaliveTime):
		t.Fatalf("peer %s: keepalive %v with hold time %v", name, p.KeepaliveTime, p.HoldTime)
	case p.ConnectTime < time.Second || p.ConnectTime > config.MaxTimer || !whole(p.ConnectTime):
		t.Fatalf("peer %s: connect time %v", name, p.ConnectTime)
	case p.Port == 0 || p.MaxPrefixes == 0 || len(p.Password) > config.MaxPasswordLength:
		t.Fatalf("peer %s: port %d, max prefixes %d, password of %d bytes", name, p.Port, p.MaxPrefixes, len(p.Password))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reversed returns s with every slice in reverse order.
func reversed(s config.Snapshot) config.Snapshot {
	s.Pools = slices.Clone(s.Pools)
	slices.Reverse(s.Pools)
	s.L2Advertisements = slices.Clone(s.L2Advertisements)
	slices.Reverse(s.L2Advertisements)
	s.BGPAdvertisements = slices.Clone(s.BGPAdvertisements)
	slices.Reverse(s.BGPAdvertisements)
	s.Peers = slices.Clone(s.Peers)
	slices.Reverse(s.Peers)
	s.BFDProfiles = slices.Clone(s.BFDProfiles)
	slices.Reverse(s.BFDProfiles)
	s.Communities = slices.Clone(s.Communities)
	slices.Reverse(s.Communities)
	s.Secrets = slices.Clone(s.Secrets)
	slices.Reverse(s.Secrets)
	return s
}
