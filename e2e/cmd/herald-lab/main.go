// Command herald-lab is `make demo-process`: it brings up Herald's lab (package e2e/lab: network
// namespaces, FRR, a real API server, herald-controller and one herald-speaker per node), gives
// Herald a configuration and two Services, one announced over layer 2 and one over BGP, and shows
// step by step what happened: the Services' external IPs, which nodes announce them, curl through
// each IP from the clients, and the router's ECMP routes. It then prints how to poke at the lab and
// waits for Ctrl-C, and removes everything. With --exit-after-demo (or HERALD_DEMO_EXIT=1) it
// removes the lab right after the demo and exits non-zero if any step failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/lab"
)

type options struct {
	exitAfter bool
	topology  string
	logLevel  string
}

func main() {
	var o options
	flag.BoolVar(&o.exitAfter, "exit-after-demo", os.Getenv("HERALD_DEMO_EXIT") == "1", "remove the lab and exit after the demo instead of waiting for Ctrl-C (default $HERALD_DEMO_EXIT=1)")
	flag.StringVar(&o.topology, "topology", "", "topology file (default e2e/topology.clab.yaml)")
	flag.StringVar(&o.logLevel, "log-level", "debug", "--log-level of the Herald processes (their logs go to the run folder)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "herald-lab:", err)
		os.Exit(1)
	}
}

// demo prints the steps to w.
type demo struct {
	lab.Narrator
	l *lab.Lab
	// l2IP and bgpIP are the IPv4 addresses of the two Services, for the hints.
	l2IP, bgpIP netip.Addr
}

func run(ctx context.Context, w io.Writer, o options) (err error) {
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, _ = fmt.Fprintln(w, "Bringing up Herald's lab: building the binaries, the network namespaces, FRR, etcd and kube-apiserver...")
	startCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	l, err := lab.Start(startCtx, lab.Options{Topology: o.topology, Log: log, LogLevel: o.logLevel})
	if err != nil {
		return fmt.Errorf("starting the lab: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = fmt.Fprintf(w, "\nSomething failed; the end of the processes' logs:\n%s\n", l.LogTails(25))
		}
		_, _ = fmt.Fprintln(w, "\nRemoving the lab (namespaces, processes, run folder)...")
		err = errors.Join(err, l.Close())
	}()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer dcancel()
	d := &demo{Narrator: lab.Narrator{W: w, Run: l, Ctx: dctx}, l: l}
	if err := d.run(); err != nil {
		return err
	}
	if o.exitAfter {
		return l.CheckHerald()
	}
	d.printPoke()
	<-ctx.Done()
	return nil
}

