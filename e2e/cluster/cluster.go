// Package cluster is the cluster mode of Herald's lab: a real Kubernetes cluster on one machine,
// without Docker, on the network of e2e/topology.clab.yaml (built by package e2e/lab).
//
// The control plane runs on the host (root network namespace): etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, reachable from the nodes at the host's lab address.
// Each topology node with role "node" becomes a Kubernetes node: inside its network namespace,
// in mount, UTS and PID namespaces of its own, a containerd, a kubelet and a kube-proxy
// (nftables mode by default, iptables selectable). Pods get routed veths from the CNI `ptp`
// plugin with host-local addresses in both families (the host end is in no bridge, as with
// Calico or Cilium); each node routes the other nodes' pod ranges over the segment. No image comes
// from a registry: the pause image, the backend image (e2e/cmd/labbackend) and Herald's image
// (hack/mkimage, as `make image`) are built as OCI tarballs and imported into every node's
// containerd. Herald itself is installed the way users install it: `kubectl apply --server-side -k
// manifests/` or `helm install` of manifests/helm/herald.
//
// Everything a run makes lives in its run folder (e2e/.run/<pid>/, as for the process lab), in
// namespaces named hrld-<pid>-<node>, in cgroups named hrld-<pid>-<node> under every cgroup v1
// hierarchy, and in /dev/shm/hrld-<pid>-etcd. Close removes all of it; Start first removes what
// dead runs left behind. Cluster runs and process-lab runs take the same machine-wide lock.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// Install says how Start installs Herald.
type Install string

// Ways to install Herald.
const (
	// InstallKustomize runs `kubectl apply --server-side -k manifests/`.
	InstallKustomize Install = "kustomize"
	// InstallHelm runs `helm install` of manifests/helm/herald.
	InstallHelm Install = "helm"
	// InstallNone leaves Herald out (the cluster alone).
	InstallNone Install = "none"
)

// Options configure Start.
type Options struct {
	// RepoRoot is the repository (default: found from the working directory).
	RepoRoot string
	// Topology is the topology file (default: <RepoRoot>/e2e/topology.clab.yaml).
	Topology string
	// Log receives progress messages (default: discarded).
	Log *slog.Logger
	// ProxyMode is kube-proxy's mode (default nftables).
	ProxyMode ProxyMode
	// Install is how Herald is installed (default kustomize).
	Install Install
	// Helm is the helm binary for InstallHelm (default <RepoRoot>/bin/helm-<version>).
	Helm string
	// NoConfig skips creating Herald's lab configuration (pools, advertisements, peers).
	NoConfig bool
}

// Cluster is a running cluster lab. The embedded lab gives the network, the router, the clients
// and the lab's helpers (L2Owners, WaitIngress, ARPReplies, WaitCurl, ...), whose Client and
// Clientset are the cluster's administrator.
type Cluster struct {
	*lab.Lab
	// Dir is the cluster's part of the run folder.
	Dir string
	// Assets holds the Kubernetes binaries.
	Assets string
	// AdminKubeconfig has cluster-admin rights (group system:masters); tests use it to drive the
	// cluster, never to run Herald.
	AdminKubeconfig string
	// Nodes are the Kubernetes nodes, sorted by name.
	Nodes []*Node
	// Timings of the bring-up phases.
	Timings []Timing

	opts    Options
	log     *slog.Logger
	pki     *pki
	cp      *controlPlane
	images  []string // image tarballs imported into every node
	mu      sync.Mutex
	closed  bool
	cgroups []string // cgroup names made by this run
	// scrapeToken is MetricsScraper's token (metricsToken).
	scrapeMu    sync.Mutex
	scrapeToken string
}

// Timing is how long one phase of the bring-up took.
type Timing struct {
	Phase    string
	Duration time.Duration
}

func (t Timing) String() string {
	return fmt.Sprintf("%s %v", t.Phase, t.Duration.Round(time.Millisecond))
}

// BringUp is how long Start took, without waiting for the machine lock.
func (c *Cluster) BringUp() time.Duration {
	var d time.Duration
	for _, t := range c.Timings {
		if t.Phase != lockPhase {
			d += t.Duration
		}
	}
	return d
}

const lockPhase = "wait for the machine lock"

// APIServer is where the nodes and the host reach kube-apiserver.
func (c *Cluster) APIServer() netip.AddrPort { return c.Plan.APIServerAddr }

