package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Metric is one figure of the report.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// goBenchNames maps Go benchmark names (without the -N suffix) and their units to report names.
var goBenchNames = map[string]map[string]string{
	"BenchmarkAssignEmpty16": {"ns/op": "alloc_empty16_ns_per_op", "cpu-ns/op": "alloc_empty16_cpu_ns_per_op"},
	"BenchmarkAssignFull16":  {"ns/op": "alloc_full16_ns_per_op", "cpu-ns/op": "alloc_full16_cpu_ns_per_op"},
	"BenchmarkAssign64":      {"ns/op": "alloc_slash64_65k_used_ns_per_op", "cpu-ns/op": "alloc_slash64_65k_used_cpu_ns_per_op"},
	"BenchmarkMemoryPerIP":   {"B/ip": "alloc_bytes_per_ip"},
}

// parse reads benchmark output and returns the metrics it names. A later value of the same name
// replaces an earlier one.
func parse(r io.Reader) ([]Metric, error) {
	byName := map[string]Metric{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "BENCHJSON "); i >= 0 {
			var m Metric
			if err := json.Unmarshal([]byte(line[i+len("BENCHJSON "):]), &m); err != nil {
				return nil, fmt.Errorf("bad BENCHJSON line %q: %w", line, err)
			}
			byName[m.Name] = m
			continue
		}
		if strings.HasPrefix(line, "Benchmark") {
			for _, m := range parseGoBench(line) {
				byName[m.Name] = m
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// The ratio uses process CPU time (GC included) when the benchmarks report it: wall-clock time
	// on a shared machine measures the neighbours as much as the allocator.
	for _, unit := range []string{"ns_per_op", "cpu_ns_per_op"} {
		e, okE := byName["alloc_empty16_"+unit]
		f, okF := byName["alloc_full16_"+unit]
		if okE && okF && e.Value > 0 {
			byName["alloc_full16_vs_empty16_ratio"] = Metric{Name: "alloc_full16_vs_empty16_ratio", Value: round(f.Value/e.Value, 3), Unit: "ratio"}
		}
	}
	out := make([]Metric, 0, len(byName))
	for _, m := range byName {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseGoBench reads one line such as "BenchmarkAssignFull16-2  1000000  812.3 ns/op  48 B/op".
func parseGoBench(line string) []Metric {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	units, ok := goBenchNames[name]
	if !ok {
		return nil
	}
	var ms []Metric
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		if n, ok := units[f[i+1]]; ok {
			ms = append(ms, Metric{Name: n, Value: v, Unit: f[i+1]})
		}
	}
	return ms
}

func round(v float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return p
}

func machine() string {
	cpu := runtime.GOARCH
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					cpu = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d cores (%s), %s, kernel %s, %s", runtime.NumCPU(), cpu, runtime.Version(), strings.TrimSpace(string(kernel)), runtime.GOOS)
}

func run(in, outDir string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	ms, err := parse(f)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("no figures found in %s", in)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Herald benchmark report\n\n- Date: %s\n- Machine: %s\n\n", time.Now().UTC().Format(time.RFC3339), machine())
	b.WriteString("| name | value | unit |\n|---|---:|---|\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.Name, strconv.FormatFloat(m.Value, 'f', -1, 64), m.Unit)
	}
	// Goals from the issues (bench/goals.tsv) and the hand-written causes of the gaps
	// (bench/NOTES.md) follow the figures when they exist.
	if gf, err := os.Open(filepath.Join(outDir, "goals.tsv")); err == nil {
		goals, err := parseGoals(gf)
		gf.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", gf.Name(), err)
		}
		renderGoals(&b, judge(ms, goals))
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if notes, err := os.ReadFile(filepath.Join(outDir, "NOTES.md")); err == nil {
		b.WriteString("\n")
		b.Write(notes)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "REPORT.md"), []byte(b.String()), 0o644)
}
