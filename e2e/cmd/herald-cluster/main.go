// Command herald-cluster brings up the cluster lab (package e2e/cluster: a real Kubernetes
// cluster in network namespaces, Herald installed from manifests/ or its Helm chart), prints how
// to reach it and waits for Ctrl-C, then removes everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-lb/herald/e2e/cluster"
)

type options struct {
	install   string
	proxyMode string
	exitAfter bool
}

func main() {
	var o options
	flag.StringVar(&o.install, "install", string(cluster.InstallKustomize), "how to install Herald: kustomize, helm or none")
	flag.StringVar(&o.proxyMode, "proxy-mode", string(cluster.ProxyNFTables), "kube-proxy mode: nftables or iptables")
	flag.BoolVar(&o.exitAfter, "exit-after-up", false, "remove the cluster as soon as it is up (to time the bring-up)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "herald-cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := cluster.Start(ctx, cluster.Options{Log: log, Install: cluster.Install(o.install), ProxyMode: cluster.ProxyMode(o.proxyMode)})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "herald-cluster: removing the cluster:", err)
		}
	}()
	for _, t := range c.Timings {
		fmt.Printf("%-14s %v\n", t.Phase, t.Duration.Round(1e6))
	}
	fmt.Printf("\nThe cluster is up. Try:\n  %s --kubeconfig %s get nodes -o wide\n", c.KubectlPath(), c.AdminKubeconfig)
	if o.exitAfter {
		return nil
	}
	fmt.Println("Ctrl-C removes it.")
	<-ctx.Done()
	return nil
}
