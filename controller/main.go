// Command herald-controller assigns external IPs from Herald's address pools to Services of type
// LoadBalancer. main only parses flags into a typed configuration and wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/herald-lb/herald/controller/certs"
	"github.com/herald-lb/herald/controller/confstatus"
	"github.com/herald-lb/herald/controller/service"
	"github.com/herald-lb/herald/controller/webhook"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/logging"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/internal/metrics"
)

// options are the command-line flags. The install manifests use exactly these names.
type options struct {
	kubeconfig    string
	namespace     string
	lbClass       string
	metricsAddr   string
	metricsSecure bool
	healthAddr    string
	kubeAPIQPS    float64
	kubeAPIBurst  int
	workers       int
	gcPercent     int
	logOpts       logging.Options

	enableWebhook      bool
	webhookPort        int
	webhookCertDir     string
	webhookConfigName  string
	webhookServiceName string
	memberlistSecret   string
	leaderElect        bool
	webhookExtraHosts  []string
}

func parseFlags(args []string) (options, error) {
	o := options{logOpts: logging.DefaultOptions()}
	fs := flag.NewFlagSet("herald-controller", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	fs.StringVar(&o.namespace, "namespace", "herald-system", "namespace of the Herald objects (pools, advertisements, peers)")
	fs.StringVar(&o.lbClass, "lb-class", "", "handle only Services with this spec.loadBalancerClass; when empty, only Services without one")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":7472", "address of the Prometheus /metrics endpoint")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS to clients allowed to get the non-resource URL /metrics (bearer token checked with TokenReview and SubjectAccessReview); false: plain HTTP to anyone")
	fs.StringVar(&o.healthAddr, "health-addr", ":7473", "address of the /healthz and /readyz endpoints")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 1000, "queries per second the controller may send to the API server; it writes twice per new Service (status and annotation) and nothing for an unchanged one, so this only needs to exceed twice the cluster's peak rate of Service creation")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 2000, "burst of queries above --kube-api-qps")
	fs.IntVar(&o.gcPercent, "gc-percent", 50, "Go garbage collector target (GOGC): the heap grows this many percent over the live data between collections; 50 keeps the controller near its live data (about 25 MiB at 10,000 Services) for a little CPU. The GOGC environment variable, when set, wins")
	fs.IntVar(&o.workers, "service-workers", service.DefaultServiceWorkers, "Services reconciled at once; each waits for its API writes, so this bounds the writes in flight (assignment rate = workers / (2 x write latency))")
	o.logOpts.AddFlags(fs)
	fs.BoolVar(&o.enableWebhook, "enable-webhook", true, "serve the validating webhook for Herald objects")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "port of the validating webhook")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", filepath.Join(os.TempDir(), "herald-webhook-certs"), "folder the webhook serving certificate is written to")
	fs.StringVar(&o.webhookConfigName, "webhook-config-name", "herald-validating-webhook", "ValidatingWebhookConfiguration whose CA bundle the controller keeps current")
	fs.StringVar(&o.webhookServiceName, "webhook-service-name", "herald-webhook", "Service in front of the webhook (names the serving certificate)")
	fs.StringVar(&o.memberlistSecret, "memberlist-secret", "herald-memberlist", "Secret holding the speakers' memberlist encryption key (created when missing); empty: none")
	fs.Func("webhook-extra-hosts", "comma-separated extra DNS names or IPs for the webhook certificate (for a webhook reached by URL)", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				o.webhookExtraHosts = append(o.webhookExtraHosts, h)
			}
		}
		return nil
	})
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader among several replicas; a single replica (the default Deployment, strategy Recreate) needs none")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.namespace == "" {
		return o, errors.New("--namespace must not be empty")
	}
	if o.kubeAPIQPS <= 0 || o.kubeAPIBurst <= 0 {
		return o, errors.New("--kube-api-qps and --kube-api-burst must be positive")
	}
	if o.gcPercent <= 0 {
		return o, fmt.Errorf("--gc-percent %d: must be positive", o.gcPercent)
	}
	if o.workers <= 0 {
		return o, fmt.Errorf("--service-workers %d: must be positive", o.workers)
	}
	if o.webhookPort <= 0 || o.webhookPort > 65535 {
		return o, fmt.Errorf("--webhook-port %d: not a port", o.webhookPort)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(o.gcPercent)
	}
	// The controller serves no pprof endpoint, so nobody reads a heap profile: do not sample one
	// (the runtime's profile buckets cost a megabyte or two).
	runtime.MemProfileRate = 0
	slogger, err := logging.New(os.Stderr, o.logOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	logging.Route(slogger)
	log := logr.FromSlogHandler(slogger.Handler())
	if err := run(ctrl.SetupSignalHandler(), o, log); err != nil {
		log.Error(err, "herald-controller failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log logr.Logger) error {
	cfg, err := kube.RESTConfig(o.kubeconfig, float32(o.kubeAPIQPS), o.kubeAPIBurst, "herald-controller",
		slog.New(logr.ToSlogHandler(log.WithName("kube"))))
	if err != nil {
		return err
	}
	scheme, err := crclient.Scheme()
	if err != nil {
		return err
	}
	// Uncached client for what must happen before the manager starts.
	direct, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating the API client: %w", err)
	}
	if o.memberlistSecret != "" {
		if err := memberlistkey.EnsureSecret(ctx, crclient.Client(direct), o.namespace, o.memberlistSecret); err != nil {
			return fmt.Errorf("memberlist key Secret %s/%s: %w", o.namespace, o.memberlistSecret, err)
		}
	}
	events := kube.EventBroadcaster()
	defer events.Shutdown()
	mopts := ctrl.Options{
		Scheme:                        scheme,
		Logger:                        log,
		Cache:                         service.CacheOptions(o.namespace),
		Metrics:                       metricsserver.Options{BindAddress: "0"}, // served below, with our registry
		HealthProbeBindAddress:        o.healthAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "herald-controller",
		LeaderElectionNamespace:       o.namespace,
		LeaderElectionReleaseOnCancel: true,
		EventBroadcaster:              events, // deprecated for its leak when a manager ends before the process; here they end together
	}
	if o.enableWebhook {
		mopts.WebhookServer = ctrlwebhook.NewServer(ctrlwebhook.Options{Port: o.webhookPort, CertDir: o.webhookCertDir})
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}

	// Herald's own registry; controller-runtime's (workqueue, client, Go and process metrics)
	// is served next to it.
	reg := prometheus.NewRegistry()
	svc, err := service.New(service.Options{Namespace: o.namespace, LBClass: o.lbClass, Registry: reg, MaxConcurrentReconciles: o.workers})
	if err != nil {
		return err
	}
	if err := svc.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.Add(metrics.Server{Addr: o.metricsAddr, Gatherer: prometheus.Gatherers{reg, ctrlmetrics.Registry},
		Secure: o.metricsSecure, Config: cfg, Log: log.WithName("metrics")}); err != nil {
		return fmt.Errorf("adding the metrics server: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	// Readiness is the webhook's alone: a controller that waits for a valid configuration must
	// still admit the objects that fix it.
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	cs, err := confstatus.New(confstatus.Options{Namespace: o.namespace}, log.WithName("config-status"))
	if err != nil {
		return err
	}
	if err := cs.SetupWithManager(mgr); err != nil {
		return err
	}
	if o.enableWebhook {
		cm, err := certs.New(direct, certs.Options{
			Namespace: o.namespace, SecretName: certs.DefaultSecretName, ServiceName: o.webhookServiceName,
			WebhookConfigName: o.webhookConfigName, CertDir: o.webhookCertDir, Logger: log.WithName("certs"),
			Hosts: append(certs.ServiceHosts(o.webhookServiceName, o.namespace), o.webhookExtraHosts...),
		})
		if err != nil {
			return err
		}
		// The webhook server reads its certificate files when it starts: write them first.
		if err := cm.Ensure(ctx); err != nil {
			return fmt.Errorf("webhook serving certificate: %w", err)
		}
		if err := mgr.Add(cm); err != nil {
			return err
		}
		// The webhook reads Services from the controller's compact store, so that the manager's
		// cache holds no second copy of them.
		if err := webhook.Register(mgr, webhook.Options{Namespace: o.namespace, LBClass: o.lbClass,
			Cache: svc.ServiceReader(mgr.GetCache(), webhook.IndexServiceIngress)}); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return fmt.Errorf("adding the webhook readiness check: %w", err)
		}
	}

	log.Info("starting herald-controller", "namespace", o.namespace, "lbClass", o.lbClass,
		"kubeAPIQPS", o.kubeAPIQPS, "kubeAPIBurst", o.kubeAPIBurst, "serviceWorkers", o.workers, "webhook", o.enableWebhook)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}
