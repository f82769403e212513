package manifests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-lb/herald/internal/testenv"
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

// TestHelmUpgradeUpgradesCRDs installs an older chart (one CRD missing, another with an older
// schema) with the real helm into an API server of its own, upgrades to this chart, and checks
// that the upgrade created the new CRD and changed the old one, as a chart's crds/ folder never
// would; then uninstalls and checks that the CRDs are kept (crds.keep).
func TestHelmUpgradeUpgradesCRDs(t *testing.T) {
	h := helm(t)
	testenv.Require(t, env)
	e, err := testenv.Start(testenv.Options{WithoutCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })

	old := filepath.Join(t.TempDir(), "herald")
	copyDir(t, chartDir(t), old)
	crds := filepath.Join(old, "files", "crds")
	if err := os.Remove(filepath.Join(crds, "herald.dev_servicel2statuses.yaml")); err != nil {
		t.Fatal(err)
	}
	const marker = "an older description"
	poolCRD := filepath.Join(crds, "herald.dev_ipaddresspools.yaml")
	b, err := os.ReadFile(poolCRD)
	if err != nil {
		t.Fatal(err)
	}
	newer := "description: IPAddressPool is a set of addresses"
	if !strings.Contains(string(b), newer) {
		t.Fatalf("%s does not describe IPAddressPool as %q: update the test", poolCRD, newer)
	}
	if err := os.WriteFile(poolCRD, []byte(strings.Replace(string(b), newer, "description: "+marker, 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	helmRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(h, append(args, "--kubeconfig", e.Kubeconfig)...)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
			"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kubectl := func(args ...string) (string, error) { return e.Kubectl(args...) }

	helmRun("install", "herald", old, "--namespace", "default")
	if out, err := kubectl("get", "crd", "servicel2statuses.herald.dev"); err == nil {
		t.Fatalf("the older chart installed a CRD it does not have: %s", out)
	}
	if out, _ := kubectl("get", "crd", "ipaddresspools.herald.dev", "-o", "yaml"); !strings.Contains(out, marker) {
		t.Fatalf("the older chart's IPAddressPool CRD is not installed:\n%s", out)
	}

	helmRun("upgrade", "herald", chartDir(t), "--namespace", "default")
	if _, err := kubectl("get", "crd", "servicel2statuses.herald.dev"); err != nil {
		t.Errorf("helm upgrade did not create the chart's new CRD: %v", err)
	}
	out, err := kubectl("get", "crd", "ipaddresspools.herald.dev", "-o", "yaml")
	if err != nil || strings.Contains(out, marker) || !strings.Contains(out, newer) {
		t.Errorf("helm upgrade did not upgrade the IPAddressPool CRD (%v):\n%s", err, out)
	}

	helmRun("uninstall", "herald", "--namespace", "default")
	for _, crd := range []string{"ipaddresspools.herald.dev", "servicel2statuses.herald.dev"} {
		if _, err := kubectl("get", "crd", crd); err != nil {
			t.Errorf("helm uninstall deleted CRD %s (and with it every object of its kind): %v", crd, err)
		}
	}
	if out, err := kubectl("get", "clusterrole", "herald-controller"); err == nil {
		t.Errorf("helm uninstall left the release's other objects: %s", out)
	}
}
