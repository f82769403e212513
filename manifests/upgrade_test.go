package manifests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// copyDir copies the files of a folder tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// helmEnv is an API server of its own without CRDs, and helm pointed at it.
type helmEnv struct {
	t    *testing.T
	e    *testenv.Env
	home string
}

func newHelmEnv(t *testing.T) *helmEnv {
	t.Helper()
	testenv.Require(t, env)
	e, err := testenv.Start(testenv.Options{WithoutCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	return &helmEnv{t: t, e: e, home: t.TempDir()}
}

// helm runs helm against the environment; it returns the output and the error.
func (h *helmEnv) helm(args ...string) (string, error) {
	cmd := exec.Command(helm(h.t), append(args, "--kubeconfig", h.e.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"), "HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (h *helmEnv) mustHelm(args ...string) {
	h.t.Helper()
	if out, err := h.helm(args...); err != nil {
		h.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

const (
	olderPoolDescription = "description: an older description"
	poolDescription      = "description: IPAddressPool is a set of addresses"
)

// olderChart copies the chart and makes it an older one: without the ServiceL2Status CRD, and
// with another IPAddressPool schema. legacy puts the CRDs in crds/, as charts up to v0.1 did.
func olderChart(t *testing.T, legacy bool) string {
	t.Helper()
	old := filepath.Join(t.TempDir(), "herald")
	copyDir(t, chartDir(t), old)
	crds := filepath.Join(old, "files", "crds")
	if legacy {
		if err := os.Rename(crds, filepath.Join(old, "crds")); err != nil {
			t.Fatal(err)
		}
		crds = filepath.Join(old, "crds")
		if err := os.Remove(filepath.Join(old, "templates", "crds.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(crds, "herald.dev_servicel2statuses.yaml")); err != nil {
		t.Fatal(err)
	}
	poolCRD := filepath.Join(crds, "herald.dev_ipaddresspools.yaml")
	b, err := os.ReadFile(poolCRD)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), poolDescription) {
		t.Fatalf("%s does not describe IPAddressPool as %q: update the test", poolCRD, poolDescription)
	}
	if err := os.WriteFile(poolCRD, []byte(strings.Replace(string(b), poolDescription, olderPoolDescription, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return old
}

// checkUpgraded checks that the CRDs are this chart's: the one the older chart lacked exists, the
// one it had older is upgraded.
func (h *helmEnv) checkUpgraded() {
	h.t.Helper()
	if _, err := h.e.Kubectl("get", "crd", "servicel2statuses.herald.dev"); err != nil {
		h.t.Errorf("helm upgrade did not create the chart's new CRD: %v", err)
	}
	out, err := h.e.Kubectl("get", "crd", "ipaddresspools.herald.dev", "-o", "yaml")
	if err != nil || strings.Contains(out, olderPoolDescription) || !strings.Contains(out, poolDescription) {
		h.t.Errorf("helm upgrade did not upgrade the IPAddressPool CRD (%v):\n%s", err, out)
	}
}

// TestHelmUpgradeUpgradesCRDs installs an older chart with the real helm into an API server of
// its own, upgrades to this chart, and checks that the upgrade created the new CRD and changed the
// old one, as a chart's crds/ folder never would; then uninstalls and checks that the CRDs are
// kept (crds.keep) and the rest is gone.
func TestHelmUpgradeUpgradesCRDs(t *testing.T) {
	h := newHelmEnv(t)
	h.mustHelm("install", "herald", olderChart(t, false), "--namespace", "default")
	if out, err := h.e.Kubectl("get", "crd", "servicel2statuses.herald.dev"); err == nil {
		t.Fatalf("the older chart installed a CRD it does not have: %s", out)
	}
	if out, _ := h.e.Kubectl("get", "crd", "ipaddresspools.herald.dev", "-o", "yaml"); !strings.Contains(out, olderPoolDescription) {
		t.Fatalf("the older chart's IPAddressPool CRD is not installed:\n%s", out)
	}

	h.mustHelm("upgrade", "herald", chartDir(t), "--namespace", "default")
	h.checkUpgraded()

	h.mustHelm("uninstall", "herald", "--namespace", "default")
	for _, crd := range []string{"ipaddresspools.herald.dev", "servicel2statuses.herald.dev"} {
		if _, err := h.e.Kubectl("get", "crd", crd); err != nil {
			t.Errorf("helm uninstall deleted CRD %s (and with it every object of its kind): %v", crd, err)
		}
	}
	if out, err := h.e.Kubectl("get", "clusterrole", "herald-controller"); err == nil {
		t.Errorf("helm uninstall left the release's other objects: %s", out)
	}
}

// TestHelmUpgradeFromCRDsFolder follows the README's steps from a chart that installed the CRDs
// from its crds/ folder (v0.1): the upgrade refuses CRDs it does not own, the README's labels and
// annotations hand them to the release, and the upgrade then upgrades them.
func TestHelmUpgradeFromCRDsFolder(t *testing.T) {
	h := newHelmEnv(t)
	h.mustHelm("install", "herald", olderChart(t, true), "--namespace", "default")
	out, err := h.helm("upgrade", "herald", chartDir(t), "--namespace", "default")
	if err == nil || !strings.Contains(out, "invalid ownership metadata") {
		t.Fatalf("upgrading over CRDs the release does not own: %v\n%s\nwant helm to refuse them (the README says so)", err, out)
	}
	// The README's adoption steps.
	crds, err := h.e.Kubectl("get", "crd", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range strings.Fields(crds) {
		if !strings.HasSuffix(crd, ".herald.dev") {
			continue
		}
		if _, err := h.e.Kubectl("label", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.Kubectl("annotate", crd, "meta.helm.sh/release-name=herald", "meta.helm.sh/release-namespace=default", "--overwrite"); err != nil {
			t.Fatal(err)
		}
	}
	h.mustHelm("upgrade", "herald", chartDir(t), "--namespace", "default")
	h.checkUpgraded()
}