func (d *demo) run() error {
	l, ctx := d.l, d.Ctx
	d.Step("The lab (e2e/topology.clab.yaml): nodes n1..n3 on a layer-2 segment with l2client, router rt (FRR, AS %d), extclient behind rt", l.Plan.RouterASN)
	for _, n := range l.Nodes {
		d.Printf("  %-3s %-15s %-18s namespace %s: herald-speaker, backend, nftables DNAT (stands in for kube-proxy)\n", n.Name, n.V4, n.V6, l.NS(n.Name))
	}
	if err := d.Show("kubectl", "get", "nodes", "-o", "wide"); err != nil {
		return err
	}

	d.Step("Herald's configuration: a layer-2 pool and L2Advertisement, a BGP pool, BGPAdvertisement and BGPPeers (the router)")
	if err := l.ApplyConfig(ctx); err != nil {
		return err
	}
	if err := d.Show("kubectl", "get", "ipaddresspools,l2advertisements,bgpadvertisements,bgppeers", "-n", lab.HeraldNamespace); err != nil {
		return err
	}

	d.Step("Two dual-stack Services of type LoadBalancer: web-l2 (pool %s) and web-bgp (pool %s)", lab.L2PoolName, lab.BGPPoolName)
	ns, err := l.NewNamespace(ctx, "demo")
	if err != nil {
		return err
	}
	dual := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	for _, s := range []lab.ServiceSpec{
		{Namespace: ns, Name: "web-l2", Pool: lab.L2PoolName, Families: dual},
		{Namespace: ns, Name: "web-bgp", Pool: lab.BGPPoolName, Families: dual},
	} {
		if _, err := l.CreateService(ctx, s); err != nil {
			return err
		}
	}
	l2ips, err := l.WaitIngress(ctx, ns, "web-l2", 2)
	if err != nil {
		return err
	}
	bgpips, err := l.WaitIngress(ctx, ns, "web-bgp", 2)
	if err != nil {
		return err
	}
	d.l2IP, d.bgpIP = l2ips[0], bgpips[0]
	if err := d.Show("kubectl", "get", "svc", "-A"); err != nil {
		return err
	}

	d.Step("Who announces them: for web-l2 one node per IP answers ARP/NDP; every node advertises web-bgp to rt")
	owners := map[netip.Addr]string{}
	for _, ip := range l2ips {
		if _, err := l.WaitCurl(ctx, "l2client", ip, 80, nil); err != nil {
			return err
		}
		mac, err := l.NeighborMAC(ctx, "l2client", ip)
		if err != nil {
			return err
		}
		if owners[ip], err = l.NodeByMAC(ctx, mac); err != nil {
			return err
		}
	}
	want := slices.Sorted(maps.Values(owners))
	if _, err := waitFor(ctx, func() ([]string, bool) {
		o, err := l.L2Owners(ctx, ns, "web-l2")
		return o, err == nil && slices.Equal(o, slices.Compact(want))
	}); err != nil {
		return withHerald(fmt.Errorf("waiting for the ServiceL2Status of web-l2 to name %v: %w", want, err), l)
	}
	if _, err := waitFor(ctx, func() ([]string, bool) {
		n, err := l.BGPNodes(ctx, ns, "web-bgp")
		return n, err == nil && len(n) == len(l.Nodes)
	}); err != nil {
		return withHerald(fmt.Errorf("waiting for the ServiceBGPStatus of web-bgp: %w", err), l)
	}
	if err := d.Show("kubectl", "get", "servicel2statuses,servicebgpstatuses", "-A"); err != nil {
		return err
	}
	for _, ip := range l2ips {
		d.Printf("web-l2 %s is announced by %s (the MAC address l2client resolved it to)\n", ip, owners[ip])
	}
	d.Printf("web-bgp %v is advertised by every node: rt spreads traffic over them (ECMP)\n", bgpips)

	d.Step("curl through each IP (the backend answers with the name of the node that carried the request)")
	for _, ip := range l2ips {
		if _, err := l.WaitCurl(ctx, "l2client", ip, 80, nil); err != nil {
			return err
		}
		if err := d.Show("l2client", "curl", "-sS", "--max-time", "2", lab.URL(ip, 80)); err != nil {
			return err
		}
	}
	for _, ip := range bgpips {
		if err := waitRoute(ctx, l, ip); err != nil {
			return err
		}
		if _, err := l.WaitCurl(ctx, "extclient", ip, 80, nil); err != nil {
			return err
		}
		for range 3 {
			if err := d.Show("extclient", "curl", "-sS", "--max-time", "2", lab.URL(ip, 80)); err != nil {
				return err
			}
		}
	}

	d.Step("The router's ECMP routes to web-bgp: one next hop per node (kernel table, then FRR)")
	if err := d.ShowRoutes("rt", bgpips); err != nil {
		return err
	}
	afi := "ipv4"
	d.Printf("[rt]$ vtysh -c 'show bgp %s unicast %s'\n", afi, bgpips[0])
	out, err := l.Router.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast %s", afi, bgpips[0]))
	d.Printf("%s", out)
	return err
}

// waitRoute waits until rt's kernel route for ip goes via every node.
func waitRoute(ctx context.Context, l *lab.Lab, ip netip.Addr) error {
	if _, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(ip), l.NodeAddrs(ip.Is4()), 50*time.Millisecond); err != nil {
		return withHerald(err, l)
	}
	return nil
}

func waitFor(ctx context.Context, cond func() ([]string, bool)) ([]string, error) {
	var last []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var ok bool
		last, ok = cond()
		return ok, nil
	})
	return last, err
}

func (d *demo) printPoke() {
	l := d.l
	d.Step("The lab stays up until Ctrl-C. Try:")
	d.Printf("  export KUBECONFIG=%s\n", l.Kubeconfig)
	d.Printf("  %s get svc,servicel2statuses,servicebgpstatuses -A\n", l.KubectlPath())
	d.Printf("  ip netns exec %s curl %s      # from the segment client\n", l.NS("l2client"), lab.URL(d.l2IP, 80))
	d.Printf("  ip netns exec %s arping -c 3 -I eth0 %s\n", l.NS("l2client"), d.l2IP)
	d.Printf("  ip netns exec %s curl %s      # from behind the router\n", l.NS("extclient"), lab.URL(d.bgpIP, 80))
	d.Printf("  ip netns exec %s ip route                          # the router's ECMP routes\n", l.NS("rt"))
	d.Printf("  vtysh --vty_socket %s -c 'show bgp summary'\n", l.Router.Dir())
	d.Printf("  ip netns exec %s nft list ruleset                  # DNAT standing in for kube-proxy\n", l.NS("n1"))
	d.Printf("  kill -9 $(pgrep -f 'herald-speaker.*--node-name n1')   # then curl again\n")
	d.Printf("  logs: %s/*.log\n", l.RunDir)
}

// withHerald adds to err what went wrong with the Herald processes, if anything.
func withHerald(err error, l *lab.Lab) error {
	if herr := l.CheckHerald(); herr != nil {
		return fmt.Errorf("%w\n%w", err, herr)
	}
	return err
}
