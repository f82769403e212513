// Package lab brings up Herald's end-to-end lab on one machine, without Docker: the topology of
// e2e/topology.clab.yaml (containerlab's format) built from network namespaces, veth pairs and a
// bridge (internal/testing/netlab); an FRR router (internal/testing/frr); a real etcd and kube-apiserver
// (internal/testing/testenv) reachable from inside the lab; Node objects for the node namespaces;
// herald-controller and one herald-speaker per node as real processes; a backend in each node
// answering with the node's name; and nftables DNAT rules in each node that play kube-proxy's
// part, kept in sync with the Services.
//
// Everything a run makes lives in a run folder e2e/.run/<pid>/ (binaries, logs, kubeconfigs,
// the API server's and router's temporary files) and in namespaces named hrld-<pid>-<node>.
// Close removes all of it; Start first removes what dead runs left behind (RemoveStale).
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/internal/testing/frr"
	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// Options configure Start.
type Options struct {
	// RepoRoot is the repository (default: found from the working directory).
	RepoRoot string
	// Topology is the topology file (default: <RepoRoot>/e2e/topology.clab.yaml).
	Topology string
	// Plan adds the Kubernetes side; DefaultPlan when zero.
	Plan *Plan
	// Log receives progress messages (default: discarded).
	Log *slog.Logger
	// LogLevel is passed to the Herald binaries' --log-level ("debug" when empty).
	LogLevel string
	// NoHerald starts the lab without herald-controller and the speakers (for tests of the lab
	// itself and for people who run them by hand).
	NoHerald bool
	// NetworkOnly starts only the network: namespaces, links, the nodes' exec lines and FRR, and
	// fills Nodes without creating Node objects. No binaries are built and no API server,
	// backends, DNAT rules or Herald processes start. It is for runners that bring their own
	// Kubernetes (e2e/cluster); Client and Clientset are theirs to set.
	NetworkOnly bool
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	Topo *Topology
	Plan Plan
	// RunDir holds everything this run wrote.
	RunDir string
	// LockWait is how long Start waited for another lab on the machine to end.
	LockWait time.Duration
	// Router is FRR in the router node.
	Router *frr.Router
	// Env is the API server; Env.Client talks to it over loopback.
	Env *testenv.Env
	// Client and Clientset talk to the API server.
	Client    client.Client
	Clientset kubernetes.Interface
	// Kubeconfig reaches the API server from the root namespace (127.0.0.1); LabKubeconfig from
	// inside the lab's namespaces (the control leg address).
	Kubeconfig, LabKubeconfig string
	// Nodes are the Kubernetes nodes (topology nodes with role "node"), sorted by name.
	Nodes []NodeInfo

	opts     Options
	log      *slog.Logger
	binDir   string
	net      *netlab.Lab
	ns       map[string]string // topology node -> namespace ("" for the host)
	hostIfs  []string          // interfaces made in the root namespace
	proxy    net.Listener
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	lock     *os.File
	oldTMP   string
	hadTMP   bool
	closeMu  sync.Mutex
	closed   bool
	mu       sync.Mutex
	procs    map[string]*Proc
	dnatLast map[string]string // node -> last applied nft script

	apiServerBackend string   // host:port the lab's listener relays to (kube-apiserver on loopback)
	apiServerCmd     []string // kube-apiserver's command line, kept by StopAPIServer
	apiStopped       bool     // between StopAPIServer and StartAPIServer (under mu)
	// cpuLimits are the speakers' CPU limits in millicores (LimitSpeakerCPU).
	cpuLimits map[string]int
}

// ErrHeraldExited is wrapped by errors caused by a Herald process that ended on its own.
var ErrHeraldExited = errors.New("herald process exited")

