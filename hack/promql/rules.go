package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/util/teststorage"
	"gopkg.in/yaml.v3"
)

// ruleTests is a file of alerting rule tests, in the format of `promtool test rules` (the
// subset of it that alerts need): series given as 'initial+incrementxcount' sequences, and the
// alerts expected to fire at given times.
type ruleTests struct {
	Tests []ruleTest `yaml:"tests"`
}

type ruleTest struct {
	Name     string         `yaml:"name"`
	Interval model.Duration `yaml:"interval"`
	Series   []struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	} `yaml:"input_series"`
	Alerts []struct {
		EvalTime  model.Duration `yaml:"eval_time"`
		AlertName string         `yaml:"alertname"`
		Expected  []struct {
			Labels      map[string]string `yaml:"exp_labels"`
			Annotations map[string]string `yaml:"exp_annotations"`
		} `yaml:"exp_alerts"`
	} `yaml:"alert_rule_test"`
}

// checkRules validates the rule groups of a PrometheusRule (spec.groups) as `promtool check
// rules` does, then runs the tests of testsPath against them. It returns one line per failure.
func checkRules(rulesPath, testsPath string) ([]string, error) {
	groups, err := readPrometheusRule(rulesPath)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(testsPath)
	if err != nil {
		return nil, err
	}
	var tests ruleTests
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&tests); err != nil {
		return nil, fmt.Errorf("%s: %w", testsPath, err)
	}
	var failures []string
	tested := map[string]bool{}
	for _, tc := range tests.Tests {
		fs, err := runRuleTest(groups, tc)
		if err != nil {
			return nil, fmt.Errorf("test %q: %w", tc.Name, err)
		}
		failures = append(failures, fs...)
		for _, a := range tc.Alerts {
			if len(a.Expected) > 0 {
				tested[a.AlertName] = true
			}
		}
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !tested[r.Alert] {
				failures = append(failures, fmt.Sprintf("alert %s: no test makes it fire", r.Alert))
			}
		}
	}
	return failures, nil
}

// readPrometheusRule returns the rule groups of a PrometheusRule object, validated by rulefmt
// (expressions, templates, label names, durations).
func readPrometheusRule(path string) (*rulefmt.RuleGroups, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var obj struct {
		Kind string    `yaml:"kind"`
		Spec yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if obj.Kind != "PrometheusRule" {
		return nil, fmt.Errorf("%s: kind %q, want PrometheusRule", path, obj.Kind)
	}
	spec, err := yaml.Marshal(&obj.Spec)
	if err != nil {
		return nil, err
	}
	groups, errs := rulefmt.Parse(spec, false)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(errs...))
	}
	return groups, nil
}

// runRuleTest loads the test's series and evaluates every alerting rule at every interval up to
// the last eval_time, as Prometheus would, comparing the firing alerts at each eval_time.
func runRuleTest(groups *rulefmt.RuleGroups, tc ruleTest) ([]string, error) {
	interval := time.Duration(tc.Interval)
	if interval <= 0 {
		interval = time.Minute
	}
	st, err := teststorage.NewWithError()
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	start := time.Unix(0, 0).UTC()
	app := st.Appender(context.Background())
	for _, s := range tc.Series {
		lbls, vals, err := parser.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			return nil, fmt.Errorf("series %s %q: %w", s.Series, s.Values, err)
		}
		for i, v := range vals {
			if v.Omitted {
				continue
			}
			if _, err := app.Append(0, lbls, start.Add(time.Duration(i)*interval).UnixMilli(), v.Value); err != nil {
				return nil, err
			}
		}
	}
	if err := app.Commit(); err != nil {
		return nil, err
	}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, st)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	byName := map[string]*rules.AlertingRule{}
	var all []*rules.AlertingRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			expr, err := parser.ParseExpr(r.Expr)
			if err != nil {
				return nil, fmt.Errorf("alert %s: %w", r.Alert, err)
			}
			ar := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, logger)
			byName[r.Alert] = ar
			all = append(all, ar)
		}
	}

	var last time.Duration
	checks := map[time.Duration][]int{}
	for i, a := range tc.Alerts {
		if _, ok := byName[a.AlertName]; !ok {
			return nil, fmt.Errorf("no alert named %s", a.AlertName)
		}
		at := time.Duration(a.EvalTime)
		checks[at] = append(checks[at], i)
		last = max(last, at)
	}
	var failures []string
	for at := time.Duration(0); at <= last; at += interval {
		for _, r := range all {
			if _, err := r.Eval(context.Background(), 0, start.Add(at), query, nil, 0); err != nil {
				failures = append(failures, fmt.Sprintf("test %q: alert %s at %s: %v", tc.Name, r.Name(), at, err))
			}
		}
		for _, i := range checks[at] {
			a := tc.Alerts[i]
			failures = append(failures, compareAlerts(tc.Name, a.AlertName, at, byName[a.AlertName], a.Expected)...)
		}
	}
	return failures, nil
}

// compareAlerts compares the alerts r fires with the expected ones: the same label sets (without
// alertname), and for each, the expected annotations (whole texts; others are not compared, but
// none may hold a template error).
func compareAlerts(test, name string, at time.Duration, r *rules.AlertingRule, want []struct {
	Labels      map[string]string `yaml:"exp_labels"`
	Annotations map[string]string `yaml:"exp_annotations"`
}) []string {
	prefix := fmt.Sprintf("test %q: %s at %s", test, name, at)
	got := map[string]*rules.Alert{}
	for _, a := range r.ActiveAlerts() {
		if a.State != rules.StateFiring {
			continue
		}
		got[labels.NewBuilder(a.Labels).Del(labels.MetricName, labels.AlertName).Labels().String()] = a
	}
	var failures []string
	seen := map[string]bool{}
	for _, w := range want {
		key := labels.FromMap(w.Labels).String()
		seen[key] = true
		a, ok := got[key]
		if !ok {
			failures = append(failures, fmt.Sprintf("%s: no alert %s fires (firing: %v)", prefix, key, slices.Sorted(maps.Keys(got))))
			continue
		}
		for k, v := range w.Annotations {
			if g := a.Annotations.Get(k); g != v {
				failures = append(failures, fmt.Sprintf("%s %s: annotation %s = %q, want %q", prefix, key, k, g, v))
			}
		}
	}
	for key, a := range got {
		if !seen[key] {
			failures = append(failures, fmt.Sprintf("%s: unexpected alert %s", prefix, key))
		}
		a.Annotations.Range(func(l labels.Label) {
			if strings.Contains(l.Value, "error expanding template") || strings.Contains(l.Value, "<no value>") {
				failures = append(failures, fmt.Sprintf("%s %s: annotation %s: %s", prefix, key, l.Name, l.Value))
			}
		})
	}
	return failures
}
