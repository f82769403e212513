// Package testenv starts a real kube-apiserver and etcd for integration tests (controller-runtime's
// envtest) with Herald's generated CRDs installed. The binaries come from the repository's own cache,
// which `make kube-assets` fills: kube-apiserver and kubectl built from the Go module proxy, and etcd
// from Debian's etcd-server package.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/api/v1beta1"
)

// KubeVersion is the kube-apiserver version the tests run against when KUBEBUILDER_ASSETS is not
// set (the Makefile's KUBE_VERSION; `make test` also runs the API server tests against
// KUBE_VERSION_LATEST).
const KubeVersion = "v1.33.13"

// VersionEnv names the environment variable with the kube-apiserver version the tests must run
// against (the Makefile sets it for each pass): Start fails when the API server reports another.
const VersionEnv = "HERALD_KUBE_VERSION"

// ServiceCIDRs are the API server's service ranges: one IPv4 and one IPv6, so dual-stack Services work.
const ServiceCIDRs = "10.0.0.0/24,fd00:10::/108"

// ErrNoAssets means the API server binaries are not installed.
var ErrNoAssets = errors.New("kube-apiserver/etcd/kubectl not found: run `make kube-assets` (or `make test`) first")

// Env is a running API server with the Herald CRDs installed.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file with cluster-admin rights, for processes and kubectl.
	Kubeconfig string
	// AssetsDir holds kube-apiserver, etcd and kubectl.
	AssetsDir string
	// ServerVersion is the version the API server reports (e.g. "v1.36.3").
	ServerVersion string

	env *envtest.Environment
	dir string
}

// Options change how the API server is started.
type Options struct {
	// ExtraFlags are added to kube-apiserver's command line ("name" -> value).
	ExtraFlags map[string]string
	// WithoutCRDs starts the API server without Herald's CRDs (for a test that installs them).
	WithoutCRDs bool
}

// RepoRoot finds the repository root from the working directory (the folder with go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// AssetsDir returns the folder with the API server binaries: $KUBEBUILDER_ASSETS, or the repository's cache.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, ".cache", "kube", KubeVersion)
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%w (missing %s)", ErrNoAssets, filepath.Join(dir, b))
		}
	}
	return dir, nil
}

// Scheme returns a scheme with the Kubernetes built-in types and Herald's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // static registration; cannot fail at run time
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start starts etcd and kube-apiserver, installs the CRDs and returns the environment.
func Start(opts Options) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-testenv-")
	if err != nil {
		return nil, err
	}
	scheme := Scheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "manifests", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	if opts.WithoutCRDs {
		env.CRDDirectoryPaths = nil
	}
	api := env.ControlPlane.GetAPIServer()
	args := api.Configure()
	args.Set("service-cluster-ip-range", ServiceCIDRs)
	for k, v := range opts.ExtraFlags {
		args.Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	e := &Env{Config: cfg, Scheme: scheme, AssetsDir: assets, env: env, dir: dir}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		_ = e.Stop()
		return nil, err
	}
	if e.ServerVersion, err = serverVersion(cfg); err != nil {
		_ = e.Stop()
		return nil, err
	}
	if err := checkVersion(e.ServerVersion, os.Getenv(VersionEnv), assets); err != nil {
		_ = e.Stop()
		return nil, err
	}
	user, err := env.AddUser(envtest.User{Name: "herald-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

// serverVersion asks the API server for its version.
func serverVersion(cfg *rest.Config) (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("asking kube-apiserver for its version: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", fmt.Errorf("asking kube-apiserver for its version: %w", err)
	}
	return v.GitVersion, nil
}

// checkVersion fails when want is set and the API server started from assets reports another version.
func checkVersion(got, want, assets string) error {
	if want == "" || got == want {
		return nil
	}
	return fmt.Errorf("kube-apiserver in %s reports version %q, but %s=%s: point KUBEBUILDER_ASSETS at .cache/kube/%s (make kube-assets KUBE_VERSION=%s)",
		assets, got, VersionEnv, want, want, want)
}

// Stop stops the API server and etcd and removes their files.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, os.RemoveAll(e.dir))
}

// Kubectl runs kubectl against the environment and returns its combined output.
func (e *Env) Kubectl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(e.AssetsDir, "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Main is for a package's TestMain: it starts the environment, runs the tests and stops it. Without
// the binaries the package's tests that need the API server are skipped (run `make test`).
func Main(m *testing.M, opts Options, env **Env) int {
	// controller-runtime prints a stack trace when a client is made before a logger is set; the
	// tests make clients directly, so its logs go nowhere unless a test sets its own.
	crlog.SetLogger(logr.Discard())
	e, err := Start(opts)
	if errors.Is(err, ErrNoAssets) {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return m.Run() // tests call Require and skip
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping:", err)
	}
	return code
}

// Require skips the test when no environment was started.
func Require(tb testing.TB, e *Env) {
	tb.Helper()
	if e == nil {
		if os.Getenv("HERALD_REQUIRE_APISERVER") != "" {
			tb.Fatalf("%v", ErrNoAssets)
		}
		tb.Skip(ErrNoAssets.Error())
	}
}

// NewNamespace creates a namespace with a unique name for one test.
func (e *Env) NewNamespace(tb testing.TB, prefix string) string {
	tb.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = prefix + "-"
	if err := e.Client.Create(tb.Context(), ns); err != nil {
		tb.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}
