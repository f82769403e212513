package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
)

func (p *parser) parseL2Advertisement(o *v1beta1.L2Advertisement) *L2Advertisement {
	r := p.reporter(KindL2Advertisement, o)
	s := &o.Spec
	adv := &L2Advertisement{
		Name:          o.Name,
		Pools:         p.selectPools(r, s.IPAddressPools, s.IPAddressPoolSelectors),
		NodeSelectors: r.selectors("spec.nodeSelectors", s.NodeSelectors),
	}
	for i, ifi := range s.Interfaces {
		if !isInterfaceName(ifi) {
			r.errorf(fmt.Sprintf("spec.interfaces[%d]", i), ifi, "not a valid interface name; use 1 to 15 characters without spaces, '/' or ':', such as eth0")
			continue
		}
		adv.Interfaces = append(adv.Interfaces, ifi)
	}
	slices.Sort(adv.Interfaces)
	adv.Interfaces = slices.Compact(adv.Interfaces)
	adv.ServiceSelectors = r.selectors("spec.serviceSelectors", s.ServiceSelectors)
	return adv
}

// isInterfaceName reports whether s matches ^[^\s/:]{1,15}$, as the L2Advertisement CRD requires.
func isInterfaceName(s string) bool {
	return len(s) >= 1 && len(s) <= 15 && !strings.ContainsAny(s, " \t\n\v\f\r/:")
}

