// Command herald-cluster is `make demo`: it brings up the cluster lab (package
// e2e/cluster: a real Kubernetes cluster in network namespaces with containerd, kubelet and
// kube-proxy per node, Herald installed from manifests/ or its Helm chart), shows Herald at work
// on it (pods answering through a layer-2 and a BGP Service IP), prints how to poke at it and
// waits for Ctrl-C, then removes everything. With --exit-after-demo (or HERALD_DEMO_EXIT=1) it
// removes the cluster right after the demo and exits non-zero if any step failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-lb/herald/e2e/cluster"
)

type options struct {
	install   string
	proxyMode string
	exitAfter bool
	noDemo    bool
}

func main() {
	var o options
	flag.StringVar(&o.install, "install", string(cluster.InstallKustomize), "how to install Herald: kustomize (kubectl apply --server-side -k manifests/), helm, or none")
	flag.StringVar(&o.proxyMode, "proxy-mode", string(cluster.ProxyNFTables), "kube-proxy mode: nftables or iptables")
	flag.BoolVar(&o.exitAfter, "exit-after-demo", os.Getenv("HERALD_DEMO_EXIT") == "1", "remove the cluster and exit after the demo instead of waiting for Ctrl-C (default $HERALD_DEMO_EXIT=1)")
	flag.BoolVar(&o.noDemo, "no-demo", false, "only bring the cluster up (and print its bring-up times)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "herald-cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, o options) (err error) {
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, _ = fmt.Fprintln(w, "Bringing up the cluster lab: images, network namespaces, FRR, control plane, nodes, Herald...")
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	c, err := cluster.Start(startCtx, cluster.Options{Log: log, Install: cluster.Install(o.install), ProxyMode: cluster.ProxyMode(o.proxyMode)})
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = fmt.Fprintf(w, "\nSomething failed:\n%s\n%s\n", c.PodSummary(context.Background()), c.HeraldLogs(context.Background(), 25))
		}
		_, _ = fmt.Fprintln(w, "\nRemoving the cluster (nodes, control plane, namespaces, run folder)...")
		err = errors.Join(err, c.Close())
	}()
	_, _ = fmt.Fprintf(w, "Up in %v: %v\n", c.BringUp().Round(time.Millisecond), c.Timings)
	hints := fmt.Sprintf("  %s --kubeconfig %s get nodes -o wide\n", c.KubectlPath(), c.AdminKubeconfig)
	if !o.noDemo && cluster.Install(o.install) != cluster.InstallNone {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Minute)
		defer dcancel()
		if hints, err = c.Demo(dctx, w); err != nil {
			return err
		}
	}
	if o.exitAfter {
		return c.Check()
	}
	_, _ = fmt.Fprintf(w, "\nThe cluster stays up until Ctrl-C. Try:\n%s", hints)
	<-ctx.Done()
	return nil
}
