package layer2

import (
	"testing"

	"github.com/herald-lb/herald/internal/metrics/metricstest"
)

func TestMetricsPassPromlint(t *testing.T) {
	reg := metricstest.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newConflictMetrics(reg); err != nil {
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