// selectPools resolves the pools an advertisement covers: those it names, those its selectors
// match, and every pool when it has neither. The result is sorted.
func (p *parser) selectPools(r reporter, names []string, sels []metav1.LabelSelector) []string {
	if len(names) == 0 && len(sels) == 0 {
		return slices.Clone(p.poolNames)
	}
	var out []string
	for i, n := range names {
		if _, ok := p.poolLabels[n]; !ok {
			r.errorf(fmt.Sprintf("spec.ipAddressPools[%d]", i), n, "no IPAddressPool with this name (%s); name an existing pool or create it", knownNames("IPAddressPool", p.poolNames))
			continue
		}
		out = append(out, n)
	}
	for _, sel := range r.selectors("spec.ipAddressPoolSelectors", sels) {
		for _, n := range p.poolNames {
			if sel.Matches(p.poolLabels[n]) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (p *parser) parseBGPAdvertisement(o *v1beta1.BGPAdvertisement) *BGPAdvertisement {
	r := p.reporter(KindBGPAdvertisement, o)
	s := &o.Spec
	adv := &BGPAdvertisement{
		Name:                o.Name,
		Pools:               p.selectPools(r, s.IPAddressPools, s.IPAddressPoolSelectors),
		AggregationLength:   DefaultAggregationLength,
		AggregationLengthV6: DefaultAggregationLengthV6,
		NodeSelectors:       r.selectors("spec.nodeSelectors", s.NodeSelectors),
		ServiceSelectors:    r.selectors("spec.serviceSelectors", s.ServiceSelectors),
	}
	if s.LocalPref != nil {
		v := *s.LocalPref
		adv.LocalPref = &v
	}
	if s.AggregationLength != nil {
		adv.AggregationLength = int(*s.AggregationLength)
	}
	if s.AggregationLengthV6 != nil {
		adv.AggregationLengthV6 = int(*s.AggregationLengthV6)
	}
	p.checkAggregation(r, "spec.aggregationLength", adv.AggregationLength, 32, adv.Pools)
	p.checkAggregation(r, "spec.aggregationLengthV6", adv.AggregationLengthV6, 128, adv.Pools)

	seen := map[Community]bool{}
	for i, text := range s.Communities {
		c, why, ok := p.resolveCommunity(text)
		if !ok {
			r.errorf(fmt.Sprintf("spec.communities[%d]", i), text, "%s", why)
			continue
		}
		if !seen[c] {
			seen[c] = true
			adv.Communities = append(adv.Communities, c)
		}
	}

	if len(s.Peers) == 0 {
		adv.Peers = slices.Clone(p.peerNames)
	}
	for i, name := range s.Peers {
		if _, ok := slices.BinarySearch(p.peerNames, name); !ok {
			r.errorf(fmt.Sprintf("spec.peers[%d]", i), name, "no BGPPeer with this name (%s); name an existing peer, or leave peers empty to advertise to every peer", knownNames("BGPPeer", p.peerNames))
			continue
		}
		adv.Peers = append(adv.Peers, name)
	}
	slices.Sort(adv.Peers)
	adv.Peers = slices.Compact(adv.Peers)
	return adv
}

// checkAggregation checks that an aggregation length is within 0..bits and, for every pool
// with addresses of that family, not shorter than any CIDR of the pool (a range counts as the
// smallest set of CIDRs that is exactly its addresses): a shorter aggregate would announce
// addresses outside the pool.
func (p *parser) checkAggregation(r reporter, field string, length, bits int, pools []string) {
	if length < 0 || length > bits {
		r.errorf(field, strconv.Itoa(length), "must be between 0 and %d (default %d)", bits, bits)
		return
	}
	for _, name := range pools {
		pool := p.cfg.Pools[name]
		if pool == nil {
			continue
		}
		var most netip.Prefix
		for _, rg := range pool.Ranges {
			if rg.First.BitLen() != bits {
				continue
			}
			for _, pf := range rg.Prefixes() {
				if !most.IsValid() || pf.Bits() > most.Bits() {
					most = pf
				}
			}
		}
		if most.IsValid() && length < most.Bits() {
			r.errorf(field, strconv.Itoa(length), "is shorter than %s of IPAddressPool %s, so the aggregate would cover addresses outside the pool; use %d or more",
				most, name, most.Bits())
		}
	}
}

// checkLocalPrefs reports two advertisements that would send the same prefix to the same peer
// from the same node with different localPref: same pool and aggregation length, a common
// peer, and node and Service selectors that may overlap. It reports on both advertisements.
func (p *parser) checkLocalPrefs(objs []*v1beta1.BGPAdvertisement) {
	advs := p.cfg.BGPAdvertisements
	for i, a := range advs {
		for j := i + 1; j < len(advs); j++ {
			b := advs[j]
			if a.LocalPref == nil || b.LocalPref == nil || *a.LocalPref == *b.LocalPref {
				continue
			}
			peers := intersect(a.Peers, b.Peers)
			if len(peers) == 0 || !selectorsMayOverlap(a.NodeSelectors, b.NodeSelectors) ||
				!selectorsMayOverlap(a.ServiceSelectors, b.ServiceSelectors) {
				continue
			}
			var pools []string
			for _, name := range intersect(a.Pools, b.Pools) {
				pool := p.cfg.Pools[name]
				if pool == nil {
					continue
				}
				if pool.HasIPv4() && a.AggregationLength == b.AggregationLength ||
					pool.HasIPv6() && a.AggregationLengthV6 == b.AggregationLengthV6 {
					pools = append(pools, name)
				}
			}
			if len(pools) == 0 {
				continue
			}
			const why = "routes of the same prefix to the same peer from the same node need one localPref; use the same value, or separate the peers, nodes or services"
			shared := fmt.Sprintf("the same pools (%s) to the same peers (%s)", strings.Join(pools, ", "), strings.Join(peers, ", "))
			p.reporter(KindBGPAdvertisement, objs[j]).errorf("spec.localPref", strconv.FormatUint(uint64(*b.LocalPref), 10),
				"disagrees with localPref %d of BGPAdvertisement %s, which advertises %s; %s", *a.LocalPref, a.Name, shared, why)
			p.reporter(KindBGPAdvertisement, objs[i]).errorf("spec.localPref", strconv.FormatUint(uint64(*a.LocalPref), 10),
				"disagrees with localPref %d of BGPAdvertisement %s, which advertises %s; %s", *b.LocalPref, b.Name, shared, why)
		}
	}
}
