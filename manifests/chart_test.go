package manifests_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// chartDir is the Helm chart.
func chartDir(t *testing.T) string { return filepath.Join(root(t), "manifests", "helm", "herald") }

// allMonitoring turns every monitoring option of the chart on.
var allMonitoring = []string{"metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true",
	"metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true", "networkPolicy.enabled=true"}

func TestHelmLint(t *testing.T) {
	for _, set := range [][]string{nil, allMonitoring, {"webhook.enabled=false", "crds.install=false", "controller.replicas=3"}} {
		args := []string{"lint", "--strict", chartDir(t)}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		out := run(t, helm(t), args...)
		if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
			t.Errorf("helm lint %v:\n%s", set, out)
		}
	}
}

// TestHelmSchemaRefusesBadValues: values.schema.json refuses mistakes before anything is
// rendered, naming the value.
func TestHelmSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"logLevel=loud", "/logLevel"},
		{"webhook.enabld=false", "'enabld' not allowed"},
		{"crds.instal=false", "'instal' not allowed"},
		{"controller.replicas=0", "/controller/replicas"},
		{"metrics.podMonitor.interval=soon", "/metrics/podMonitor/interval"},
		{"memberlist.key=not-base64", "/memberlist/key"},
		{"namespace=Herald_System", "/namespace"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"speaker.tolerations[0].operator=Maybe", "/speaker/tolerations/0/operator"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			cmd := exec.Command(helm(t), "template", "herald", chartDir(t), "--set", tc.set)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("helm template --set %s succeeded", tc.set)
			}
			if !strings.Contains(string(out), "schema") || !strings.Contains(string(out), tc.want) {
				t.Errorf("helm template --set %s: %s\nwant a schema error naming %q", tc.set, out, tc.want)
			}
		})
	}
	// And the chart's own values, with every option on, pass it.
	helmTemplate(t, allMonitoring...)
}

func TestHelmOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		objs := parse(t, helmTemplate(t))
		for _, gone := range []string{"NetworkPolicy/herald-system/herald-controller", "PodMonitor/herald-system/herald-speaker",
			"PrometheusRule/herald-system/herald", "ConfigMap/herald-system/herald-dashboard", "Secret/herald-system/herald-metrics-scraper-token"} {
			if _, ok := objs[gone]; ok {
				t.Errorf("%s rendered by default; monitoring and network policies are off by default", gone)
			}
		}
		if _, ok := objs["PodDisruptionBudget/herald-system/herald-controller"]; !ok {
			t.Error("no PodDisruptionBudget for the controller")
		}
		ds, _ := yaml.Marshal(objs["DaemonSet/herald-system/herald-speaker"])
		if !bytes.Contains(ds, []byte("priorityClassName: system-node-critical")) {
			t.Errorf("speaker is not system-node-critical:\n%s", ds)
		}
		crds := 0
		for k := range objs {
			if strings.HasPrefix(k, "CustomResourceDefinition/") {
				crds++
			}
		}
		if crds != 9 {
			t.Errorf("%d CRDs rendered as templates, want the 9 of manifests/crds", crds)
		}
	})
	t.Run("CRDs managed elsewhere, not kept", func(t *testing.T) {
		for k := range parse(t, helmTemplate(t, "crds.install=false")) {
			if strings.HasPrefix(k, "CustomResourceDefinition/") {
				t.Errorf("%s rendered with crds.install=false", k)
			}
		}
		for k, o := range parse(t, helmTemplate(t, "crds.keep=false")) {
			if b, _ := yaml.Marshal(o); strings.HasPrefix(k, "CustomResourceDefinition/") && bytes.Contains(b, []byte("resource-policy")) {
				t.Errorf("%s is kept on uninstall with crds.keep=false", k)
			}
		}
	})
	t.Run("replicas", func(t *testing.T) {
		dep, _ := yaml.Marshal(parse(t, helmTemplate(t, "controller.replicas=2"))["Deployment/herald-system/herald-controller"])
		for _, s := range []string{"replicas: 2", "--leader-elect=true", "type: RollingUpdate"} {
			if !bytes.Contains(dep, []byte(s)) {
				t.Errorf("two replicas: the Deployment lacks %q:\n%s", s, dep)
			}
		}
		one, _ := yaml.Marshal(parse(t, helmTemplate(t))["Deployment/herald-system/herald-controller"])
		if bytes.Contains(one, []byte("leader-elect")) || !bytes.Contains(one, []byte("type: Recreate")) {
			t.Errorf("one replica: want strategy Recreate and no leader election:\n%s", one)
		}
	})
	t.Run("monitoring", func(t *testing.T) {
		objs := parse(t, helmTemplate(t, append(allMonitoring, "metrics.grafanaDashboard.namespace=grafana",
			"metrics.prometheusRule.labels.release=kube-prometheus")...))
		for _, want := range []string{"PodMonitor/herald-system/herald-controller", "PodMonitor/herald-system/herald-speaker",
			"ServiceMonitor/herald-system/herald-speaker", "Secret/herald-system/herald-metrics-scraper-token",
			"ClusterRoleBinding/<nil>/herald-metrics-scraper", "ConfigMap/grafana/herald-dashboard", "NetworkPolicy/herald-system/herald-controller"} {
			if _, ok := objs[want]; !ok {
				t.Errorf("%s not rendered", want)
			}
		}
		for _, k := range []string{"PodMonitor/herald-system/herald-speaker", "ServiceMonitor/herald-system/herald-speaker"} {
			m, _ := yaml.Marshal(objs[k])
			for _, s := range []string{"name: herald-metrics-scraper-token", "targetLabel: node", "scheme: https"} {
				if !bytes.Contains(m, []byte(s)) {
					t.Errorf("%s lacks %q:\n%s", k, s, m)
				}
			}
		}
		rule, _ := yaml.Marshal(objs["PrometheusRule/herald-system/herald"])
		if !bytes.Contains(rule, []byte("release: kube-prometheus")) {
			t.Errorf("PrometheusRule lacks its extra label:\n%s", rule)
		}
	})
	t.Run("PodMonitor without the scraper token", func(t *testing.T) {
		out, err := exec.Command(helm(t), "template", "herald", chartDir(t), "--set", "metrics.podMonitor.enabled=true",
			"--set", "metrics.scraper.create=false").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "metrics.scraper.create") {
			t.Errorf("PodMonitors without the scraper token: %v %s; want an error naming metrics.scraper.create", err, out)
		}
	})
}

// TestHelmMonitoringMatchesKustomize: the chart's alerts and dashboard are those of
// manifests/monitoring, and its PodMonitors scrape the same way.
func TestHelmMonitoringMatchesKustomize(t *testing.T) {
	want := parse(t, run(t, kubectl(t), "kustomize", filepath.Join(root(t), "manifests", "monitoring")))
	got := parse(t, helmTemplate(t, "metrics.podMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "metrics.grafanaDashboard.enabled=true"))
	for _, k := range []string{"PrometheusRule/herald-system/herald", "ConfigMap/herald-system/herald-dashboard",
		"PodMonitor/herald-system/herald-controller", "PodMonitor/herald-system/herald-speaker",
		"ServiceAccount/herald-system/herald-metrics-scraper", "Secret/herald-system/herald-metrics-scraper-token",
		"ClusterRoleBinding/<nil>/herald-metrics-scraper"} {
		if _, ok := want[k]; !ok {
			t.Fatalf("manifests/monitoring has no %s", k)
		}
		if diff := cmp.Diff(want[k], got[k]); diff != "" {
			t.Errorf("%s differs (-kustomize +helm):\n%s", k, diff)
		}
	}
}
