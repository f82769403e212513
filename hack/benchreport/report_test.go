package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Metric
	}{
		{
			name: "go benchmarks and ratio",
			in: `goos: linux
BenchmarkAssignEmpty16-2   	 1000000	       500.0 ns/op	      64 B/op
BenchmarkAssignFull16-2    	 1000000	       600.0 ns/op
BenchmarkMemoryPerIP-2     	       1	 123 B/ip
BenchmarkUnknown-2 1 5 ns/op
PASS`,
			want: []Metric{
				{"alloc_bytes_per_ip", 123, "B/ip"},
				{"alloc_empty16_ns_per_op", 500, "ns/op"},
				{"alloc_full16_ns_per_op", 600, "ns/op"},
				{"alloc_full16_vs_empty16_ratio", 1.2, "ratio"},
			},
		},
		{
			name: "CPU time preferred for the ratio",
			in: `BenchmarkAssignEmpty16-2 100 500.0 ns/op 400.0 cpu-ns/op
BenchmarkAssignFull16-2 100 900.0 ns/op 500.0 cpu-ns/op`,
			want: []Metric{
				{"alloc_empty16_cpu_ns_per_op", 400, "cpu-ns/op"},
				{"alloc_empty16_ns_per_op", 500, "ns/op"},
				{"alloc_full16_cpu_ns_per_op", 500, "cpu-ns/op"},
				{"alloc_full16_ns_per_op", 900, "ns/op"},
				{"alloc_full16_vs_empty16_ratio", 1.25, "ratio"},
			},
		},
		{
			name: "BENCHJSON lines, last wins, prefix ignored",
			in: `    lab_test.go:12: BENCHJSON {"name":"l2_failover_kill_median_ms","value":300,"unit":"ms"}
BENCHJSON {"name":"l2_failover_kill_median_ms","value":250,"unit":"ms"}`,
			want: []Metric{{"l2_failover_kill_median_ms", 250, "ms"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejectsBadJSON(t *testing.T) {
	if _, err := parse(strings.NewReader(`BENCHJSON {"name":`)); err == nil {
		t.Fatal("want an error for a truncated BENCHJSON line")
	}
}

func TestJudge(t *testing.T) {
	ms := []Metric{{"a_ms", 400, "ms"}, {"b", 3, "count"}, {"c", 0, "deaths"}}
	goals := []Goal{
		{Name: "a_ms", Op: "<=", Target: 500, Text: "a"},
		{Name: "a_ms", Op: "<=", Target: 300, Text: "a tight"},
		{Name: "b", Op: ">=", Target: 4, Text: "b"},
		{Name: "c", Op: "==", Target: 0, Text: "c"},
		{Name: "missing", Op: "<=", Target: 1, Text: "m"},
	}
	var got []bool
	var measured []bool
	for _, v := range judge(ms, goals) {
		got = append(got, v.Met)
		measured = append(measured, v.Measured != nil)
	}
	if diff := cmp.Diff([]bool{true, false, false, true, false}, got); diff != "" {
		t.Errorf("met (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, true, true, true, false}, measured); diff != "" {
		t.Errorf("measured (-want +got):\n%s", diff)
	}
}

func TestParseGoals(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Goal
		wantErr string
	}{
		{name: "goals and comments", in: "# comment\n\nx_ms\t<=\t500\tx under 0.5 s (issue 15)\n",
			want: []Goal{{Name: "x_ms", Op: "<=", Target: 500, Text: "x under 0.5 s (issue 15)"}}},
		{name: "bad operator", in: "x\t<\t1\tt\n", wantErr: "operator"},
		{name: "bad target", in: "x\t<=\tten\tt\n", wantErr: "target"},
		{name: "missing field", in: "x\t<=\t1\n", wantErr: "4 tab-separated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGoals(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
