// Command herald-speaker announces the external IPs of Services of type LoadBalancer from this node,
// over layer 2 (ARP/NDP) or BGP. main only parses flags into a typed configuration and wires the
// packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/logging"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/speaker/agent"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/members"
)

// defaultHealthPort serves /healthz and /readyz on the node's address only: kubelet probes a
// host-network Pod at its Pod IP, which is the node's --host-ip ($POD_IP).
const defaultHealthPort = 7475

type options struct {
	kubeconfig       string
	nodeName         string
	podName          string
	hostIP           netip.Addr
	namespace        string
	lbClass          string
	memberlistBind   netip.Addr
	memberlistPort   int
	memberlistSecret string
	secretWait       time.Duration
	allowUnencrypted bool
	metricsAddr      string
	metricsSecure    bool
	healthAddr       string
	pprofAddr        string
	logOpts          logging.Options
	kubeQPS          float64
	kubeBurst        int
	l2Refresh        time.Duration
	l2Conflicts      bool
	resync           time.Duration
	gcPercent        int
	timers           members.Timers
	// speakers sizes the memberlist timers (members.TimersFor); 0: the Nodes counted at start.
	speakers int
	// scaleTimers: the probe interval and timeout were not given, they follow the cluster size.
	scaleTimers bool
	// bgpListenPort is bgp.Config.ListenPort.
	bgpListenPort int
}

