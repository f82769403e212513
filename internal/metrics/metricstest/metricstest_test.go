package metricstest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// silent describes a metric and never reports it.
type silent struct{ d *prometheus.Desc }

func (s silent) Describe(ch chan<- *prometheus.Desc) { ch <- s.d }
func (silent) Collect(chan<- prometheus.Metric)      {}

func TestLintSeesVectorsWithoutSeries(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_addresses_total", Help: "A gauge named like a counter."}),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_errors", Help: "A counter without _total, no series yet."}, []string{"reason", "family"}),
		prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_fine", Help: `Help with "quotes", braces {} and commas.`}, []string{"a"}),
	)
	mfs, err := r.Families()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x_addresses_total", "x_errors", "x_fine"}, Names(mfs)); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
	got, err := Lint(mfs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`x_addresses_total: non-counter metrics should not have "_total" suffix`,
		`x_errors: counter metrics should have "_total" suffix`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestFamiliesRefusesSilentCollectors(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(silent{prometheus.NewDesc("x_silent", "Never reported.", []string{"peer"}, nil)})
	names, err := r.Described()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x_silent"}, names); diff != "" {
		t.Errorf("Described (-want +got):\n%s", diff)
	}
	if _, err := r.Families(); err == nil || !strings.Contains(err.Error(), "x_silent") {
		t.Errorf("Families error = %v, want one naming x_silent", err)
	}
}
