package manifests_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// helmVersion must match HELM_VERSION in the Makefile (make tools installs it).
const helmVersion = "v3.22.0"

func root(t *testing.T) string {
	t.Helper()
	r, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tool returns the path of a binary the test needs, skipping (or failing under `make test`)
// when it is not installed.
func tool(t *testing.T, path, hint string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("HERALD_REQUIRE_APISERVER") != "" {
			t.Fatalf("%s not found: %s", path, hint)
		}
		t.Skipf("%s not found: %s", path, hint)
	}
	return path
}

func helm(t *testing.T) string {
	return tool(t, filepath.Join(root(t), "bin", "helm-"+helmVersion), "run `make tools`")
}

func kubectl(t *testing.T) string {
	t.Helper()
	dir, err := testenv.AssetsDir()
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_APISERVER") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return filepath.Join(dir, "kubectl")
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	return runIn(t, "", name, args...)
}

// runIn runs a command in dir (empty: the working directory) and returns its standard output.
func runIn(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// kustomize renders manifests/ as `kubectl apply -k manifests/` would.
func kustomize(t *testing.T) []byte {
	return run(t, kubectl(t), "kustomize", filepath.Join(root(t), "manifests"))
}

// helmTemplate renders the chart with the given --set values (none: the defaults), with CRDs.
func helmTemplate(t *testing.T, set ...string) []byte {
	args := []string{"template", "herald", filepath.Join(root(t), "manifests", "helm", "herald"), "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return run(t, helm(t), args...)
}

type object = map[string]any

// parse splits a multi-document YAML stream into objects keyed by kind/namespace/name.
func parse(t *testing.T, data []byte) map[string]object {
	t.Helper()
	out := map[string]object{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parsing YAML: %v", err)
		}
		if o == nil {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		key := fmt.Sprintf("%v/%v/%v", o["kind"], md["namespace"], md["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("object %s appears twice", key)
		}
		out[key] = o
	}
}

func keys(m map[string]object) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestKustomizationListsEveryCRD(t *testing.T) {
	var k struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(root(t), "manifests", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	crds, _ := filepath.Glob(filepath.Join(root(t), "manifests", "crds", "*.yaml"))
	if len(crds) == 0 {
		t.Fatal("no CRDs in manifests/crds")
	}
	for _, c := range crds {
		if rel := "crds/" + filepath.Base(c); !slices.Contains(k.Resources, rel) {
			t.Errorf("manifests/kustomization.yaml does not list %s", rel)
		}
	}
}

// TestChartCRDsAreTheGeneratedOnes: the chart's files/crds is a copy that `make manifests` refreshes.
func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	r := root(t)
	gen, _ := filepath.Glob(filepath.Join(r, "manifests", "crds", "*.yaml"))
	chart, _ := filepath.Glob(filepath.Join(r, "manifests", "helm", "herald", "files", "crds", "*.yaml"))
	base := func(ps []string) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = filepath.Base(p)
		}
		return out
	}
	if diff := cmp.Diff(base(gen), base(chart)); diff != "" {
		t.Fatalf("chart CRD files differ from manifests/crds (-want +got); run `make manifests`:\n%s", diff)
	}
	for _, g := range gen {
		a, _ := os.ReadFile(g)
		b, _ := os.ReadFile(filepath.Join(r, "manifests", "helm", "herald", "files", "crds", filepath.Base(g)))
		if !bytes.Equal(a, b) {
			t.Errorf("manifests/helm/herald/files/crds/%s differs from the generated CRD; run `make manifests`", filepath.Base(g))
		}
	}
}

// TestHelmMatchesKustomize: with default values the chart renders exactly the objects of the
// kustomization: same kind/namespace/name set, same content. The only difference allowed is the
// annotation helm.sh/resource-policy: keep on the CRDs (crds.keep), which every CRD must have.
func TestHelmMatchesKustomize(t *testing.T) {
	want := parse(t, kustomize(t))
	got := parse(t, helmTemplate(t))
	for k, o := range got {
		if o["kind"] != "CustomResourceDefinition" {
			continue
		}
		ann, _ := o["metadata"].(map[string]any)["annotations"].(map[string]any)
		if ann["helm.sh/resource-policy"] != "keep" {
			t.Errorf("%s: no annotation helm.sh/resource-policy: keep (crds.keep is the default)", k)
		}
		delete(ann, "helm.sh/resource-policy")
	}
	if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
		t.Fatalf("objects differ (-kustomize +helm):\n%s", diff)
	}
	for _, k := range keys(want) {
		if diff := cmp.Diff(want[k], got[k]); diff != "" {
			t.Errorf("%s differs (-kustomize +helm):\n%s", k, diff)
		}
	}
}