// Start builds the binaries, brings up the network, the router and the API server, creates the
// Node objects, and starts the backends, the DNAT sync and (unless NoHerald) the Herald
// processes. It does not create Herald's configuration: call ApplyConfig. On error everything
// already made is removed.
func Start(ctx context.Context, opts Options) (_ *Lab, err error) {
	var l *Lab
	if err := netlab.Available(); err != nil {
		return nil, err
	}
	if err := frr.Available(); err != nil {
		return nil, err
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = testenv.RepoRoot(); err != nil {
			return nil, fmt.Errorf("finding the repository: %w", err)
		}
	}
	if opts.Topology == "" {
		opts.Topology = filepath.Join(opts.RepoRoot, "e2e", "topology.clab.yaml")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "debug"
	}
	plan := DefaultPlan()
	if opts.Plan != nil {
		plan = *opts.Plan
	}
	if _, err := testenv.AssetsDir(); err != nil && !opts.NetworkOnly {
		return nil, err
	}
	runRoot := RunRoot(opts.RepoRoot)
	lockStart := time.Now()
	lock, err := lockRuns(ctx, runRoot, opts.Log)
	if err != nil {
		return nil, err
	}
	lockWait := time.Since(lockStart)
	defer func() {
		if err != nil {
			_ = lock.Close()
		}
	}()
	if err := RemoveStale(runRoot); err != nil {
		return nil, fmt.Errorf("cleaning up after an earlier run: %w", err)
	}
	topo, err := LoadTopology(opts.Topology)
	if err != nil {
		return nil, err
	}
	if err := removeHostIfaces(topo.HostIfaces(), 30*time.Second); err != nil {
		return nil, fmt.Errorf("removing what an earlier lab left in the root namespace: %w", err)
	}
	routes, err := ReadHostRoutes()
	if err != nil {
		return nil, err
	}
	if err := CheckOverlap(append(topo.Subnets(), plan.Routed...), routes); err != nil {
		return nil, fmt.Errorf("refusing to start the lab (run `ip route` to see the host's routes): %w", err)
	}

	l = &Lab{
		Topo: topo, Plan: plan, opts: opts, log: opts.Log,
		RunDir: filepath.Join(runRoot, strconv.Itoa(os.Getpid())), lock: lock, LockWait: lockWait,
		ns: map[string]string{}, procs: map[string]*Proc{}, dnatLast: map[string]string{}, cpuLimits: map[string]int{},
	}
	l.binDir = filepath.Join(l.RunDir, "bin")
	if err := os.MkdirAll(filepath.Join(l.RunDir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("creating the run folder: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close()) // l, not the nil result
		}
	}()
	// envtest and the FRR helper make their temporary folders under TMPDIR: point it into the run
	// folder so that a crashed run's files are found and removed with it.
	l.oldTMP, l.hadTMP = os.LookupEnv("TMPDIR")
	if err := os.Setenv("TMPDIR", filepath.Join(l.RunDir, "tmp")); err != nil {
		return nil, fmt.Errorf("setting TMPDIR: %w", err)
	}
	if !opts.NetworkOnly {
		if err := l.build(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.startNetwork(ctx); err != nil {
		return nil, err
	}
	if opts.NetworkOnly {
		if err := l.listNodes(); err != nil {
			return nil, err
		}
		l.log.Info("lab network is up", "runDir", l.RunDir)
		return l, nil
	}
	if err := l.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := l.createNodes(ctx); err != nil {
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	if err := l.startBackends(); err != nil {
		return nil, err
	}
	if err := l.startDNATSync(bgCtx); err != nil {
		return nil, err
	}
	if !opts.NoHerald {
		// The speakers' memberlist key, made with the helper the controller uses for it, so speakers
		// never wait for it (they refuse to start without it after --memberlist-secret-wait).
		if err := memberlistkey.EnsureSecret(ctx, crclient.Client(l.Client), HeraldNamespace, MemberlistSecret); err != nil {
			return nil, fmt.Errorf("creating the memberlist key: %w", err)
		}
		if err := l.StartController(); err != nil {
			return nil, err
		}
		for _, n := range l.Nodes {
			if err := l.StartSpeaker(n.Name); err != nil {
				return nil, err
			}
		}
	}
	l.log.Info("lab is up", "runDir", l.RunDir, "kubeconfig", l.Kubeconfig)
	return l, nil
}

// RunRoot is the folder holding every run's folder: <repo>/e2e/.run.
func RunRoot(repo string) string { return filepath.Join(repo, "e2e", ".run") }

// build compiles the Herald binaries and the lab backend into the run folder, so a test never
// runs stale binaries.
func (l *Lab) build(ctx context.Context) error {
	for _, b := range []struct{ out, pkg string }{
		{"herald-controller", "./controller"},
		{"herald-speaker", "./speaker"},
		{"labbackend", "./e2e/cmd/labbackend"},
	} {
		if l.opts.NoHerald && strings.HasPrefix(b.out, "herald-") {
			continue
		}
		l.log.Info("building", "binary", b.out)
		if err := l.goBuild(ctx, b.out, b.pkg); err != nil {
			return err
		}
	}
	return nil
}

// goBuild builds the Go package pkg (relative to the repository root), statically, into the run
// folder's binary out.
func (l *Lab) goBuild(ctx context.Context, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(l.binDir, out), pkg)
	cmd.Dir = l.opts.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w: %s", pkg, err, b)
	}
	return nil
}

// NS is the network namespace of a topology node ("" for the host).
func (l *Lab) NS(node string) string { return l.ns[node] }

// startNetwork makes one namespace per linux and bridge node, the links, runs every node's exec
// lines and starts FRR in the router.
func (l *Lab) startNetwork(ctx context.Context) error {
	var err error
	if l.net, err = netlab.New(); err != nil {
		return fmt.Errorf("starting the network: %w", err)
	}
	names := slices.Sorted(maps.Keys(l.Topo.Nodes))
	for _, name := range names {
		n := l.Topo.Nodes[name]
		switch n.Kind {
		case KindHost:
			l.ns[name] = ""
		case KindLinux, KindBridge:
			ns, err := l.net.AddNS(name)
			if err != nil {
				return err
			}
			l.ns[name] = ns
			if n.Kind == KindBridge {
				if err := l.net.Bridge(ns, name); err != nil {
					return fmt.Errorf("creating bridge %s: %w", name, err)
				}
			}
		}
	}
	for _, link := range l.Topo.Links {
		if err := l.addLink(link); err != nil {
			return fmt.Errorf("creating link %s-%s: %w", link.A, link.B, err)
		}
	}
	for _, name := range names {
		for _, words := range l.Topo.Nodes[name].Exec {
			if _, err := l.Exec(ctx, name, words...); err != nil {
				return fmt.Errorf("node %s exec: %w", name, err)
			}
		}
	}
	routers := l.Topo.NodesWithRole(RoleRouter)
	if len(routers) != 1 {
		return fmt.Errorf("%w: want exactly one node labelled %s=%s, have %v", ErrTopology, RoleLabel, RoleRouter, routers)
	}
	rt := routers[0]
	rid, ok := l.Topo.Addr(rt, l.Plan.SegmentIface, true)
	if !ok {
		return fmt.Errorf("%w: router %s has no IPv4 address on %s", ErrTopology, rt, l.Plan.SegmentIface)
	}
	var segment []netip.Prefix
	for _, a := range l.Topo.Nodes[rt].Addrs {
		if a.Iface == l.Plan.SegmentIface {
			segment = append(segment, a.Prefix.Masked())
		}
	}
	l.log.Info("starting FRR", "node", rt)
	if l.Router, err = frr.Start(ctx, l.ns[rt], l.Plan.RouterConfig(rid.Addr(), segment)); err != nil {
		return fmt.Errorf("starting FRR in %s: %w", rt, err)
	}
	return nil
}

func (l *Lab) addLink(link Link) error {
	a, b := link.A, link.B
	// The bridge end (or else the host end) goes second: netlab.Veth enslaves its b side.
	if l.Topo.Nodes[a.Node].Kind == KindBridge || (l.Topo.Nodes[a.Node].Kind == KindHost && l.Topo.Nodes[b.Node].Kind != KindBridge) {
		a, b = b, a
	}
	bridge := ""
	if l.Topo.Nodes[b.Node].Kind == KindBridge {
		bridge = b.Node
	}
	switch {
	case l.Topo.Nodes[a.Node].Kind == KindHost:
		// netlab works between namespaces; the host end is made here in the root namespace.
		if _, err := run("ip", "link", "add", a.Iface, "type", "veth", "peer", "name", b.Iface, "netns", l.ns[b.Node]); err != nil {
			return err
		}
		l.hostIfs = append(l.hostIfs, a.Iface)
		if _, err := run("ip", "link", "set", a.Iface, "up"); err != nil {
			return err
		}
		if bridge != "" {
			if _, err := l.net.Exec(l.ns[b.Node], "ip", "link", "set", b.Iface, "master", bridge); err != nil {
				return err
			}
		}
		_, err := l.net.Exec(l.ns[b.Node], "ip", "link", "set", b.Iface, "up")
		return err
	case l.Topo.Nodes[b.Node].Kind == KindHost:
		return errors.New("links from the host must go to a bridge or a linux node")
	default:
		return l.net.Veth(l.ns[a.Node], a.Iface, l.ns[b.Node], b.Iface, bridge)
	}
}

// Exec runs a command in a node's namespace (the root namespace for the host) and returns its
// combined output.
func (l *Lab) Exec(ctx context.Context, node string, args ...string) (string, error) {
	ns, ok := l.ns[node]
	if !ok {
		return "", fmt.Errorf("no lab node %q", node)
	}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	return runCtx(ctx, args...)
}

// startAPIServer starts etcd and kube-apiserver on loopback, and a TCP relay on the plan's API
// address (the host's leg into the lab) so the lab's namespaces reach it. The serving certificate
// envtest makes covers "localhost" only, so the lab kubeconfig names that as the TLS server name.
func (l *Lab) startAPIServer(ctx context.Context) error {
	l.log.Info("starting etcd and kube-apiserver")
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		return err
	}
	l.Env, l.Client = env, env.Client
	if l.Clientset, err = kubernetes.NewForConfig(env.Config); err != nil {
		return fmt.Errorf("creating a clientset: %w", err)
	}
	u, err := url.Parse(env.Config.Host)
	if err != nil || u.Host == "" {
		u = &url.URL{Host: env.Config.Host}
	}
	backend := u.Host
	l.apiServerBackend = backend
	if l.proxy, err = net.Listen("tcp", l.Plan.APIServerAddr.String()); err != nil {
		return fmt.Errorf("listening for the lab on %s: %w", l.Plan.APIServerAddr, err)
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		relay(l.proxy, backend)
	}()
	l.Kubeconfig = filepath.Join(l.RunDir, "kubeconfig")
	l.LabKubeconfig = filepath.Join(l.RunDir, "kubeconfig-lab")
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	if err := clientcmd.WriteToFile(*kc, l.Kubeconfig); err != nil {
		return fmt.Errorf("writing %s: %w", l.Kubeconfig, err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + l.Plan.APIServerAddr.String()
		c.TLSServerName = "localhost"
	}
	if err := clientcmd.WriteToFile(*kc, l.LabKubeconfig); err != nil {
		return fmt.Errorf("writing %s: %w", l.LabKubeconfig, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: HeraldNamespace}}
	if err := l.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", HeraldNamespace, err)
	}
	return nil
}

// relay copies TCP connections from ln to backend until ln is closed.
func relay(ln net.Listener, backend string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			b, err := net.DialTimeout("tcp", backend, 5*time.Second)
			if err != nil {
				return
			}
			defer b.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
			<-done
		}()
	}
}

