// Package routeradv makes BGP unnumbered work on one interface: it sends IPv6 Router
// Advertisements (RFC 4861) on the interface, so that a router configured with an interface
// neighbour (FRR's `neighbor eth1 interface`) learns the node's link-local address, and it
// receives the router's Router Advertisements to learn the router's link-local address, the
// address the BGP session is opened to.
//
// The advertisements carry a router lifetime of 0: hosts on the link never take the node for a
// default router (RFC 4861, section 6.3.4), and they carry no prefixes. The parsing of received
// messages is github.com/mdlayher/ndp's.
package routeradv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Defaults of Config.
const (
	// DefaultInterval is FRR's Router Advertisement interval on an interface with a BGP
	// unnumbered neighbour.
	DefaultInterval = 10 * time.Second
	// FastAdvertisements are sent one FastInterval apart when the sender starts (RFC 4861's
	// MAX_INITIAL_RTR_ADVERTISEMENTS), so that the router learns the node within seconds.
	FastAdvertisements = 3
	FastInterval       = time.Second
	// retryInterval is the wait before the interface is opened again after it could not be
	// (missing, down, or its link-local address still tentative).
	retryInterval = time.Second
)

// Config is what Run does on one interface.
type Config struct {
	// Interface is the name of the interface to the router.
	Interface string
	// Interval between advertisements after the first FastAdvertisements; DefaultInterval when 0.
	Interval time.Duration
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
	// OnNeighbor is called with the router's link-local address (with the interface as zone)
	// when it is first learnt and each time a Router Advertisement comes from another address.
	// It is called from Run's goroutine and must not block.
	OnNeighbor func(netip.Addr)
}

// Run sends Router Advertisements on cfg.Interface and learns the router from the ones it
// receives until ctx ends. It retries every second while the interface cannot be used (it is
// missing, or has no usable link-local address yet). It returns ctx's error.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("interface", cfg.Interface)
	var tr Tracker
	var lastErr string
	for ctx.Err() == nil {
		err := runOnce(ctx, cfg, log, &tr)
		if ctx.Err() != nil {
			break
		}
		if err != nil && err.Error() != lastErr {
			log.Warn("cannot send or receive Router Advertisements on the interface of a BGP unnumbered peer; retrying every second", "err", err)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(retryInterval):
		}
	}
	return ctx.Err()
}

// runOnce opens the interface and serves it until ctx ends or the socket fails.
func runOnce(ctx context.Context, cfg Config, log *slog.Logger, tr *Tracker) error {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return fmt.Errorf("looking up interface %s: %w", cfg.Interface, err)
	}
	conn, self, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("opening an ICMPv6 socket on %s: %w", cfg.Interface, err)
	}
	defer func() { _ = conn.Close() }()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	if err := conn.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("filtering ICMPv6 on %s: %w", cfg.Interface, err)
	}
	if err := conn.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		return fmt.Errorf("asking for the hop limit of received packets on %s: %w", cfg.Interface, err)
	}
	log.Info("sending Router Advertisements for BGP unnumbered", "source", self)

	readErr := make(chan error, 1)
	go func() { readErr <- receive(conn, cfg, log, tr) }()
	stop := func() error {
		_ = conn.Close()
		return <-readErr
	}

	ra := Advertisement(ifi.HardwareAddr)
	// A Router Solicitation asks the router for an advertisement now rather than at its next
	// interval.
	rs := &ndp.RouterSolicitation{}
	if len(ifi.HardwareAddr) > 0 {
		rs.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}
	}
	if err := conn.WriteTo(rs, nil, netip.IPv6LinkLocalAllRouters()); err != nil {
		log.Debug("sending a Router Solicitation", "err", err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for sent := 0; ; sent++ {
		select {
		case <-ctx.Done():
			_ = stop()
			return nil
		case err := <-readErr:
			return err
		case <-t.C:
		}
		if err := conn.WriteTo(ra, nil, netip.IPv6LinkLocalAllNodes()); err != nil {
			_ = stop()
			return fmt.Errorf("sending a Router Advertisement on %s: %w", cfg.Interface, err)
		}
		t.Reset(NextInterval(sent, cfg.Interval))
	}
}

// receive reads Router Advertisements until the socket is closed.
func receive(conn *ndp.Conn, cfg Config, log *slog.Logger, tr *Tracker) error {
	for {
		m, cm, src, err := conn.ReadFrom()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading ICMPv6 on %s: %w", cfg.Interface, err)
		}
		if _, ok := m.(*ndp.RouterAdvertisement); !ok {
			continue
		}
		hop := -1
		if cm != nil {
			hop = cm.HopLimit
		}
		if addr, changed := tr.Observe(src.WithZone(cfg.Interface), hop); changed {
			log.Info("learnt the link-local address of the BGP unnumbered router", "router", addr)
			if cfg.OnNeighbor != nil {
				cfg.OnNeighbor(addr)
			}
		}
	}
}

// Advertisement is the Router Advertisement the node sends: router lifetime 0 (not a default
// router), no prefixes, and the interface's link-layer address when it has one.
func Advertisement(mac net.HardwareAddr) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 0}
	if len(mac) > 0 {
		ra.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}
	}
	return ra
}

// NextInterval is the wait after the advertisement numbered sent (from 0): FastInterval for the
// first FastAdvertisements, interval after.
func NextInterval(sent int, interval time.Duration) time.Duration {
	if sent+1 < FastAdvertisements {
		return FastInterval
	}
	return interval
}

// Tracker keeps the router's link-local address learnt from Router Advertisements. The link to
// a BGP unnumbered peer is point to point: the last valid advertisement names the router.
type Tracker struct {
	addr netip.Addr
}

// Observe records a Router Advertisement from src received with hopLimit (-1 when unknown). It
// ignores one that RFC 4861 (section 6.1.2) says to discard: not from a link-local address, or
// with a hop limit other than 255. It returns the router's address and whether it changed.
func (t *Tracker) Observe(src netip.Addr, hopLimit int) (netip.Addr, bool) {
	if !src.Is6() || !src.IsLinkLocalUnicast() || (hopLimit >= 0 && hopLimit != ndp.HopLimit) {
		return t.addr, false
	}
	if src == t.addr {
		return t.addr, false
	}
	t.addr = src
	return src, true
}

// Router returns the router's address; zero while none was learnt.
func (t *Tracker) Router() netip.Addr { return t.addr }