// TestHelmValues checks the knobs of the chart change what they should.
func TestHelmValues(t *testing.T) {
	objs := parse(t, helmTemplate(t,
		"webhook.enabled=false", "lbClass=example.com/herald", "memberlist.key=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"metrics.serviceMonitor.enabled=true", "logLevel=debug", "image.tag=v9.9.9", "image.repository=registry.example/herald",
		"speaker.nodeSelector.role=edge", "createNamespace=false",
		"metrics.readerServiceAccount.name=prometheus-k8s", "metrics.readerServiceAccount.namespace=monitoring"))
	for _, gone := range []string{
		"ValidatingWebhookConfiguration/<nil>/herald-validating-webhook",
		"Service/herald-system/herald-webhook",
		"Namespace/<nil>/herald-system",
	} {
		if _, ok := objs[gone]; ok {
			t.Errorf("%s rendered although disabled", gone)
		}
	}
	for _, want := range []string{
		"Secret/herald-system/herald-memberlist",
		"ServiceMonitor/herald-system/herald-controller",
		"ServiceMonitor/herald-system/herald-speaker",
		"Service/herald-system/herald-speaker-metrics",
		"ClusterRoleBinding/<nil>/herald-metrics-reader",
	} {
		if _, ok := objs[want]; !ok {
			t.Errorf("%s not rendered", want)
		}
	}
	dep, _ := yaml.Marshal(objs["Deployment/herald-system/herald-controller"])
	for _, s := range []string{"--lb-class=example.com/herald", "--enable-webhook=false", "--log-level=debug", "image: registry.example/herald:v9.9.9"} {
		if !bytes.Contains(dep, []byte(s)) {
			t.Errorf("controller Deployment lacks %q:\n%s", s, dep)
		}
	}
	if cr, _ := yaml.Marshal(objs["ClusterRole/<nil>/herald-controller"]); bytes.Contains(cr, []byte("validatingwebhookconfigurations")) || !bytes.Contains(cr, []byte("services/status")) {
		t.Errorf("without the webhook, the controller's ClusterRole must keep its rules but the one on webhook configurations:\n%s", cr)
	}
	ds, _ := yaml.Marshal(objs["DaemonSet/herald-system/herald-speaker"])
	if !bytes.Contains(ds, []byte("role: edge")) {
		t.Errorf("speaker DaemonSet lacks the nodeSelector role: edge:\n%s", ds)
	}

	existing := parse(t, helmTemplate(t, "memberlist.existingSecret=my-key"))
	if _, ok := existing["Secret/herald-system/herald-memberlist"]; ok {
		t.Error("a memberlist Secret is rendered although existingSecret is set")
	}
	spk, _ := yaml.Marshal(existing["DaemonSet/herald-system/herald-speaker"])
	if !bytes.Contains(spk, []byte("--memberlist-secret=my-key")) {
		t.Errorf("speaker DaemonSet does not read the existing Secret my-key:\n%s", spk)
	}
	role, _ := yaml.Marshal(existing["Role/herald-system/herald-controller"])
	if !bytes.Contains(role, []byte("- my-key")) || bytes.Contains(role, []byte("herald-memberlist")) {
		t.Errorf("the controller's Role must let it update the existing Secret my-key, not herald-memberlist:\n%s", role)
	}
}

var applyOnce sync.Once
var applyErr error

// applyKustomization installs manifests/ once per test binary.
func applyKustomization(t *testing.T) {
	t.Helper()
	testenv.Require(t, env)
	applyOnce.Do(func() {
		_, applyErr = env.Kubectl("apply", "--server-side", "-k", filepath.Join(root(t), "manifests"))
	})
	if applyErr != nil {
		t.Fatalf("kubectl apply --server-side -k manifests/: %v", applyErr)
	}
}

