package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Contains reports whether ip is one of the pool's addresses (see Range.Contains).
func (p *Pool) Contains(ip netip.Addr) bool {
	i := sort.Search(len(p.Ranges), func(i int) bool { return p.Ranges[i].Last.Compare(ip) >= 0 })
	return i < len(p.Ranges) && p.Ranges[i].Contains(ip)
}

// HasIPv4 reports whether the pool has IPv4 addresses.
func (p *Pool) HasIPv4() bool {
	for _, r := range p.Ranges {
		if r.Is4() {
			return true
		}
	}
	return false
}

// HasIPv6 reports whether the pool has IPv6 addresses.
func (p *Pool) HasIPv6() bool {
	for _, r := range p.Ranges {
		if r.Is6() {
			return true
		}
	}
	return false
}

// PoolNames returns the names of the pools, sorted.
func (c *Config) PoolNames() []string { return sortedKeys(c.Pools) }

// PeerNames returns the names of the peers, sorted.
func (c *Config) PeerNames() []string { return sortedKeys(c.Peers) }

// poolEntry is one parsed entry of a pool's spec.addresses, for the overlap check.
type poolEntry struct {
	pool  *v1beta1.IPAddressPool
	index int
	raw   string
	r     Range
}

func (p *parser) parsePools(objs []*v1beta1.IPAddressPool) {
	p.poolLabels = map[string]labels.Set{}
	var entries []poolEntry
	for _, o := range objs {
		p.poolNames = append(p.poolNames, o.Name)
		p.poolLabels[o.Name] = labels.Set(o.Labels)
		pool, es := p.parsePool(o)
		entries = append(entries, es...)
		p.cfg.Pools[o.Name] = pool
	}
	p.checkOverlaps(entries)
}

func (p *parser) parsePool(o *v1beta1.IPAddressPool) (*Pool, []poolEntry) {
	r := p.reporter(KindIPAddressPool, o)
	pool := &Pool{
		Name:          o.Name,
		Labels:        maps.Clone(o.Labels),
		AutoAssign:    true,
		AvoidBuggyIPs: o.Spec.AvoidBuggyIPs,

		AllocateNetworkAndBroadcast: o.Spec.AllocateNetworkAndBroadcast,
	}
	if o.Spec.AutoAssign != nil {
		pool.AutoAssign = *o.Spec.AutoAssign
	}
	if len(o.Spec.Addresses) == 0 {
		r.errorf("spec.addresses", "", "the pool has no addresses; add a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20")
	}
	var entries []poolEntry
	for i, a := range o.Spec.Addresses {
		rg, prefix, err := parseEntry(a)
		if err != nil {
			r.errorf(fmt.Sprintf("spec.addresses[%d]", i), a, "%s", reason(err))
			continue
		}
		entries = append(entries, poolEntry{pool: o, index: i, raw: a, r: rg})
		pool.Ranges = append(pool.Ranges, rg)
		if !pool.AllocateNetworkAndBroadcast {
			pool.Skip = append(pool.Skip, NetworkAndBroadcast(prefix)...)
		}
	}
	slices.SortFunc(pool.Ranges, compareRanges)
	slices.SortFunc(pool.Skip, netip.Addr.Compare)
	pool.Skip = slices.Compact(pool.Skip) // only invalid (duplicate) entries could repeat one
	pool.Allocation = r.serviceAllocation(o.Spec.ServiceAllocation)
	return pool, entries
}

// checkOverlaps reports every two entries that share addresses: on both pools when they
// belong to different pools, on the later entry when they belong to the same pool.
func (p *parser) checkOverlaps(entries []poolEntry) {
	slices.SortFunc(entries, func(a, b poolEntry) int {
		return cmp.Or(compareRanges(a.r, b.r), cmp.Compare(a.pool.Name, b.pool.Name), cmp.Compare(a.index, b.index))
	})
	for i, a := range entries {
		// Entries are sorted by first address, so every later entry that starts at or
		// before a's last address overlaps a (the address order puts IPv4 before IPv6).
		for _, b := range entries[i+1:] {
			if b.r.First.Compare(a.r.Last) > 0 {
				break
			}
			common, _ := a.r.Intersect(b.r)
			if a.pool.Name != b.pool.Name {
				const why = "an address may belong to one pool only; remove the common addresses from one of the pools"
				p.reporter(KindIPAddressPool, b.pool).errorf(fmt.Sprintf("spec.addresses[%d]", b.index), b.raw,
					"overlaps IPAddressPool %s spec.addresses[%d] %q in %s; %s", a.pool.Name, a.index, a.raw, common, why)
				p.reporter(KindIPAddressPool, a.pool).errorf(fmt.Sprintf("spec.addresses[%d]", a.index), a.raw,
					"overlaps IPAddressPool %s spec.addresses[%d] %q in %s; %s", b.pool.Name, b.index, b.raw, common, why)
				continue
			}
			first, second := a, b
			if second.index < first.index {
				first, second = second, first
			}
			rep := p.reporter(KindIPAddressPool, b.pool)
			if a.r == b.r {
				rep.errorf(fmt.Sprintf("spec.addresses[%d]", second.index), second.raw,
					"duplicates spec.addresses[%d] %q of the same pool; remove one of them", first.index, first.raw)
				continue
			}
			rep.errorf(fmt.Sprintf("spec.addresses[%d]", second.index), second.raw,
				"overlaps spec.addresses[%d] %q of the same pool in %s; entries of a pool must not overlap, merge them into one", first.index, first.raw, common)
		}
	}
}

func (r reporter) serviceAllocation(sa *v1beta1.ServiceAllocation) *ServiceAllocation {
	if sa == nil {
		return nil
	}
	out := &ServiceAllocation{Priority: int(sa.Priority)}
	if sa.Priority < 0 {
		r.errorf("spec.serviceAllocation.priority", strconv.Itoa(int(sa.Priority)),
			"must not be negative; use 0 or more (lower numbers are tried first)")
	}
	for i, ns := range sa.Namespaces {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			r.errorf(fmt.Sprintf("spec.serviceAllocation.namespaces[%d]", i), ns,
				"not a valid namespace name: %s", strings.Join(errs, "; "))
			continue
		}
		out.Namespaces = append(out.Namespaces, ns)
	}
	slices.Sort(out.Namespaces)
	out.Namespaces = slices.Compact(out.Namespaces)
	out.NamespaceSelectors = r.selectors("spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
	out.ServiceSelectors = r.selectors("spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
	return out
}