// Kubectl runs the built kubectl with the lab's kubeconfig.
func (l *Lab) Kubectl(ctx context.Context, args ...string) (string, error) {
	return runCtx(ctx, append([]string{filepath.Join(l.Env.AssetsDir, "kubectl"), "--kubeconfig", l.Kubeconfig}, args...)...)
}

// KubectlPath is the kubectl binary the lab uses.
func (l *Lab) KubectlPath() string { return filepath.Join(l.Env.AssetsDir, "kubectl") }

// listNodes fills l.Nodes from the topology: every node with role "node" and its segment addresses.
func (l *Lab) listNodes() error {
	for _, name := range l.Topo.NodesWithRole(RoleNode) {
		ni := NodeInfo{Name: name}
		if p, ok := l.Topo.Addr(name, l.Plan.SegmentIface, true); ok {
			ni.V4 = p.Addr()
		}
		if p, ok := l.Topo.Addr(name, l.Plan.SegmentIface, false); ok {
			ni.V6 = p.Addr()
		}
		l.Nodes = append(l.Nodes, ni)
	}
	if len(l.Nodes) == 0 {
		return fmt.Errorf("%w: no node labelled %s=%s", ErrTopology, RoleLabel, RoleNode)
	}
	return nil
}

// createNodes creates a Node for every topology node with role "node", Ready, with its segment
// addresses as InternalIPs.
func (l *Lab) createNodes(ctx context.Context) error {
	if err := l.listNodes(); err != nil {
		return err
	}
	for _, ni := range l.Nodes {
		name := ni.Name
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
		}}}
		if err := l.Client.Create(ctx, node); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
		now := metav1.Now()
		node.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "lab node", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated", LastHeartbeatTime: now, LastTransitionTime: now},
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}}
		for _, a := range []netip.Addr{ni.V4, ni.V6} {
			if a.IsValid() {
				node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.String()})
			}
		}
		if err := l.Client.Status().Update(ctx, node); err != nil {
			return fmt.Errorf("setting the status of node %s: %w", name, err)
		}
	}
	return nil
}

