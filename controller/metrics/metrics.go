// Package metrics owns herald-controller's Prometheus metrics; internal/metrics serves them.
// Metrics live in a registry the caller creates and injects; nothing is registered globally.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/controller/allocator"
)

// Metrics are the controller's own metrics.
type Metrics struct {
	allocationErrors *prometheus.CounterVec
	configValid      prometheus.Gauge
	invalidObjects   *prometheus.GaugeVec
}

// Sources are read at every scrape; they must be cheap and safe for concurrent use.
type Sources struct {
	// Pools returns the address counts of every pool (herald_pool_addresses and
	// herald_pool_addresses_in_use).
	Pools func() []allocator.PoolCounts
	// Pending returns the number of Services waiting for an address (herald_services_pending).
	Pending func() int
	// AllocationErrorReasons are the reason labels of herald_allocation_errors_total, which
	// start at 0 so that increase() sees the first error of each.
	AllocationErrorReasons []string
}

// New registers the controller's metrics in reg.
func New(reg prometheus.Registerer, src Sources) (*Metrics, error) {
	if src.Pools == nil {
		src.Pools = func() []allocator.PoolCounts { return nil }
	}
	if src.Pending == nil {
		src.Pending = func() int { return 0 }
	}
	m := &Metrics{
		allocationErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald",
			Name:      "allocation_errors_total",
			Help:      "Failed address allocations, by reason (pool_full, not_in_pool, in_use, sharing_conflict, ...).",
		}, []string{"reason"}),
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "herald",
			Name:      "config_valid",
			Help:      "1 when every Herald configuration object in the cluster is valid, 0 while any is invalid (see herald_config_invalid_objects).",
		}),
		invalidObjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "herald",
			Name:      "config_invalid_objects",
			Help:      "Herald configuration objects with at least one error, by kind. Each is left out, or kept at its last valid version; the others work.",
		}, []string{"kind"}),
	}
	for _, r := range src.AllocationErrorReasons {
		m.allocationErrors.WithLabelValues(r)
	}
	pending := src.Pending
	errs := []error{
		reg.Register(m.allocationErrors),
		reg.Register(m.configValid),
		reg.Register(m.invalidObjects),
		reg.Register(&poolCollector{counts: src.Pools}),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "herald",
			Name:      "services_pending",
			Help:      "LoadBalancer Services waiting for an address (or for one of their families): the pool is full, the requested address is taken or in no pool, or no pool may serve them.",
		}, func() float64 { return float64(pending()) })),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}

// AllocationError counts one failed allocation.
func (m *Metrics) AllocationError(reason string) { m.allocationErrors.WithLabelValues(reason).Inc() }

// ConfigValid records whether the configuration in the cluster is valid.
func (m *Metrics) ConfigValid(valid bool) {
	if valid {
		m.configValid.Set(1)
	} else {
		m.configValid.Set(0)
	}
}

// InvalidObjects records the number of invalid configuration objects of each kind.
func (m *Metrics) InvalidObjects(byKind map[string]int) {
	for kind, n := range byKind {
		m.invalidObjects.WithLabelValues(kind).Set(float64(n))
	}
}

var (
	// herald_pool_addresses was herald_pool_addresses_total until v0.1: a gauge must not carry a
	// counter's suffix (promlint).
	poolTotalDesc = prometheus.NewDesc("herald_pool_addresses",
		"Addresses of the pool that can be handed out (without the network and broadcast addresses of its CIDRs, unless allocateNetworkAndBroadcast, nor those skipped by avoidBuggyIPs), plus skipped addresses that Services still hold.",
		[]string{"pool", "family"}, nil)
	poolInUseDesc = prometheus.NewDesc("herald_pool_addresses_in_use",
		"Addresses of the pool held by Services (a shared address counts once).",
		[]string{"pool", "family"}, nil)
)

// poolCollector reads the pools' counts at scrape time, so the figures are always current and
// pools that disappear leave no stale series.
type poolCollector struct {
	counts func() []allocator.PoolCounts
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolTotalDesc
	ch <- poolInUseDesc
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.counts() {
		for _, f := range []struct {
			name   string
			counts allocator.FamilyCounts
		}{{"IPv4", p.IPv4}, {"IPv6", p.IPv6}} {
			ch <- prometheus.MustNewConstMetric(poolTotalDesc, prometheus.GaugeValue, f.counts.Size.Float64(), p.Pool, f.name)
			ch <- prometheus.MustNewConstMetric(poolInUseDesc, prometheus.GaugeValue, f.counts.Assigned.Float64(), p.Pool, f.name)
		}
	}
}
