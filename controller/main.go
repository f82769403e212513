// Command herald-controller assigns external IPs from Herald's address pools to Services of type
// LoadBalancer. main only parses flags into a typed configuration and wires the packages together.
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
	fs := flag.NewFlagSet("herald-controller", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to a kubeconfig; in-cluster configuration when empty")
	return o, fs.Parse(args)
}

func main() {
	if _, err := parseFlags(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