// Node returns the lab node called name.
func (l *Lab) Node(name string) (NodeInfo, bool) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeInfo{}, false
}

// Proc returns a process by name ("controller", "speaker-n1", "backend-n1"), or nil.
func (l *Lab) Proc(name string) *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[name]
}

func (l *Lab) addProc(p *Proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs[p.Name] = p
}

// StartController starts herald-controller in the root namespace, talking to the API server through
// the lab address like the speakers do.
func (l *Lab) StartController() error {
	args := []string{filepath.Join(l.binDir, "herald-controller"),
		"--kubeconfig", l.LabKubeconfig,
		"--namespace", HeraldNamespace,
		"--metrics-addr", "127.0.0.1:0",
		"--health-addr", "127.0.0.1:0",
		"--enable-webhook=false",
		"--log-level", l.opts.LogLevel,
	}
	p, err := startProc("controller", filepath.Join(l.RunDir, "controller.log"), RootCommand(args...))
	if err != nil {
		return err
	}
	l.addProc(p)
	return nil
}

// SpeakerArgs is the command line of node's speaker.
func (l *Lab) SpeakerArgs(node NodeInfo) []string {
	host := node.V4
	if !host.IsValid() {
		host = node.V6
	}
	return []string{filepath.Join(l.binDir, "herald-speaker"),
		"--kubeconfig", l.LabKubeconfig,
		"--node-name", node.Name,
		"--host-ip", host.String(),
		"--namespace", HeraldNamespace,
		"--memberlist-port", "7946",
		"--metrics-addr", net.JoinHostPort(host.String(), "7472"),
		"--metrics-secure=false", // scraped over plain HTTP by the tests
		"--health-addr", net.JoinHostPort(host.String(), "7473"),
		"--log-level", l.opts.LogLevel,
	}
}