func parseFlags(args []string) (options, error) {
	o := options{timers: members.DefaultTimers(), logOpts: logging.DefaultOptions()}
	fs := flag.NewFlagSet("herald-speaker", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of the Node this speaker runs on (default $NODE_NAME)")
	fs.StringVar(&o.podName, "pod-name", os.Getenv("POD_NAME"), "name of this speaker's Pod in --namespace (default $POD_NAME); on SIGTERM the speaker reads it and its DaemonSet to tell a rolling update (BGP routes kept through graceful restart) from the node going away (routes withdrawn first); empty: always withdraw")
	fs.TextVar(&o.hostIP, "host-ip", netip.Addr{}, "this node's IP, for memberlist and BGP (default $POD_IP, else the Node's InternalIP)")
	fs.StringVar(&o.namespace, "namespace", "herald-system", "namespace of Herald's configuration and status objects")
	fs.StringVar(&o.lbClass, "lb-class", "", "announce only Services of this spec.loadBalancerClass; empty: Services without a class")
	fs.TextVar(&o.memberlistBind, "memberlist-bind", netip.Addr{}, "address memberlist listens on (default: --host-ip)")
	fs.IntVar(&o.memberlistPort, "memberlist-port", members.DefaultPort, "memberlist TCP and UDP port")
	fs.StringVar(&o.memberlistSecret, "memberlist-secret", "herald-memberlist", "Secret (in --namespace) holding the memberlist keys ('secretkey' primary, 'secretkey.*' secondary), watched for key rotation; empty: unencrypted, which needs --memberlist-allow-unencrypted")
	fs.DurationVar(&o.secretWait, "memberlist-secret-wait", 30*time.Second, "how long to wait for the memberlist Secret to exist at start; then the speaker exits with an error (it never falls back to unencrypted gossip)")
	fs.BoolVar(&o.allowUnencrypted, "memberlist-allow-unencrypted", false, "allow --memberlist-secret='' (gossip that anyone who reaches the memberlist port can read and forge)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":7474", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS to clients allowed to get the non-resource URL /metrics (bearer token checked with TokenReview and SubjectAccessReview); false: plain HTTP to anyone")
	fs.StringVar(&o.healthAddr, "health-addr", "", "address of /healthz and /readyz; 0 disables it (default: --host-ip port 7475, the address kubelet probes on a host-network Pod; :7475 without --host-ip)")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "address of Go's /debug/pprof/ endpoints (heap and CPU profiles, plain HTTP to anyone: bind it to loopback); empty: off")
	o.logOpts.AddFlags(fs)
	fs.IntVar(&o.bgpListenPort, "bgp-listen-port", 0, "accept BGP connections on this TCP port (179; needs CAP_NET_BIND_SERVICE) on the node's addresses only, so a router with the node as a neighbour opens new sessions at its next attempt instead of waiting for the speaker's first (1.5-2 s); 0: connect only")
	fs.Float64Var(&o.kubeQPS, "kube-api-qps", 50, "queries per second to the API server")
	fs.IntVar(&o.kubeBurst, "kube-api-burst", 100, "burst of queries to the API server")
	fs.DurationVar(&o.l2Refresh, "l2-refresh-interval", layer2.DefaultRefresh, "how often owned IPs are announced again with gratuitous ARP/NDP")
	fs.BoolVar(&o.l2Conflicts, "l2-conflict-detection", true, "detect other stations answering for owned layer-2 IPs (split brain, duplicate addresses), probe new IPs before announcing them, and yield as the conflict rules say")
	fs.IntVar(&o.gcPercent, "gc-percent", 50, "Go garbage collector target (GOGC): the heap grows this many percent over the live data between collections; 50 keeps the speaker near its live data for a little CPU. The GOGC environment variable, when set, wins")
	fs.DurationVar(&o.resync, "resync", 10*time.Second, "full recomputation period, also for re-joining speakers (interface changes are seen at once through rtnetlink)")
	fs.DurationVar(&o.timers.ProbeInterval, "memberlist-probe-interval", o.timers.ProbeInterval, "memberlist failure detection: probe interval")
	fs.DurationVar(&o.timers.ProbeTimeout, "memberlist-probe-timeout", o.timers.ProbeTimeout, "memberlist failure detection: probe timeout")
	fs.IntVar(&o.timers.SuspicionMult, "memberlist-suspicion-mult", o.timers.SuspicionMult, "memberlist failure detection: suspicion multiplier (probe intervals a suspect has to refute)")
	fs.DurationVar(&o.timers.GossipInterval, "memberlist-gossip-interval", o.timers.GossipInterval, "memberlist gossip interval")
	fs.IntVar(&o.speakers, "memberlist-cluster-size", 0, "number of speakers the memberlist probe interval and timeout are sized for when they are not given (detection within 0.4s at any size: 70ms up to 25 speakers, 47ms at 200, 38ms at 1,000); 0: the Nodes counted at start")
	if ip := os.Getenv("POD_IP"); ip != "" {
		if err := o.hostIP.UnmarshalText([]byte(ip)); err != nil {
			return o, fmt.Errorf("$POD_IP %q: %w", ip, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.scaleTimers = true
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "memberlist-probe-interval" || f.Name == "memberlist-probe-timeout" {
			o.scaleTimers = false
		}
	})
	if o.nodeName == "" {
		return o, fmt.Errorf("--node-name (or $NODE_NAME) is required")
	}
	if o.healthAddr == "" {
		o.healthAddr = ":" + strconv.Itoa(defaultHealthPort)
		if o.hostIP.IsValid() {
			o.healthAddr = netip.AddrPortFrom(o.hostIP, defaultHealthPort).String()
		}
	}
	if o.gcPercent <= 0 {
		return o, fmt.Errorf("--gc-percent %d: must be positive", o.gcPercent)
	}
	if o.memberlistSecret == "" && !o.allowUnencrypted {
		return o, fmt.Errorf("--memberlist-secret is empty: memberlist would run unencrypted; name the key Secret, or add --memberlist-allow-unencrypted to allow it")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // the usage is printed already
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(o.gcPercent)
	}
	if o.pprofAddr == "" {
		// Without the pprof endpoints nobody reads a heap profile: do not sample one. The
		// runtime's profile buckets held 1.6 MB at 10,000 Services.
		runtime.MemProfileRate = 0
	}
	log, err := logging.New(os.Stderr, o.logOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	logging.Route(log)
	if err := run(signalContext(), o, log); err != nil {
		log.Error("herald-speaker failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	scheme, err := kube.Scheme()
	if err != nil {
		return err
	}
	restCfg, err := kube.RESTConfig(o.kubeconfig, float32(o.kubeQPS), o.kubeBurst, "herald-speaker/"+o.nodeName, log.With("component", "kube"))
	if err != nil {
		return err
	}
	events := kube.EventBroadcaster()
	defer events.Shutdown()
	// Not controller-runtime (see internal/kube/client): one REST client of the scheme's kinds, a
	// cache of the configuration, Secrets, Nodes and this node's BGP status objects, and the
	// agent's own reflectors of Services and EndpointSlices over the same connections.
	direct, err := client.New(restCfg, nil, scheme)
	if err != nil {
		return err
	}
	ch, err := cache.New(direct, agent.CacheOptions(o.namespace, o.nodeName))
	if err != nil {
		return fmt.Errorf("creating the cache: %w", err)
	}
	events.StartRecordingToSink(kube.EventSink{Client: direct})
	recorder := events.NewRecorder(scheme, corev1.EventSource{Component: "herald-speaker"})
	reg := metrics.NewRegistry()
	servers := []runnable{
		metrics.Server{Addr: o.metricsAddr, Gatherer: reg, Secure: o.metricsSecure, Config: restCfg,
			Log: logr.FromSlogHandler(log.Handler()).WithName("metrics")},
		httpServer{addr: o.healthAddr, handler: healthHandler()},
	}
	if o.pprofAddr != "" {
		servers = append(servers, httpServer{addr: o.pprofAddr, handler: pprofHandler()})
	}
	var others []runnable

	reader := client.Reader(direct)
	addrs, err := agent.NodeAddresses(ctx, reader, o.nodeName, o.hostIP)
	if err != nil {
		return err
	}
	v4, v6 := addrs.V4, addrs.V6
	bind := addrs.Host
	if o.memberlistBind.IsValid() {
		bind = o.memberlistBind
	}
	if o.scaleTimers {
		n := o.speakers
		if n == 0 {
			if n, err = agent.NodeCount(ctx, reader); err != nil {
				log.Warn("sizing the memberlist timers for a small cluster", "error", err)
			}
		}
		t := members.TimersFor(n)
		o.timers.ProbeInterval, o.timers.ProbeTimeout = t.ProbeInterval, t.ProbeTimeout
		log.Info("memberlist timers sized for the cluster", "speakers", n, "probeInterval", t.ProbeInterval, "probeTimeout", t.ProbeTimeout)
	}
	keys, err := agent.MemberlistKeys(ctx, reader, agent.KeySource{
		Namespace: o.namespace, Secret: o.memberlistSecret, Wait: o.secretWait, AllowUnencrypted: o.allowUnencrypted,
	}, log)
	if err != nil {
		return err
	}

	ml, err := members.New(members.Config{
		NodeName: o.nodeName, BindAddr: bind, BindPort: o.memberlistPort, AdvertiseAddr: addrs.Host,
		SecretKey: keys.Primary, SecondaryKeys: keys.Secondary, Timers: o.timers, Logger: log.With("component", "members"),
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	if len(keys.Primary) > 0 {
		others = append(others, &agent.KeyWatcher{
			Cache: ch, Namespace: o.namespace, Secret: o.memberlistSecret, Keyring: ml,
			Logger: log.With("component", "keyring"), Registerer: reg,
		})
	}
	if err := ml.Start(); err != nil {
		return err
	}
	defer func() { _ = ml.Shutdown() }()

	var conflicts *layer2.ConflictConfig
	if o.l2Conflicts {
		conflicts = &layer2.ConflictConfig{Node: o.nodeName}
	}
	links, err := layer2.OpenNetlink("")
	if err != nil {
		return err
	}
	defer func() { _ = links.Close() }()
	l2, err := layer2.NewAnnouncer(layer2.Config{
		Logger: log.With("component", "layer2"), Registerer: reg, Refresh: o.l2Refresh, Conflicts: conflicts, Index: links.Index,
	})
	if err != nil {
		return err
	}
	defer func() { _ = l2.Close() }()
	routerID := bgp.RouterID(v4, v6, o.nodeName)
	speaker, err := bgp.New(bgp.Config{RouterID: routerID, NodeIPv4: v4, NodeIPv6: v6, Logger: log.With("component", "bgp"), Registerer: reg, ListenPort: o.bgpListenPort})
	if err != nil {
		return err
	}

	a, err := agent.New(agent.Options{
		NodeName: o.nodeName, Namespace: o.namespace, LBClass: o.lbClass, NodeIPv4: v4, NodeIPv6: v6,
		MemberlistPort: o.memberlistPort,
		// The status writer reads this node's BGP status objects from the cache.
		Cache: ch, Client: client.Split(ch, direct), Watcher: direct, Recorder: recorder,
		Reader: reader, PodName: o.podName,
		Members: ml, L2: l2, BGP: speaker,
		Links:  links,
		Logger: log.With("component", "agent"), Registerer: reg, Resync: o.resync,
	})
	if err != nil {
		return err
	}
	others = append(others, a)
	// GOMAXPROCS follows the container's CPU limit (Go 1.25+: 2 under a 500m limit), so a busy
	// speaker is throttled in short slices rather than frozen for most of each CFS period.
	log.Info("starting", "node", o.nodeName, "hostIP", addrs.Host, "namespace", o.namespace, "bgpRouterID", routerID, "gomaxprocs", runtime.GOMAXPROCS(0))
	return runAll(ctx, ch, servers, others)
}
