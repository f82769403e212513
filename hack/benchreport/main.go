// Command benchreport turns the output of `make bench` (go test benchmark lines, and lines
// "BENCHJSON {"name":..,"value":..,"unit":..}" printed by measuring tests) into bench/report.json,
// a JSON list of {"name","value","unit"} objects with names that stay stable across runs, and
// bench/REPORT.md, the same as a table with the machine and the date.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	in := flag.String("in", "bench/raw.txt", "raw output of the benchmark runs")
	out := flag.String("out", "bench", "folder for report.json and REPORT.md")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}
