// Command kubectl-herald is the kubectl plugin of Herald (kubectl herald ...): it explains who
// announces which LoadBalancer IP and why an IP is not answered, shows the use of the pools,
// validates configuration files offline and migrates a MetalLB configuration. Package cli holds
// the commands; this file only wires the process to them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-lb/herald/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