// Start brings the cluster up: the lab network and router, the control plane, the nodes with
// the images imported, and (unless Install is InstallNone) Herald with its lab configuration.
// On error everything already made is removed.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = testenv.RepoRoot(); err != nil {
			return nil, fmt.Errorf("finding the repository: %w", err)
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ProxyMode == "" {
		opts.ProxyMode = ProxyNFTables
	}
	if opts.Install == "" {
		opts.Install = InstallKustomize
	}
	assets, err := AssetsDir(opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Assets: assets, opts: opts, log: opts.Log}
	phase := func(name string, f func() error) error {
		start := time.Now()
		c.log.Info("cluster: " + name)
		if err := f(); err != nil {
			return err
		}
		c.Timings = append(c.Timings, Timing{Phase: name, Duration: time.Since(start)})
		return nil
	}
	// The lab takes the machine lock, removes what dead runs left (their namespaces, processes
	// and run folders) and builds the network and the router.
	netStart := time.Now()
	c.log.Info("cluster: network")
	if c.Lab, err = lab.Start(ctx, lab.Options{RepoRoot: opts.RepoRoot, Topology: opts.Topology, Log: opts.Log, NetworkOnly: true}); err != nil {
		return nil, err
	}
	c.Timings = append(c.Timings, Timing{Phase: lockPhase, Duration: c.LockWait},
		Timing{Phase: "network", Duration: time.Since(netStart) - c.LockWait})
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if err := RemoveStale(); err != nil {
		return nil, fmt.Errorf("cleaning up after an earlier run: %w", err)
	}
	c.Dir = filepath.Join(c.RunDir, "cluster")
	if err := c.planNodes(); err != nil {
		return nil, err
	}
	if err := phase("images", func() error { return c.buildImages(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("pod routes", func() error { return c.setupRoutes(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("control plane", func() error { return c.startControlPlane(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("nodes", func() error { return c.startNodes(ctx) }); err != nil {
		return nil, err
	}
	if opts.Install != InstallNone {
		if err := phase("herald", func() error { return c.InstallHerald(ctx, opts.Install) }); err != nil {
			return nil, err
		}
		if !opts.NoConfig {
			if err := phase("herald config", func() error { return c.ApplyConfig(ctx) }); err != nil {
				return nil, err
			}
		}
	}
	c.log.Info("cluster is up", "runDir", c.RunDir, "kubeconfig", c.AdminKubeconfig, "timings", c.Timings)
	return c, nil
}

// Available reports whether this machine can run the cluster: root, the network tools, and the
// Debian packages containerd, runc, containernetworking-plugins and conntrack.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the cluster lab needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	var missing []string
	for _, b := range []string{"ip", "nsenter", "unshare", "bash", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "conntrack", "nft", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range []string{"ptp", "host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			missing = append(missing, "/usr/lib/cni/"+p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (run `make deps`: Debian packages containerd, runc, containernetworking-plugins, conntrack, iptables, nftables)", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// ErrUnavailable means this machine cannot run the cluster lab.
var ErrUnavailable = errors.New("cluster lab unavailable")

// ErrNoAssets means the Kubernetes binaries are not built.
var ErrNoAssets = errors.New("kubernetes binaries missing: run `make cluster-assets` (or `make test`)")

// Binaries the cluster needs in the assets folder.
var Binaries = []string{"kube-apiserver", "kubectl", "etcd", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}

// AssetsDir returns the folder with the Kubernetes binaries ($KUBEBUILDER_ASSETS or
// <repo>/.cache/kube/<version>) after checking that every one of Binaries is there.
func AssetsDir(repo string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(repo, ".cache", "kube", testenv.KubeVersion)
	}
	var missing []string
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s not in %s", ErrNoAssets, strings.Join(missing, ", "), dir)
	}
	return dir, nil
}

// Close removes the cluster: the nodes (every process, container, mount and cgroup of them), the
// control plane, then the network and the run folder. It may be called more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.stop(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, n := range c.Nodes {
		if err := removeCgroup(n.Cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	if c.cp != nil {
		if err := c.cp.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Lab != nil {
		if err := c.Lab.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Kubectl runs kubectl with the administrator's kubeconfig and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlAs(ctx, c.AdminKubeconfig, args...)
}

// KubectlAs runs kubectl with the given kubeconfig.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Assets, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// KubectlPath is the kubectl binary.
func (c *Cluster) KubectlPath() string { return filepath.Join(c.Assets, "kubectl") }

// setClients points the lab's clients at the cluster with the administrator's credentials.
func (c *Cluster) setClients() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.AdminKubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	// Certificates in memory: with file names, client-go watches the files and logs an error every
	// few seconds once Close has removed the run folder.
	if err := rest.LoadTLSFiles(cfg); err != nil {
		return fmt.Errorf("reading the certificates of %s: %w", c.AdminKubeconfig, err)
	}
	cfg.CertFile, cfg.KeyFile, cfg.CAFile = "", "", ""
	cl, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a clientset: %w", err)
	}
	c.Client, c.Clientset = cl, cs
	c.Kubeconfig = c.AdminKubeconfig
	return nil
}
