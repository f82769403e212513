package metrics

import (
	"testing"

	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/internal/metrics/metricstest"
)

// TestMetricsPassPromlint: every metric of the controller's own registry passes promlint (a gauge
// named like a counter, herald_pool_addresses_total, did not).
func TestMetricsPassPromlint(t *testing.T) {
	reg := metricstest.NewRegistry()
	counts := []allocator.PoolCounts{{Pool: "a", IPv4: allocator.FamilyCounts{Size: allocator.Uint128{Lo: 4}}}}
	if _, err := New(reg, Sources{Pools: func() []allocator.PoolCounts { return counts }, AllocationErrorReasons: []string{"pool_full"}}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Families()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := metricstest.Lint(mfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s", p)
	}
}
