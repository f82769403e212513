package service_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchFigure prints one measurement in the form `make bench` collects.
func benchFigure(t *testing.T, name string, value float64, unit string) {
	b, err := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, value, unit})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCHJSON %s\n", b)
	t.Logf("BENCHJSON %s", b)
}

// percentile returns the p-quantile (0-1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
