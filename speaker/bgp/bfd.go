package bgp

// The sockets of BFD (RFC 5881, single hop) around the pure state machine of package
// speaker/bfd: one listener per address family on UDP port 3784 for the whole speaker (every
// GoBGP server's sessions share it), and per session a sending socket with a source port from
// 49152-65535 and TTL 255. Received packets count only with TTL 255 (a single-hop peer cannot
// send anything else; GTSM, RFC 5082) and from the session's peer; they go to their session by
// Your Discriminator, or by the peer's address while the peer does not know ours yet. Each
// session runs its state machine on one goroutine.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/herald-lb/herald/speaker/bfd"
)

// BFD ports and TTL of RFC 5881.
const (
	bfdPort        = 3784
	bfdSrcPortMin  = 49152
	bfdSrcPortMax  = 65535
	bfdTTL         = 255
	bfdRxQueueSize = 16
)

func (b BFD) config() bfd.Config {
	return bfd.Config{DesiredMinTx: b.TransmitInterval, RequiredMinRx: b.ReceiveInterval, DetectMult: b.DetectMultiplier, Passive: b.Passive}
}

// bfdEndpoint is the speaker's BFD: the listeners and the sessions they feed.
type bfdEndpoint struct {
	log *slog.Logger
	// port is the UDP port the listeners bind, peerPort the one packets are sent to; both
	// bfdPort but in tests.
	port, peerPort int

	mu        sync.Mutex
	listeners map[bool]bfdListener // by is4
	byDiscr   map[uint32]*bfdLink
	byAddr    map[netip.Addr]*bfdLink
}

// bfdListener receives BFD packets: the source address and TTL (hop limit) of each.
type bfdListener interface {
	ReadFrom(b []byte) (n int, src netip.Addr, ttl int, err error)
	Close() error
}

func newBFDEndpoint(log *slog.Logger) *bfdEndpoint {
	return &bfdEndpoint{log: log, port: bfdPort, peerPort: bfdPort, listeners: map[bool]bfdListener{},
		byDiscr: map[uint32]*bfdLink{}, byAddr: map[netip.Addr]*bfdLink{}}
}

// bfdLink is one BFD session: its state machine, sending socket and goroutine.
type bfdLink struct {
	ep       *bfdEndpoint
	peer     netip.Addr // unmapped, without zone: the key of byAddr
	dst      *net.UDPAddr
	conn     *net.UDPConn
	discr    uint32
	log      *slog.Logger
	onChange func(st bfd.State, failure bool, diag bfd.Diag)

	rx      chan bfd.Packet
	stop    chan struct{}
	stopped chan struct{}

	mu    sync.Mutex
	state bfd.State
}

// open starts a BFD session with p; onChange is called (on the session's goroutine) at every
// state change. The error says why BFD cannot run (its sockets).
func (ep *bfdEndpoint) open(p Peer, log *slog.Logger, onChange func(st bfd.State, failure bool, diag bfd.Diag)) (*bfdLink, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	addr := p.Address.Unmap()
	key := addr.WithZone("")
	if ep.byAddr[key] != nil {
		return nil, fmt.Errorf("another session to %v already runs BFD", addr)
	}
	is4 := addr.Is4()
	if ep.listeners[is4] == nil {
		l, err := listenBFD(is4, ep.port)
		if err != nil {
			return nil, fmt.Errorf("listening for BFD on UDP port %d: %w", ep.port, err)
		}
		ep.listeners[is4] = l
		go ep.serve(l)
	}
	conn, err := bfdSender(p.SourceAddress.Unmap(), is4)
	if err != nil {
		ep.closeIdleListeners()
		return nil, err
	}
	discr := rand.Uint32()
	for discr == 0 || ep.byDiscr[discr] != nil {
		discr = rand.Uint32()
	}
	s, err := bfd.NewSession(p.BFD.config(), discr, time.Now(), nil)
	if err != nil {
		_ = conn.Close()
		ep.closeIdleListeners()
		return nil, err
	}
	l := &bfdLink{ep: ep, peer: key, conn: conn, discr: discr, log: log, onChange: onChange,
		dst:  &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone(), Port: ep.peerPort},
		rx:   make(chan bfd.Packet, bfdRxQueueSize),
		stop: make(chan struct{}), stopped: make(chan struct{}), state: bfd.StateDown}
	ep.byDiscr[discr], ep.byAddr[key] = l, l
	go l.run(s)
	return l, nil
}

// closeIdleListeners closes the listeners no session needs. Callers hold ep.mu.
func (ep *bfdEndpoint) closeIdleListeners() {
	for is4, l := range ep.listeners {
		used := false
		for a := range ep.byAddr {
			used = used || a.Is4() == is4
		}
		if !used {
			_ = l.Close()
			delete(ep.listeners, is4)
		}
	}
}

