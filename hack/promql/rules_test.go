package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testRules = `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups:
    - name: x
      rules:
        - alert: Down
          expr: up == 0
          for: 2m
          labels: {severity: warning}
          annotations: {summary: "{{ $labels.instance }} is down"}
        - alert: Untested
          expr: up > 1
`

func TestCheckRules(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(rules, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tests, []byte(`tests:
  - interval: 1m
    input_series:
      - {series: 'up{instance="a"}', values: '0x5'}
      - {series: 'up{instance="b"}', values: '1x5'}
    alert_rule_test:
      - {eval_time: 1m, alertname: Down}
      - eval_time: 3m
        alertname: Down
        exp_alerts:
          - exp_labels: {severity: warning, instance: a}
            exp_annotations: {summary: a is down}
          - exp_labels: {severity: warning, instance: b}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	failures, err := checkRules(rules, tests)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(failures, "\n")
	for _, want := range []string{`no alert {instance="b", severity="warning"} fires`, "alert Untested: no test makes it fire"} {
		if !strings.Contains(got, want) {
			t.Errorf("failures do not say %q:\n%s", want, got)
		}
	}
	if len(failures) != 2 {
		t.Errorf("%d failures, want 2:\n%s", len(failures), got)
	}

	if err := os.WriteFile(rules, []byte(strings.Replace(testRules, "up == 0", "up == ", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := checkRules(rules, tests); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("a broken expression: error %v, want a parse error", err)
	}
}
