// Command herald-speaker announces the external IPs of Services of type LoadBalancer from this node,
// over layer 2 (ARP/NDP) or BGP. main only parses flags into a typed configuration and wires the packages together.
package main

import (
	"flag"
	"fmt"
	"os"
)

type options struct {
	kubeconfig string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("herald-speaker", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	return o, fs.Parse(args)
}

func main() {
	if _, err := parseFlags(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