// StartSpeaker starts (or restarts, after KillSpeaker) the speaker of a node in its namespace, in
// its CPU-limit cgroup when LimitSpeakerCPU set one.
func (l *Lab) StartSpeaker(node string) error {
	n, ok := l.Node(node)
	if !ok {
		return fmt.Errorf("no lab node %q", node)
	}
	name := "speaker-" + node
	if old := l.Proc(name); old != nil {
		if done, _ := old.Exited(); !done {
			return fmt.Errorf("speaker of %s is still running (pid %d)", node, old.PID())
		}
	}
	cg := l.speakerCgroup(node)
	p, err := startProc(name, filepath.Join(l.RunDir, name+".log"), func(out *os.File) (*exec.Cmd, error) {
		if cg != "" {
			return startInCgroup(l.ns[node], cg, out, l.SpeakerArgs(n)...)
		}
		return l.net.Start(l.ns[node], out, out, l.SpeakerArgs(n)...)
	})
	if err != nil {
		return err
	}
	l.addProc(p)
	return nil
}

// StopSpeaker sends sig (SIGKILL: kill -9; SIGTERM: a graceful stop) to a node's speaker and waits
// until it has ended.
func (l *Lab) StopSpeaker(node string, sig syscall.Signal) error {
	p := l.Proc("speaker-" + node)
	if p == nil {
		return fmt.Errorf("no speaker on %s", node)
	}
	p.Stop(sig, 30*time.Second)
	return nil
}

