package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRun(t *testing.T) {
	in := `["sum by (pool) (herald_pool_addresses_in_use) / sum by (pool) (herald_pool_addresses) > 0.9",
		"rate(herald_allocation_errors_total[5m]) > 0 and {__name__=\"herald_services_pending\"}",
		"sum(rate(x[5m]) by"]`
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var got []Result
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3: %s", len(got), out.String())
	}
	if diff := cmp.Diff([]string{"herald_pool_addresses", "herald_pool_addresses_in_use"}, got[0].Metrics); diff != "" || got[0].Error != "" {
		t.Errorf("first (-want +got):\n%s (error %q)", diff, got[0].Error)
	}
	if diff := cmp.Diff([]string{"herald_allocation_errors_total", "herald_services_pending"}, got[1].Metrics); diff != "" {
		t.Errorf("second (-want +got):\n%s", diff)
	}
	if got[2].Error == "" {
		t.Errorf("a broken expression parsed: %+v", got[2])
	}
}