func TestKustomizationApplies(t *testing.T) {
	applyKustomization(t)
	for _, o := range parse(t, kustomize(t)) {
		md := o["metadata"].(map[string]any)
		args := []string{"get", strings.ToLower(o["kind"].(string)), md["name"].(string), "-o", "name"}
		if ns, ok := md["namespace"].(string); ok {
			args = append(args, "-n", ns)
		}
		if _, err := env.Kubectl(args...); err != nil {
			t.Errorf("after apply: %v", err)
		}
	}
}

var monitoringCRDsOnce sync.Once
var monitoringCRDsErr error

// installMonitoringCRDs installs the prometheus-operator's CRDs (testdata/prometheus-operator,
// v0.86.1), so that PodMonitors, ServiceMonitors and PrometheusRules are checked by the server.
func installMonitoringCRDs(t *testing.T) {
	t.Helper()
	testenv.Require(t, env)
	monitoringCRDsOnce.Do(func() {
		dir := filepath.Join(root(t), "manifests", "testdata", "prometheus-operator")
		if _, monitoringCRDsErr = env.Kubectl("apply", "--server-side", "-f", dir); monitoringCRDsErr != nil {
			return
		}
		_, monitoringCRDsErr = env.Kubectl("wait", "--for=condition=Established", "--timeout=30s",
			"crd/podmonitors.monitoring.coreos.com", "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
	})
	if monitoringCRDsErr != nil {
		t.Fatalf("installing the prometheus-operator CRDs: %v", monitoringCRDsErr)
	}
}

// dryRun has the API server check every object of a rendered stream (server-side apply, dry
// run: admission, schemas, CEL, without persisting anything).
func dryRun(t *testing.T, rendered []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(f, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", f); err != nil {
		t.Fatal(err)
	}
}

func TestHelmOutputApplies(t *testing.T) {
	applyKustomization(t)
	def := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(def, helmTemplate(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// The same objects as the kustomization: applying them again changes nothing.
	if _, err := env.Kubectl("apply", "--server-side", "-f", def); err != nil {
		t.Fatal(err)
	}
}

// TestEveryRenderedObjectIsAccepted has the real API server check, by a server-side dry run,
// every object the chart renders with every option on, with every option off, and the optional
// monitoring kustomization (manifests/monitoring), each in a namespace of its own.
func TestEveryRenderedObjectIsAccepted(t *testing.T) {
	applyKustomization(t)
	installMonitoringCRDs(t)
	for _, tc := range []struct {
		name string
		set  []string
	}{
		{"everything on", []string{"namespace=herald-all", "lbClass=example.com/x",
			"memberlist.key=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
			"metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true", "metrics.prometheusRule.enabled=true",
			"metrics.grafanaDashboard.enabled=true", "metrics.grafanaDashboard.annotations.grafana_folder=Networking",
			"metrics.readerServiceAccount.name=prometheus", "metrics.readerServiceAccount.namespace=monitoring",
			"networkPolicy.enabled=true", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
			"controller.replicas=2", "controller.priorityClassName=system-cluster-critical"}},
		{"everything off", []string{"namespace=herald-none", "createNamespace=false", "webhook.enabled=false",
			"crds.install=false", "controller.podDisruptionBudget.enabled=false", "speaker.priorityClassName=",
			"metrics.serviceMonitor.enabled=true", "metrics.scraper.create=false", "networkPolicy.enabled=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := strings.TrimPrefix(tc.set[0], "namespace=")
			if _, err := env.Kubectl("create", "namespace", ns); err != nil {
				t.Fatal(err)
			}
			dryRun(t, helmTemplate(t, tc.set...))
		})
	}
	t.Run("manifests/monitoring", func(t *testing.T) {
		dryRun(t, run(t, kubectl(t), "kustomize", filepath.Join(root(t), "manifests", "monitoring")))
	})
	// The Pods themselves: the Priority admission plugin resolves the speaker's
	// system-node-critical class (and would refuse it where it is not allowed).
	t.Run("Pods", func(t *testing.T) {
		objs := parse(t, kustomize(t))
		for _, k := range []string{"DaemonSet/herald-system/herald-speaker", "Deployment/herald-system/herald-controller"} {
			tmpl := objs[k]["spec"].(map[string]any)["template"].(map[string]any)
			pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{
				"name": "dry-run-" + strings.ToLower(strings.Split(k, "/")[0]), "namespace": "herald-system",
				"labels": tmpl["metadata"].(map[string]any)["labels"]}, "spec": tmpl["spec"]}
			b, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "pod.yaml")
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := env.Kubectl("create", "--dry-run=server", "-f", f, "-o", "yaml")
			if err != nil {
				t.Fatalf("a Pod of %s: %v", k, err)
			}
			if strings.Contains(k, "speaker") && !strings.Contains(out, "priority: 2000001000") {
				t.Errorf("the speaker's Pod does not get system-node-critical's priority:\n%s", out)
			}
		}
	})
}

// canI asks the API server whether the ServiceAccount may do verb on what (kubectl auth can-i
// arguments, such as "services" or "secrets/herald-memberlist").
func canI(t *testing.T, sa string, args ...string) bool {
	t.Helper()
	full := append([]string{"auth", "can-i", "--as=system:serviceaccount:herald-system:" + sa}, args...)
	out, err := env.Kubectl(full...)
	lines := strings.Split(strings.TrimSpace(out), "\n") // warnings (cluster-scoped resources) come first
	answer := strings.TrimSpace(lines[len(lines)-1])
	switch {
	case err == nil && answer == "yes":
		return true
	case strings.HasPrefix(answer, "no"):
		return false
	}
	t.Fatalf("kubectl %s: %q, %v", strings.Join(full, " "), out, err)
	return false
}

func TestRBAC(t *testing.T) {
	applyKustomization(t)
	for _, tc := range []struct {
		name string
		sa   string
		args []string
		want bool
	}{
		{"speaker cannot update Services", "herald-speaker", []string{"update", "services", "-n", "default"}, false},
		{"speaker cannot patch Services", "herald-speaker", []string{"patch", "services", "-n", "default"}, false},
		{"speaker cannot update Service status", "herald-speaker", []string{"update", "services", "--subresource=status", "-n", "default"}, false},
		{"speaker reads Services", "herald-speaker", []string{"watch", "services", "-A"}, true},
		{"speaker reads EndpointSlices", "herald-speaker", []string{"list", "endpointslices.discovery.k8s.io", "-A"}, true},
		{"speaker reads Nodes", "herald-speaker", []string{"list", "nodes"}, true},
		{"speaker reads pools", "herald-speaker", []string{"list", "ipaddresspools.herald.dev", "-n", "herald-system"}, true},
		{"speaker cannot read pools elsewhere", "herald-speaker", []string{"list", "ipaddresspools.herald.dev", "-n", "default"}, false},
		{"speaker writes L2 status", "herald-speaker", []string{"create", "servicel2statuses.herald.dev", "-n", "herald-system"}, true},
		{"speaker writes BGP status subresource", "herald-speaker", []string{"update", "servicebgpstatuses.herald.dev", "--subresource=status", "-n", "herald-system"}, true},
		{"speaker writes BGP session status", "herald-speaker", []string{"update", "bgpsessionstatuses.herald.dev", "--subresource=status", "-n", "herald-system"}, true},
		{"speaker sweeps dead speakers' BGP status by label", "herald-speaker", []string{"deletecollection", "servicebgpstatuses.herald.dev", "-n", "herald-system"}, true},
		{"speaker cannot sweep BGP status elsewhere", "herald-speaker", []string{"deletecollection", "bgpsessionstatuses.herald.dev", "-n", "default"}, false},
		{"speaker cannot read status objects elsewhere", "herald-speaker", []string{"list", "servicel2statuses.herald.dev", "-n", "default"}, false},
		{"speaker cannot read status objects cluster-wide", "herald-speaker", []string{"list", "bgpsessionstatuses.herald.dev", "-A"}, false},
		{"speaker cannot write status objects elsewhere", "herald-speaker", []string{"create", "servicebgpstatuses.herald.dev", "-n", "default"}, false},
		{"speaker creates events", "herald-speaker", []string{"create", "events", "-n", "default"}, true},
		{"speaker reads the memberlist Secret", "herald-speaker", []string{"get", "secrets/herald-memberlist", "-n", "herald-system"}, true},
		{"speaker reads BGP password Secrets in its namespace", "herald-speaker", []string{"list", "secrets", "-n", "herald-system"}, true},
		{"speaker cannot read Secrets elsewhere", "herald-speaker", []string{"get", "secrets", "-n", "default"}, false},
		{"speaker cannot write Secrets", "herald-speaker", []string{"update", "secrets/herald-memberlist", "-n", "herald-system"}, false},
		{"speaker cannot write pools", "herald-speaker", []string{"update", "ipaddresspools.herald.dev", "-n", "herald-system"}, false},
		{"speaker checks metrics clients", "herald-speaker", []string{"create", "tokenreviews.authentication.k8s.io"}, true},
		{"speaker checks metrics clients' rights", "herald-speaker", []string{"create", "subjectaccessreviews.authorization.k8s.io"}, true},

		{"controller patches Service status", "herald-controller", []string{"patch", "services", "--subresource=status", "-n", "default"}, true},
		{"controller cannot update Service status", "herald-controller", []string{"update", "services", "--subresource=status", "-n", "default"}, false},
		{"controller patches Services (the pool annotation)", "herald-controller", []string{"patch", "services", "-n", "default"}, true},
		{"controller cannot update Services", "herald-controller", []string{"update", "services", "-n", "default"}, false},
		{"controller cannot create Services", "herald-controller", []string{"create", "services", "-n", "default"}, false},
		{"controller cannot delete Services", "herald-controller", []string{"delete", "services", "-n", "default"}, false},
		{"controller reads namespaces", "herald-controller", []string{"list", "namespaces"}, true},
		{"controller patches pool status", "herald-controller", []string{"patch", "ipaddresspools.herald.dev", "--subresource=status", "-n", "herald-system"}, true},
		{"controller patches advertisement conditions", "herald-controller", []string{"patch", "l2advertisements.herald.dev", "--subresource=status", "-n", "herald-system"}, true},
		{"controller patches peer conditions", "herald-controller", []string{"patch", "bgppeers.herald.dev", "--subresource=status", "-n", "herald-system"}, true},
		{"controller cannot update pools", "herald-controller", []string{"update", "ipaddresspools.herald.dev", "-n", "herald-system"}, false},
		{"controller cannot read pools elsewhere", "herald-controller", []string{"list", "ipaddresspools.herald.dev", "-n", "default"}, false},
		{"controller cannot write status elsewhere", "herald-controller", []string{"patch", "ipaddresspools.herald.dev", "--subresource=status", "-n", "default"}, false},
		{"controller creates events", "herald-controller", []string{"create", "events", "-n", "default"}, true},
		{"controller cannot read Secrets elsewhere", "herald-controller", []string{"get", "secrets", "-n", "default"}, false},
		{"controller cannot list Secrets cluster-wide", "herald-controller", []string{"list", "secrets", "-A"}, false},
		{"controller creates Secrets in herald-system", "herald-controller", []string{"create", "secrets", "-n", "herald-system"}, true},
		{"controller cannot create Secrets elsewhere", "herald-controller", []string{"create", "secrets", "-n", "default"}, false},
		{"controller updates the memberlist Secret", "herald-controller", []string{"update", "secrets/herald-memberlist", "-n", "herald-system"}, true},
		{"controller updates the webhook cert Secret", "herald-controller", []string{"update", "secrets/herald-webhook-cert", "-n", "herald-system"}, true},
		{"controller cannot update other Secrets", "herald-controller", []string{"update", "secrets/tor-password", "-n", "herald-system"}, false},
		{"controller cannot delete Secrets", "herald-controller", []string{"delete", "secrets/herald-memberlist", "-n", "herald-system"}, false},
		{"controller patches its webhook configuration", "herald-controller", []string{"patch", "validatingwebhookconfigurations/herald-validating-webhook"}, true},
		{"controller watches its webhook configuration", "herald-controller", []string{"watch", "validatingwebhookconfigurations/herald-validating-webhook"}, true},
		{"controller cannot patch other webhook configurations", "herald-controller", []string{"patch", "validatingwebhookconfigurations/other"}, false},
		{"controller cannot write speaker status", "herald-controller", []string{"create", "servicel2statuses.herald.dev", "-n", "herald-system"}, false},
		{"controller checks metrics clients", "herald-controller", []string{"create", "tokenreviews.authentication.k8s.io"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canI(t, tc.sa, tc.args...); got != tc.want {
				t.Errorf("can-i %s as %s = %v, want %v", strings.Join(tc.args, " "), tc.sa, got, tc.want)
			}
		})
	}
}
