// Command promql parses PromQL expressions with the Prometheus server's own parser and lists the
// metrics each one selects. The manifests tests run it on every alerting rule and dashboard query.
//
// It is a module of its own (hack/promql/go.mod): github.com/prometheus/prometheus would raise
// Herald's dependencies (mdlayher/socket, grpc) past what the speaker builds with.
//
// Usage:
//
//	promql < exprs.json
//	promql rules PROMETHEUSRULE.yaml TESTS.yaml
//
// The first reads a JSON array of expressions on stdin and writes a JSON array, one object per
// expression, {"expr", "error", "metrics"}; the exit status is 0 unless the input is unreadable.
// The second checks a PrometheusRule's groups as `promtool check rules` does and runs alerting
// rule tests in the format of `promtool test rules` on them: one line per failure, exit status 1
// when there is any.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Result is what promql says about one expression.
type Result struct {
	Expr string `json:"expr"`
	// Error is the parser's error, empty when the expression is valid.
	Error string `json:"error,omitempty"`
	// Metrics are the metric names the expression selects, sorted.
	Metrics []string `json:"metrics,omitempty"`
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "rules" {
		failures, err := checkRules(os.Args[2], os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, "promql:", err)
			os.Exit(2)
		}
		for _, f := range failures {
			fmt.Println(f)
		}
		if len(failures) > 0 {
			os.Exit(1)
		}
		return
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "promql:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("reading a JSON array of expressions: %w", err)
	}
	results := make([]Result, 0, len(exprs))
	for _, e := range exprs {
		results = append(results, check(e))
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// check parses one expression and collects the metric names of its selectors.
func check(expr string) Result {
	r := Result{Expr: expr}
	e, err := parser.ParseExpr(expr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name != "" && !slices.Contains(r.Metrics, name) {
			r.Metrics = append(r.Metrics, name)
		}
		return nil
	})
	slices.Sort(r.Metrics)
	return r
}