// serve reads packets from l until it is closed and hands them to their sessions.
func (ep *bfdEndpoint) serve(l bfdListener) {
	buf := make([]byte, 512)
	for {
		n, src, ttl, err := l.ReadFrom(buf)
		if err != nil {
			ep.mu.Lock()
			open := slices.Contains(slices.Collect(maps.Values(ep.listeners)), l)
			ep.mu.Unlock()
			if !open || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if ttl != bfdTTL {
			continue
		}
		p, err := bfd.ParsePacket(buf[:n])
		if err != nil {
			continue
		}
		src = src.Unmap().WithZone("")
		ep.mu.Lock()
		link := ep.byAddr[src]
		if p.YourDiscriminator != 0 {
			link = ep.byDiscr[p.YourDiscriminator]
		}
		ep.mu.Unlock()
		if link == nil || link.peer != src {
			continue
		}
		select {
		case link.rx <- p:
		default: // the session is behind; BFD tolerates loss
		}
	}
}

// run is the session's goroutine: it feeds the state machine and sends what it says.
func (l *bfdLink) run(s *bfd.Session) {
	defer close(l.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		if d := s.Deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
		var out bfd.Output
		select {
		case <-l.stop:
			l.send(s.AdminDown(time.Now()).Send)
			return
		case p := <-l.rx:
			out = s.Receive(p, time.Now())
		case <-timer.C:
			out = s.Timeout(time.Now())
		}
		l.send(out.Send)
		if out.Changed {
			l.mu.Lock()
			l.state = out.State
			l.mu.Unlock()
			l.log.Info("BFD session state changed", "state", out.State, "diagnostic", s.Diag(), "failure", out.Failure)
			l.onChange(out.State, out.Failure, s.Diag())
		}
	}
}

func (l *bfdLink) send(ps []bfd.Packet) {
	var buf [bfd.PacketLen]byte
	for _, p := range ps {
		// Errors (no route, ICMP unreachable) are BFD's business: the peer misses packets.
		_, _ = l.conn.WriteToUDP(bfd.AppendPacket(buf[:0], p), l.dst)
	}
}

// State returns the session's BFD state.
func (l *bfdLink) State() bfd.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// close sends AdminDown to the peer (so that it does not take the end for a failure), stops the
// goroutine and closes the sockets the session no longer needs.
func (l *bfdLink) close() {
	close(l.stop)
	<-l.stopped
	_ = l.conn.Close()
	ep := l.ep
	ep.mu.Lock()
	defer ep.mu.Unlock()
	delete(ep.byDiscr, l.discr)
	if ep.byAddr[l.peer] == l {
		delete(ep.byAddr, l.peer)
	}
	ep.closeIdleListeners()
}

// bfdSender opens a session's sending socket: source port from 49152-65535, TTL 255.
func bfdSender(src netip.Addr, is4 bool) (*net.UDPConn, error) {
	network := "udp6"
	if is4 {
		network = "udp4"
	}
	var ip net.IP
	if src.IsValid() {
		ip = src.AsSlice()
	}
	var err error
	for range 32 {
		var c *net.UDPConn
		port := bfdSrcPortMin + rand.IntN(bfdSrcPortMax-bfdSrcPortMin+1)
		c, err = net.ListenUDP(network, &net.UDPAddr{IP: ip, Port: port, Zone: src.Zone()})
		if err != nil {
			continue
		}
		if is4 {
			err = ipv4.NewConn(c).SetTTL(bfdTTL)
		} else {
			err = ipv6.NewConn(c).SetHopLimit(bfdTTL)
		}
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("setting the TTL of the BFD socket: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("opening a BFD socket with a source port from %d-%d: %w", bfdSrcPortMin, bfdSrcPortMax, err)
}

// listenBFD opens the listener of a family on the UDP port (3784), with the TTL of received
// packets.
func listenBFD(is4 bool, port int) (bfdListener, error) {
	if is4 {
		c, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return nil, err
		}
		pc := ipv4.NewPacketConn(c)
		if err := pc.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("asking for the TTL of received packets: %w", err)
		}
		return listener4{pc}, nil
	}
	c, err := net.ListenPacket("udp6", fmt.Sprintf("[::]:%d", port))
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("asking for the hop limit of received packets: %w", err)
	}
	return listener6{pc}, nil
}

type listener4 struct{ pc *ipv4.PacketConn }

func (l listener4) ReadFrom(b []byte) (int, netip.Addr, int, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	return n, udpAddr(src), ttlOf(cm != nil, func() int { return cm.TTL }), err
}

func (l listener4) Close() error { return l.pc.Close() }

type listener6 struct{ pc *ipv6.PacketConn }

func (l listener6) ReadFrom(b []byte) (int, netip.Addr, int, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	return n, udpAddr(src), ttlOf(cm != nil, func() int { return cm.HopLimit }), err
}

func (l listener6) Close() error { return l.pc.Close() }

func ttlOf(ok bool, f func() int) int {
	if !ok {
		return -1
	}
	return f()
}

func udpAddr(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort().Addr()
	}
	return netip.Addr{}
}

// bfdContext is the context of the BGP calls BFD makes: bounded, not tied to a request.
func bfdContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
