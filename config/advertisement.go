package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
)

// parseL2Advertisements puts the usable L2Advertisements in the Config, sorted by name: valid
// ones, and the last valid version of invalid ones (covering the pools still in force).
func (p *parser) parseL2Advertisements(objs []*v1beta1.L2Advertisement) {
	es := make([]entrant[*L2Advertisement], 0, len(objs))
	for _, o := range objs {
		e := entrant[*L2Advertisement]{obj: o}
		e.curOK = p.clean(func() { e.cur = p.parseL2Advertisement(o) })
		e.last, e.hasLast = p.lastL2Advertisement(o.Name)
		es = append(es, e)
	}
	equal := func(a, b *L2Advertisement) bool { return reflect.DeepEqual(a, b) }
	placed := place(p, KindL2Advertisement, es, equal, newNoIndex[*L2Advertisement])
	for i := range es { // objs are sorted by name
		if v, ok := placed[i]; ok {
			p.cfg.L2Advertisements = append(p.cfg.L2Advertisements, v)
		}
	}
}

// lastL2Advertisement returns the advertisement's last valid version, limited to the pools in force.
func (p *parser) lastL2Advertisement(name string) (*L2Advertisement, bool) {
	if p.last == nil {
		return nil, false
	}
	for _, a := range p.last.L2Advertisements {
		if a.Name == name {
			c := *a
			c.Pools = slices.DeleteFunc(slices.Clone(a.Pools), func(n string) bool { return p.cfg.Pools[n] == nil })
			return &c, true
		}
	}
	return nil, false
}

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

