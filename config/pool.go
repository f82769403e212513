package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
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

// poolEntry is one parsed entry of a pool's spec.addresses, for the overlap checks.
type poolEntry struct {
	pool  string
	index int    // in spec.addresses; -1 for a range of a pool's last valid version
	raw   string // as written; empty for a last valid version
	r     Range
}

// poolVersion is one version of a pool competing for its addresses.
type poolVersion struct {
	pool    *Pool
	entries []poolEntry
}

func (p *parser) parsePools(objs []*v1beta1.IPAddressPool) {
	es := make([]entrant[poolVersion], 0, len(objs))
	for _, o := range objs {
		p.poolNames = append(p.poolNames, o.Name)
		p.poolLabels[o.Name] = labels.Set(o.Labels)
		e := entrant[poolVersion]{obj: o}
		e.curOK = p.clean(func() {
			pool, entries := p.parsePool(o)
			e.cur = poolVersion{pool: pool, entries: entries}
		})
		if p.last != nil {
			if last := p.last.Pools[o.Name]; last != nil {
				e.last, e.hasLast = poolVersion{pool: last, entries: lastEntries(last)}, true
			}
		}
		es = append(es, e)
	}
	equal := func(a, b poolVersion) bool { return reflect.DeepEqual(a.pool, b.pool) }
	for _, v := range place(p, KindIPAddressPool, es, equal, newPoolIndex) {
		p.cfg.Pools[v.pool.Name] = v.pool
	}
}

// lastEntries returns the ranges of a pool's last valid version as entries.
func lastEntries(pool *Pool) []poolEntry {
	out := make([]poolEntry, len(pool.Ranges))
	for i, r := range pool.Ranges {
		out[i] = poolEntry{pool: pool.Name, index: -1, r: r}
	}
	return out
}

// poolIndex holds the address ranges of the pools in force, sorted; they never overlap.
type poolIndex struct {
	entries []poolEntry
}

func newPoolIndex() index[poolVersion] { return &poolIndex{} }

func (x *poolIndex) add(v poolVersion) {
	for _, e := range v.entries {
		i, _ := slices.BinarySearchFunc(x.entries, e, func(a, b poolEntry) int { return compareRanges(a.r, b.r) })
		x.entries = slices.Insert(x.entries, i, e)
	}
}

// conflicts returns an error for every entry of v that shares addresses with a pool in force.
func (x *poolIndex) conflicts(v poolVersion) []conflict {
	const why = "an address may belong to one pool only; remove the common addresses from one of the pools"
	var out []conflict
	for _, e := range v.entries {
		// The ranges in force do not overlap each other, so those that end at or after e's
		// first address and start at or before its last are exactly the overlapping ones.
		start := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].r.Last.Compare(e.r.First) >= 0 })
		for _, o := range x.entries[start:] {
			if o.r.First.Compare(e.r.Last) > 0 {
				break
			}
			common, ok := e.r.Intersect(o.r)
			if !ok {
				continue
			}
			field, value := fmt.Sprintf("spec.addresses[%d]", e.index), e.raw
			if e.index < 0 {
				field, value = "spec.addresses", e.r.String()
			}
			if o.index >= 0 {
				out = append(out, conflict{field, value, fmt.Sprintf("overlaps IPAddressPool %s spec.addresses[%d] %q in %s; %s",
					o.pool, o.index, o.raw, common, why)})
			} else {
				out = append(out, conflict{field, value, fmt.Sprintf("overlaps %s of IPAddressPool %s (its last valid version, in force) in %s; %s",
					o.r, o.pool, common, why)})
			}
		}
	}
	return out
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
		entries = append(entries, poolEntry{pool: o.Name, index: i, raw: a, r: rg})
		pool.Ranges = append(pool.Ranges, rg)
		if !pool.AllocateNetworkAndBroadcast {
			pool.Skip = append(pool.Skip, NetworkAndBroadcast(prefix)...)
		}
	}
	slices.SortFunc(pool.Ranges, compareRanges)
	slices.SortFunc(pool.Skip, netip.Addr.Compare)
	pool.Skip = slices.Compact(pool.Skip) // only invalid (duplicate) entries could repeat one
	r.checkOwnOverlaps(entries)
	pool.Allocation = r.serviceAllocation(o.Spec.ServiceAllocation)
	return pool, entries
}

// checkOwnOverlaps reports every two entries of one pool that share addresses, on the later entry.
func (r reporter) checkOwnOverlaps(entries []poolEntry) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b poolEntry) int {
		return cmp.Or(compareRanges(a.r, b.r), cmp.Compare(a.index, b.index))
	})
	for i, a := range sorted {
		// Entries are sorted by first address, so every later entry that starts at or
		// before a's last address overlaps a (the address order puts IPv4 before IPv6).
		for _, b := range sorted[i+1:] {
			if b.r.First.Compare(a.r.Last) > 0 {
				break
			}
			common, _ := a.r.Intersect(b.r)
			first, second := a, b
			if second.index < first.index {
				first, second = second, first
			}
			if a.r == b.r {
				r.errorf(fmt.Sprintf("spec.addresses[%d]", second.index), second.raw,
					"duplicates spec.addresses[%d] %q of the same pool; remove one of them", first.index, first.raw)
				continue
			}
			r.errorf(fmt.Sprintf("spec.addresses[%d]", second.index), second.raw,
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
