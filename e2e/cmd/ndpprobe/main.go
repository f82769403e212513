// Command ndpprobe asks, over and over, who has each of the given IPv6 addresses (Neighbor
// Solicitations to their solicited-node groups on one interface) and prints every Neighbor
// Advertisement for one of them, solicited or not, as "<unix nanoseconds> <address> <MAC> <s|u>"
// (s: an answer to a solicitation, u: unsolicited, a gratuitous announcement). It
// stops asking for an address once a station other than --old has answered for it, and exits when
// every address has such an answer (status 0) or at --timeout (status 1); with --for it asks for
// every address for that long instead, and exits 0. The lab's scale test runs it in the segment
// client to see when each address of a killed node answers again, and from whom.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

func main() {
	iface := flag.String("i", "eth0", "interface to ask on")
	interval := flag.Duration("interval", 10*time.Millisecond, "time between two rounds of solicitations")
	timeout := flag.Duration("timeout", 10*time.Second, "give up after this long")
	old := flag.String("old", "", "MAC whose answers do not count (the killed owner's)")
	keep := flag.Duration("for", 0, "ask for every address for this long, whoever answers, then exit 0")
	flag.Parse()
	if *keep > 0 {
		*timeout, *old = *keep, "ff:ff:ff:ff:ff:ff" // nobody's: every address stays asked for
	}
	err := run(*iface, *interval, *timeout, *old, flag.Args())
	if *keep > 0 && errors.Is(err, errTimeout) {
		err = nil
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ndpprobe:", err)
		os.Exit(1)
	}
}

func run(name string, interval, timeout time.Duration, old string, args []string) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	oldMAC := strings.ToLower(old)
	pending := map[netip.Addr]bool{}
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return fmt.Errorf("address %q: want an IPv6 address", a)
		}
		pending[ip] = true
	}
	if len(pending) == 0 {
		return errors.New("no address given")
	}
	c, _, err := ndp.Listen(ifi, ndp.Global)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", name, err)
	}
	defer func() { _ = c.Close() }()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	if err := c.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("filtering ICMPv6 on %s: %w", name, err)
	}

	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		for {
			msg, _, _, err := c.ReadFrom()
			if err != nil {
				return
			}
			na, ok := msg.(*ndp.NeighborAdvertisement)
			if !ok {
				continue
			}
			mac := ""
			for _, o := range na.Options {
				if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
					mac = strings.ToLower(lla.Addr.String())
				}
			}
			now := time.Now()
			mu.Lock()
			_, asked := pending[na.TargetAddress]
			if asked {
				kind := "u"
				if na.Solicited {
					kind = "s"
				}
				fmt.Printf("%d %s %s %s\n", now.UnixNano(), na.TargetAddress, mac, kind)
				if mac != "" && mac != oldMAC && pending[na.TargetAddress] {
					pending[na.TargetAddress] = false
					if !anyPending(pending) {
						close(done)
					}
				}
			}
			mu.Unlock()
		}
	}()

	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		mu.Lock()
		var ask []netip.Addr
		for ip, p := range pending {
			if p {
				ask = append(ask, ip)
			}
		}
		mu.Unlock()
		for _, ip := range ask {
			snm, err := ndp.SolicitedNodeMulticast(ip)
			if err != nil {
				return err
			}
			ns := &ndp.NeighborSolicitation{TargetAddress: ip, Options: []ndp.Option{
				&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr},
			}}
			if err := c.WriteTo(ns, nil, snm); err != nil {
				return fmt.Errorf("asking for %s: %w", ip, err)
			}
		}
		select {
		case <-done:
			return nil
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			var left []string
			for ip, p := range pending {
				if p {
					left = append(left, ip.String())
				}
			}
			return fmt.Errorf("%w: no new station answered for %s within %s", errTimeout, strings.Join(left, " "), timeout)
		case <-tick.C:
		}
	}
}

var errTimeout = errors.New("timed out")

func anyPending(m map[netip.Addr]bool) bool {
	for _, p := range m {
		if p {
			return true
		}
	}
	return false
}
