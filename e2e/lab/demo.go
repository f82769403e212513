package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Runner runs kubectl and commands in lab nodes: a *Lab, or a cluster built on one.
type Runner interface {
	Kubectl(ctx context.Context, args ...string) (string, error)
	Exec(ctx context.Context, node string, args ...string) (string, error)
}

// Narrator prints a demo to W: its steps, and the commands it runs through Run with their output.
type Narrator struct {
	W   io.Writer
	Run Runner
	Ctx context.Context
}

// Printf writes to the demo's output; a terminal that went away is not worth failing the demo for.
func (n *Narrator) Printf(format string, args ...any) { _, _ = fmt.Fprintf(n.W, format, args...) }

// Step prints the title of a step, in bold.
func (n *Narrator) Step(format string, args ...any) {
	n.Printf("\n\033[1m==> %s\033[0m\n", fmt.Sprintf(format, args...))
}

// Show runs a command in a node (or kubectl when node is "kubectl") and prints it with its output.
func (n *Narrator) Show(node string, args ...string) error {
	var out string
	var err error
	if node == "kubectl" {
		n.Printf("$ kubectl %s\n", strings.Join(args, " "))
		out, err = n.Run.Kubectl(n.Ctx, args...)
	} else {
		n.Printf("[%s]$ %s\n", node, strings.Join(args, " "))
		out, err = n.Run.Exec(n.Ctx, node, args...)
	}
	n.Printf("%s", out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		n.Printf("\n")
	}
	return err
}

// ShowRoutes shows the kernel's route to each of ips in a node.
func (n *Narrator) ShowRoutes(node string, ips []netip.Addr) error {
	for _, ip := range ips {
		fam := "-4"
		if ip.Is6() {
			fam = "-6"
		}
		if err := n.Show(node, "ip", fam, "route", "show", HostPrefix(ip).String()); err != nil {
			return err
		}
	}
	return nil
}