// selectPools resolves the pools in force an advertisement covers: those it names, those its
// selectors match, and every pool when it has neither. The result is sorted. A name that no pool
// has and a selector that matches no pool are warnings; a pool that exists but is not in force
// (it has its own errors) is skipped silently.
func (p *parser) selectPools(r reporter, names []string, sels []metav1.LabelSelector) []string {
	if len(names) == 0 && len(sels) == 0 {
		return sortedKeys(p.cfg.Pools)
	}
	var out []string
	for i, n := range names {
		switch _, exists := p.poolLabels[n]; {
		case p.cfg.Pools[n] != nil:
			out = append(out, n)
		case !exists:
			r.warnf(fmt.Sprintf("spec.ipAddressPools[%d]", i), n, "no IPAddressPool with this name (%s); the advertisement covers its other pools; name an existing pool or create it", knownNames("IPAddressPool", p.poolNames))
		}
	}
	for i := range sels {
		field := fmt.Sprintf("spec.ipAddressPoolSelectors[%d]", i)
		sel, ok := r.selector(field, &sels[i])
		if !ok {
			continue
		}
		matched := false
		for _, n := range p.poolNames {
			if pool := p.cfg.Pools[n]; pool != nil && sel.Matches(labels.Set(pool.Labels)) {
				out = append(out, n)
				matched = true
			} else if sel.Matches(p.poolLabels[n]) {
				matched = true
			}
		}
		if !matched {
			r.warnf(field, sel.String(), "matches no IPAddressPool (%s); label a pool to match it, or correct the selector", knownNames("IPAddressPool", p.poolNames))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseBGPAdvertisements puts the usable BGPAdvertisements in the Config, sorted by name: valid
// ones, and the last valid version of invalid ones (covering the pools and peers still in
// force). Then, in the order of precedence, each advertisement loses the pools for which it
// disagrees on localPref with an earlier one.
func (p *parser) parseBGPAdvertisements(objs []*v1beta1.BGPAdvertisement) {
	es := make([]entrant[*BGPAdvertisement], 0, len(objs))
	for _, o := range objs {
		e := entrant[*BGPAdvertisement]{obj: o}
		e.cur, e.curOK = p.parseBGPAdvertisement(o)
		e.last, e.hasLast = p.lastBGPAdvertisement(o.Name)
		es = append(es, e)
	}
	equal := func(a, b *BGPAdvertisement) bool { return reflect.DeepEqual(a, b) }
	placed := place(p, KindBGPAdvertisement, es, equal, newNoIndex[*BGPAdvertisement])

	_, order := rankEntrants(es, equal)
	var earlier []*BGPAdvertisement
	for _, i := range order {
		v, ok := placed[i]
		if !ok {
			continue
		}
		report := v == es[i].cur // conflicts of a last valid version are not reported again
		if drop := p.localPrefConflicts(p.reporter(KindBGPAdvertisement, es[i].obj), v, earlier, report); len(drop) > 0 {
			c := *v
			c.Pools = slices.DeleteFunc(slices.Clone(v.Pools), func(n string) bool { return drop[n] })
			v = &c
			placed[i] = v
		}
		earlier = append(earlier, v)
	}
	for i := range es { // objs are sorted by name
		if v, ok := placed[i]; ok {
			p.cfg.BGPAdvertisements = append(p.cfg.BGPAdvertisements, v)
		}
	}
}

// lastBGPAdvertisement returns the advertisement's last valid version, limited to the pools and
// peers in force, and to the pools its aggregation lengths fit.
func (p *parser) lastBGPAdvertisement(name string) (*BGPAdvertisement, bool) {
	if p.last == nil {
		return nil, false
	}
	for _, a := range p.last.BGPAdvertisements {
		if a.Name != name {
			continue
		}
		c := *a
		c.Pools = slices.DeleteFunc(slices.Clone(a.Pools), func(n string) bool {
			pool := p.cfg.Pools[n]
			return pool == nil || aggregationTooShort(c.AggregationLength, 32, pool).IsValid() ||
				aggregationTooShort(c.AggregationLengthV6, 128, pool).IsValid()
		})
		c.Peers = slices.DeleteFunc(slices.Clone(a.Peers), func(n string) bool { return p.cfg.Peers[n] == nil })
		return &c, true
	}
	return nil, false
}

// parseBGPAdvertisement returns the advertisement and whether it is valid on its own. Pools its
// aggregation lengths do not fit are reported and left out of it, without making it invalid.
func (p *parser) parseBGPAdvertisement(o *v1beta1.BGPAdvertisement) (*BGPAdvertisement, bool) {
	n := len(p.errs)
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
	lengthsOK := r.aggregationInRange("spec.aggregationLength", adv.AggregationLength, 32)
	lengthsOK = r.aggregationInRange("spec.aggregationLengthV6", adv.AggregationLengthV6, 128) && lengthsOK

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
		adv.Peers = sortedKeys(p.cfg.Peers)
	}
	for i, name := range s.Peers {
		_, exists := slices.BinarySearch(p.peerNames, name)
		switch {
		case p.cfg.Peers[name] != nil:
			adv.Peers = append(adv.Peers, name)
		case !exists:
			r.warnf(fmt.Sprintf("spec.peers[%d]", i), name, "no BGPPeer with this name (%s); the advertisement goes to its other peers; name an existing peer, or leave peers empty to advertise to every peer", knownNames("BGPPeer", p.peerNames))
		}
	}
	slices.Sort(adv.Peers)
	adv.Peers = slices.Compact(adv.Peers)
	ok := len(p.errs) == n
	if lengthsOK {
		adv.Pools = slices.DeleteFunc(adv.Pools, func(name string) bool {
			v4 := p.aggregationFits(r, "spec.aggregationLength", adv.AggregationLength, 32, name)
			v6 := p.aggregationFits(r, "spec.aggregationLengthV6", adv.AggregationLengthV6, 128, name)
			return !v4 || !v6
		})
	}
	return adv, ok
}

// aggregationInRange checks that an aggregation length is within 0..bits.
func (r reporter) aggregationInRange(field string, length, bits int) bool {
	if length < 0 || length > bits {
		r.errorf(field, strconv.Itoa(length), "must be between 0 and %d (default %d)", bits, bits)
		return false
	}
	return true
}

// aggregationFits reports whether an aggregation length is not shorter than any CIDR of the
// pool of that family (a range counts as the smallest set of CIDRs that is exactly its
// addresses): a shorter aggregate would announce addresses outside the pool. It reports the
// pool when it does not fit; the advertisement then leaves that pool out.
func (p *parser) aggregationFits(r reporter, field string, length, bits int, name string) bool {
	most := aggregationTooShort(length, bits, p.cfg.Pools[name])
	if !most.IsValid() {
		return true
	}
	r.errorf(field, strconv.Itoa(length), "is shorter than %s of IPAddressPool %s, so the aggregate would cover addresses outside the pool; use %d or more (until then this advertisement does not advertise that pool)",
		most, name, most.Bits())
	return false
}

// aggregationTooShort returns the most specific CIDR of the pool's addresses of the family of
// bits when length is shorter than it, and the zero Prefix when length fits (or pool is nil).
func aggregationTooShort(length, bits int, pool *Pool) netip.Prefix {
	if pool == nil {
		return netip.Prefix{}
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
		return most
	}
	return netip.Prefix{}
}

// localPrefConflicts returns the pools of v that an earlier advertisement sends to the same
// peer from the same node with a different localPref (same pool and aggregation length, a
// common peer, node and Service selectors that may overlap), reporting them on v when report.
func (p *parser) localPrefConflicts(r reporter, v *BGPAdvertisement, earlier []*BGPAdvertisement, report bool) map[string]bool {
	drop := map[string]bool{}
	for _, a := range earlier {
		if a.LocalPref == nil || v.LocalPref == nil || *a.LocalPref == *v.LocalPref {
			continue
		}
		peers := intersect(a.Peers, v.Peers)
		if len(peers) == 0 || !selectorsMayOverlap(a.NodeSelectors, v.NodeSelectors) ||
			!selectorsMayOverlap(a.ServiceSelectors, v.ServiceSelectors) {
			continue
		}
		var pools []string
		for _, name := range intersect(a.Pools, v.Pools) {
			pool := p.cfg.Pools[name]
			if pool.HasIPv4() && a.AggregationLength == v.AggregationLength ||
				pool.HasIPv6() && a.AggregationLengthV6 == v.AggregationLengthV6 {
				pools = append(pools, name)
				drop[name] = true
			}
		}
		if len(pools) == 0 || !report {
			continue
		}
		const why = "routes of the same prefix to the same peer from the same node need one localPref; use the same value, or separate the peers, nodes or services (until then this advertisement does not advertise those pools)"
		r.errorf("spec.localPref", strconv.FormatUint(uint64(*v.LocalPref), 10),
			"disagrees with localPref %d of BGPAdvertisement %s, which advertises the same pools (%s) to the same peers (%s); %s",
			*a.LocalPref, a.Name, strings.Join(pools, ", "), strings.Join(peers, ", "), why)
	}
	return drop
}
