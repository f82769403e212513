package metrics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/controller/allocator"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	counts := []allocator.PoolCounts{{
		Pool: "a",
		IPv4: allocator.FamilyCounts{Size: allocator.Uint128{Lo: 254}, Assigned: allocator.Uint128{Lo: 3}, Available: allocator.Uint128{Lo: 251}},
		IPv6: allocator.FamilyCounts{Size: allocator.Uint128{Hi: 1}, Assigned: allocator.Uint128{Lo: 1}},
	}}
	m, err := New(reg, Sources{
		Pools:                  func() []allocator.PoolCounts { return counts },
		Pending:                func() int { return 4 },
		AllocationErrorReasons: []string{"pool_full", "in_use"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.ConfigValid(false)
	m.InvalidObjects(map[string]int{"BGPPeer": 1, "IPAddressPool": 0})
	m.AllocationError("pool_full")
	m.AllocationError("pool_full")
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"herald_allocation_errors_total reason=pool_full":  2,
		"herald_allocation_errors_total reason=in_use":     0,
		"herald_services_pending":                          4,
		"herald_config_valid":                              0,
		"herald_config_invalid_objects kind=BGPPeer":       1,
		"herald_config_invalid_objects kind=IPAddressPool": 0,
		"herald_pool_addresses_in_use family=IPv4 pool=a":  3,
		"herald_pool_addresses_in_use family=IPv6 pool=a":  1,
		"herald_pool_addresses family=IPv4 pool=a":         254,
		"herald_pool_addresses family=IPv6 pool=a":         18446744073709551616,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if _, err := New(reg, Sources{}); err == nil {
		t.Error("registering twice in one registry did not fail")
	}
}
