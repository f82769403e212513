// Command kubectl-herald is the kubectl plugin of Herald (kubectl herald ...): it explains who
// announces which LoadBalancer IP and why an IP is not answered, shows the use of the pools,
// validates configuration files offline and migrates a MetalLB configuration. Package cli holds
// the commands; this file only wires the process to them.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/cli"
)

func main() {
	// controller-runtime's client logs through its root logger; without one it prints a stack
	// trace to say so when a command runs for 30 s. Its warnings and errors go to stderr.
	crlog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
