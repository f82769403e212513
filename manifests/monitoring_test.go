package manifests_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// monitoringFiles are the sources in manifests/monitoring that the chart carries a copy of, in
// helm/herald/files (`make manifests` refreshes the copies).
var monitoringFiles = []string{"herald-dashboard.json", "prometheusrule.yaml"}

func TestChartMonitoringFilesAreCopies(t *testing.T) {
	r := root(t)
	for _, f := range monitoringFiles {
		src, err := os.ReadFile(filepath.Join(r, "manifests", "monitoring", f))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := os.ReadFile(filepath.Join(r, "manifests", "helm", "herald", "files", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, cp) {
			t.Errorf("manifests/helm/herald/files/%s differs from manifests/monitoring/%s; run `make manifests`", f, f)
		}
	}
}

// promqlResult is what hack/promql says about one expression.
type promqlResult struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error"`
	Metrics []string `json:"metrics"`
}

// promqlTool runs hack/promql (a module of its own) with args and stdin.
func promqlTool(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "."}, args...)...)
	cmd.Dir = filepath.Join(root(t), "hack", "promql")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("hack/promql %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// parsePromQL parses exprs with the Prometheus parser (hack/promql, a module of its own).
func parsePromQL(t *testing.T, exprs []string) []promqlResult {
	t.Helper()
	in, err := json.Marshal(exprs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := promqlTool(t, in)
	if err != nil {
		t.Fatal(err)
	}
	var res []promqlResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("hack/promql output: %v\n%s", err, out)
	}
	if len(res) != len(exprs) {
		t.Fatalf("hack/promql answered %d results for %d expressions", len(res), len(exprs))
	}
	return res
}

// checkQueries fails the test for each expression that does not parse or selects a metric no
// binary exports; it returns every metric selected.
func checkQueries(t *testing.T, what map[string]string) []string {
	t.Helper()
	bins := binaryMetrics(t)
	keys := make([]string, 0, len(what))
	for k := range what {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = what[k]
	}
	var used []string
	for i, r := range parsePromQL(t, exprs) {
		if r.Error != "" {
			t.Errorf("%s: %q does not parse: %s", keys[i], r.Expr, r.Error)
			continue
		}
		if len(r.Metrics) == 0 {
			t.Errorf("%s: %q selects no metric", keys[i], r.Expr)
		}
		for _, m := range r.Metrics {
			if !knownMetric(bins, m) {
				t.Errorf("%s: %q selects %s, which neither binary exports", keys[i], r.Expr, m)
			}
			if !slices.Contains(used, m) {
				used = append(used, m)
			}
		}
	}
	return used
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

func readRules(t *testing.T) prometheusRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), "manifests", "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	return pr
}

// wantAlerts are the conditions an operator is warned of (issue 13): pool exhausted or nearly,
// Service pending, BGP session down, no eligible node for an IP, split brain or address conflict,
// configuration invalid or stale, speaker not a member (and the metrics themselves unreadable).
var wantAlerts = []string{
	"HeraldBGPPeerDownEverywhere", "HeraldBGPPeerRefused", "HeraldBGPSessionDown",
	"HeraldConfigInvalid", "HeraldConfigObjectsInvalid", "HeraldIPNotAnnounced",
	"HeraldLayer2AddressConflict", "HeraldLayer2ConflictsDetected", "HeraldMetricsDown",
	"HeraldPoolExhausted", "HeraldPoolNearlyExhausted", "HeraldServicesPending",
	"HeraldSpeakerConfigStale", "HeraldSpeakerNotMember",
}

func TestAlertRules(t *testing.T) {
	pr := readRules(t)
	if pr.Kind != "PrometheusRule" || pr.Metadata.Name != "herald" {
		t.Errorf("prometheusrule.yaml holds %s %s, want PrometheusRule herald", pr.Kind, pr.Metadata.Name)
	}
	exprs := map[string]string{}
	var names []string
	for _, g := range pr.Spec.Groups {
		if !strings.HasPrefix(g.Name, "herald.") || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name herald.* and rules", g.Name)
		}
		for _, r := range g.Rules {
			names = append(names, r.Alert)
			exprs["alert "+r.Alert] = r.Expr
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			// Annotations are Go templates over $labels and $value: a typo shows up as an empty label.
			for a, text := range r.Annotations {
				for _, m := range regexp.MustCompile(`\{\{\s*\$labels\.(\w+)`).FindAllStringSubmatch(text, -1) {
					if !slices.Contains([]string{"namespace", "node", "pod", "instance", "job", "pool", "family", "peer", "interface", "action", "kind"}, m[1]) {
						t.Errorf("%s: annotation %s uses $labels.%s, which no series carries", r.Alert, a, m[1])
					}
				}
			}
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff(wantAlerts, names); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	checkQueries(t, exprs)
}

// TestAlertRulesFire validates the rule groups as `promtool check rules` does and evaluates every
// alert with the Prometheus rule engine on the series of prometheusrule_test.yaml (`promtool test
// rules` format): each alert fires when it should, with the labels and annotations expected, and
// not before its "for" has passed.
func TestAlertRulesFire(t *testing.T) {
	dir := filepath.Join(root(t), "manifests", "monitoring")
	out, err := promqlTool(t, nil, "rules", filepath.Join(dir, "prometheusrule.yaml"), filepath.Join(dir, "prometheusrule_test.yaml"))
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			t.Error(line)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// grafanaVarRE matches a dashboard variable in a query: $name, ${name} or ${name:format}.
var grafanaVarRE = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// grafanaExpr replaces the dashboard's variables so that the query parses as PromQL: intervals
// become 5m, other variables a regular expression that matches anything.
func grafanaExpr(e string) string {
	return grafanaVarRE.ReplaceAllStringFunc(e, func(v string) string {
		name := grafanaVarRE.FindStringSubmatch(v)[1]
		if strings.HasPrefix(name, "__") {
			return "5m"
		}
		return ".*"
	})
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root(t), "manifests", "monitoring", "herald-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("herald-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: both are needed for provisioning", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable (the dashboard must not name the importer's data source): %v", vars)
	}
	exprs := map[string]string{}
	ids := map[int]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the datasource variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				for _, m := range grafanaVarRE.FindAllStringSubmatch(tg.Expr, -1) {
					if _, ok := vars[m[1]]; !ok && !strings.HasPrefix(m[1], "__") {
						t.Errorf("panel %q uses $%s, which is no variable of the dashboard", p.Title, m[1])
					}
				}
				exprs[p.Title+" #"+string(rune('A'+i))] = grafanaExpr(tg.Expr)
			}
		}
	}
	walk(d.Panels)
	used := checkQueries(t, exprs)
	// What the dashboard must show (issue 13): pools, assignments, owners, failovers, BGP
	// sessions, gossip health, conflicts, configuration.
	for _, m := range []string{
		"herald_pool_addresses", "herald_pool_addresses_in_use", "herald_services_pending", "herald_allocation_errors_total",
		"herald_layer2_owned_ips", "herald_speaker_layer2_takeovers_total", "herald_speaker_unannounced_ips",
		"herald_bgp_session_up", "herald_bgp_prefixes_advertised", "herald_speaker_members",
		"herald_layer2_conflicts", "herald_config_valid", "herald_speaker_config_valid", "herald_config_invalid_objects",
	} {
		if !slices.Contains(used, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
}