// RestartController stops the controller with SIGTERM and starts it again.
func (l *Lab) RestartController() error {
	if p := l.Proc("controller"); p != nil {
		p.Stop(syscall.SIGTERM, 15*time.Second)
	}
	return l.StartController()
}

// CheckHerald returns an error naming every Herald process that ended without being asked to,
// with the end of its log.
func (l *Lab) CheckHerald() error {
	l.mu.Lock()
	procs := make([]*Proc, 0, len(l.procs))
	for _, p := range l.procs {
		procs = append(procs, p)
	}
	l.mu.Unlock()
	var errs []error
	for _, p := range procs {
		if done, why := p.Exited(); done && !p.Stopped() {
			errs = append(errs, fmt.Errorf("%w: %s ended (%w); last lines of %s:\n%s", ErrHeraldExited, p.Name, why, p.LogPath, p.Tail(15)))
		}
	}
	return errors.Join(errs...)
}

// withHerald adds to err what went wrong with the Herald processes, if anything.
func (l *Lab) withHerald(err error) error {
	if herr := l.CheckHerald(); herr != nil {
		return fmt.Errorf("%w\n%w", err, herr)
	}
	return err
}

// LogTails returns the last n lines of the Herald processes' logs, for a failed test's output (the
// backends' logs stay in the run folder).
func (l *Lab) LogTails(n int) string {
	l.mu.Lock()
	names := slices.Sorted(maps.Keys(l.procs))
	l.mu.Unlock()
	var b strings.Builder
	for _, name := range names {
		if strings.HasPrefix(name, "backend-") {
			continue
		}
		p := l.Proc(name)
		fmt.Fprintf(&b, "==== %s (%s)\n%s\n", name, p.LogPath, p.Tail(n))
	}
	return b.String()
}

// Close stops every process, the router and the API server, removes the namespaces, the host's
// interfaces and the run folder. It may be called more than once.
func (l *Lab) Close() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	if l.cancel != nil {
		l.cancel()
	}
	l.mu.Lock()
	procs := make([]*Proc, 0, len(l.procs))
	for _, p := range l.procs {
		procs = append(procs, p)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(syscall.SIGTERM, 3*time.Second)
		}()
	}
	wg.Wait()
	if err := l.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if l.proxy != nil {
		_ = l.proxy.Close()
	}
	if l.Router != nil {
		if err := l.Router.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stopping FRR: %w", err))
		}
	}
	if l.Env != nil {
		if err := l.Env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the API server: %w", err))
		}
	}
	if l.net != nil {
		if err := l.net.Close(); err != nil {
			errs = append(errs, fmt.Errorf("removing namespaces: %w", err))
		}
	}
	// Normally gone with its peer's namespace, but only once the kernel has cleaned that up: wait
	// for it, so that the next lab does not find this one's routes.
	if err := removeHostIfaces(l.hostIfs, 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	l.bg.Wait()
	if l.hadTMP {
		_ = os.Setenv("TMPDIR", l.oldTMP)
	} else {
		_ = os.Unsetenv("TMPDIR")
	}
	if l.RunDir != "" {
		killReferring(l.RunDir)
		if err := os.RemoveAll(l.RunDir); err != nil {
			errs = append(errs, fmt.Errorf("removing the run folder: %w", err))
		}
	}
	if l.lock != nil {
		_ = l.lock.Close() // releases the lock
	}
	return errors.Join(errs...)
}

func run(args ...string) (string, error) { return runCtx(context.Background(), args...) }

func runCtx(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
