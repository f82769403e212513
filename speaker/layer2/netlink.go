package layer2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink reads one network namespace's interfaces, addresses and default routes, and watches them
// for changes, over rtnetlink (github.com/vishvananda/netlink). It is safe for concurrent use.
type Netlink struct {
	ns netns.NsHandle  // netns.None(): this process's namespace
	h  *netlink.Handle // for single requests (Index); dumps use a socket each
}

// OpenNetlink opens rtnetlink in the network namespace at nsPath (for example /run/netns/x), or in
// this process's own namespace when nsPath is empty. Close releases it.
func OpenNetlink(nsPath string) (*Netlink, error) {
	ns := netns.None()
	if nsPath != "" {
		var err error
		if ns, err = netns.GetFromPath(nsPath); err != nil {
			return nil, fmt.Errorf("opening network namespace %s: %w", nsPath, err)
		}
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		if ns.IsOpen() {
			_ = ns.Close()
		}
		return nil, fmt.Errorf("opening rtnetlink: %w", err)
	}
	return &Netlink{ns: ns, h: h}, nil
}

// Close releases the netlink sockets.
func (n *Netlink) Close() error {
	n.h.Close()
	if n.ns.IsOpen() {
		if err := n.ns.Close(); err != nil {
			return fmt.Errorf("closing network namespace: %w", err)
		}
	}
	return nil
}

// dumpRetries bounds the retries of a dump that the kernel interrupted because the tables changed
// meanwhile (NLM_F_DUMP_INTR), which happens under heavy interface churn.
const dumpRetries = 5

// Scan reads a snapshot of the interfaces, their addresses and the default routes.
//
// Each attempt uses a socket of its own: the netlink library gives up on an interrupted dump
// without reading the rest of it, and the kernel then refuses every later dump on that socket
// (EBUSY).
func (n *Netlink) Scan() (Host, error) {
	var err error
	for range dumpRetries {
		var h Host
		if h, err = n.scanOnce(); !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EBUSY) {
			return h, err
		}
	}
	return Host{}, err
}

func (n *Netlink) scanOnce() (Host, error) {
	nh, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return Host{}, fmt.Errorf("opening rtnetlink: %w", err)
	}
	defer nh.Close()
	return scan(nh)
}

func scan(nh *netlink.Handle) (Host, error) {
	links, err := nh.LinkList()
	if err != nil {
		return Host{}, fmt.Errorf("listing interfaces: %w", err)
	}
	addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return Host{}, fmt.Errorf("listing addresses: %w", err)
	}
	byIndex := map[int][]netip.Addr{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], ip.Unmap())
		}
	}
	var h Host
	for _, l := range links {
		at := l.Attrs()
		h.Links = append(h.Links, HostLink{
			Index:    at.Index,
			Name:     at.Name,
			Up:       at.Flags&net.FlagUp != 0 && (at.OperState == netlink.OperUp || at.OperState == netlink.OperUnknown),
			Ethernet: len(at.HardwareAddr) == 6,
			Loopback: at.Flags&net.FlagLoopback != 0,
			Addrs:    byIndex[at.Index],
		})
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := nh.RouteList(nil, fam)
		if err != nil {
			return Host{}, fmt.Errorf("listing routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			if r.LinkIndex > 0 {
				h.DefaultRoutes = append(h.DefaultRoutes, r.LinkIndex)
			}
			for _, hop := range r.MultiPath {
				if hop != nil && hop.LinkIndex > 0 {
					h.DefaultRoutes = append(h.DefaultRoutes, hop.LinkIndex)
				}
			}
		}
	}
	return h, nil
}

// Index returns the index of the interface called name, wrapping ErrInterfaceNotFound when there
// is none.
func (n *Netlink) Index(name string) (int, error) {
	l, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, fmt.Errorf("looking up interface %q: %w", name, ErrInterfaceNotFound)
		}
		return 0, fmt.Errorf("looking up interface %q: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// ErrInterfaceNotFound is returned (wrapped) for an interface name that does not exist.
var ErrInterfaceNotFound = errors.New("interface not found")

// watchPoll is how often Watch checks for the end of its context while no change arrives.
const watchPoll = 500 * time.Millisecond

// Watch calls changed after interfaces, addresses or routes changed, until ctx ends. It does not
// say what changed: callers Scan again. A burst of changes may be reported once, and a
// notification the kernel had to drop (receive buffer overrun under heavy churn) is reported as a
// change, so no change goes unnoticed. changed runs on Watch's goroutine; it should be quick.
func (n *Netlink) Watch(ctx context.Context, changed func()) error {
	s, err := nl.SubscribeAt(n.ns, netns.None(), unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
		unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
	if err != nil {
		return fmt.Errorf("subscribing to interface changes: %w", err)
	}
	defer s.Close()
	tv := unix.NsecToTimeval(watchPoll.Nanoseconds())
	if err := s.SetReceiveTimeout(&tv); err != nil {
		return fmt.Errorf("subscribing to interface changes: %w", err)
	}
	_ = s.SetReceiveBufferSize(1<<20, false) // best effort: overruns are handled below
	for ctx.Err() == nil {
		_, _, err := s.Receive()
		switch {
		case err == nil, errors.Is(err, unix.ENOBUFS):
			changed()
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EINVAL): // a message that did not parse: something changed
			changed()
		default:
			return fmt.Errorf("reading interface changes: %w", err)
		}
	}
	return nil
}
