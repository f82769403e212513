package bgp

// The sockets of BFD around the pure state machine and demultiplexer of package speaker/bfd:
// one listener per address family and kind for the whole speaker (every GoBGP server's sessions
// share it), on UDP port 3784 for single-hop sessions (RFC 5881) and 4784 for multi-hop ones
// (RFC 5883, a peer with EBGPMultiHop), and per session a sending socket with a source port from
// 49152-65535 and TTL 255. Each received packet goes with its source and destination addresses
// and TTL to bfd.Demux, which finds its session (by Your Discriminator, or by the addresses while
// the peer does not know ours yet) and applies the TTL check: 255 for single hop (GTSM, RFC
// 5082), the profile's minimum TTL for multi-hop. Each session runs its state machine on one
// goroutine.

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

// BFD source ports (RFC 5881 section 4, RFC 5883 section 5) and the receive queue of a session.
const (
	bfdSrcPortMin  = 49152
	bfdSrcPortMax  = 65535
	bfdRxQueueSize = 16
)

func (b BFD) config() bfd.Config {
	return bfd.Config{DesiredMinTx: b.TransmitInterval, RequiredMinRx: b.ReceiveInterval, DetectMult: b.DetectMultiplier, Passive: b.Passive}
}

// bfdEndpoint is the speaker's BFD: the listeners and the sessions they feed.
type bfdEndpoint struct {
	log *slog.Logger
	// ports are, for single hop (false) and multi-hop (true), the UDP port the listeners bind
	// and the one packets are sent to: bfd.PortSingleHop and bfd.PortMultiHop but in tests.
	ports map[bool]bfdPorts

	mu        sync.Mutex
	listeners map[bfdListenerKey]bfdListener
	demux     bfd.Demux[*bfdLink]
}

type bfdPorts struct{ listen, peer int }

type bfdListenerKey struct{ is4, multiHop bool }

// bfdListener receives BFD packets: the source and destination addresses and the TTL (hop
// limit, -1 when unknown) of each.
type bfdListener interface {
	ReadFrom(b []byte) (n int, src, dst netip.Addr, ttl int, err error)
	Close() error
}

func newBFDEndpoint(log *slog.Logger) *bfdEndpoint {
	return &bfdEndpoint{log: log, listeners: map[bfdListenerKey]bfdListener{},
		ports: map[bool]bfdPorts{false: {bfd.PortSingleHop, bfd.PortSingleHop}, true: {bfd.PortMultiHop, bfd.PortMultiHop}}}
}

// bfdLink is one BFD session: its state machine, sending socket and goroutine.
type bfdLink struct {
	ep       *bfdEndpoint
	key      bfd.Key
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

// open starts a BFD session with p: multi-hop (RFC 5883) when p.EBGPMultiHop, else single
// hop (RFC 5881). onChange is called (on the session's goroutine) at every state change. The
// error says why BFD cannot run (another session with the same addresses, its sockets).
func (ep *bfdEndpoint) open(p Peer, log *slog.Logger, onChange func(st bfd.State, failure bool, diag bfd.Diag)) (*bfdLink, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	addr := p.Address.Unmap()
	key := bfd.Key{MultiHop: p.EBGPMultiHop, Local: p.SourceAddress, Remote: addr}
	if ep.demux.Has(key) {
		return nil, fmt.Errorf("another session already runs BFD (%v)", key)
	}
	is4 := addr.Is4()
	ports := ep.ports[key.MultiHop]
	lk := bfdListenerKey{is4: is4, multiHop: key.MultiHop}
	if ep.listeners[lk] == nil {
		l, err := listenBFD(is4, ports.listen)
		if err != nil {
			return nil, fmt.Errorf("listening for BFD on UDP port %d: %w", ports.listen, err)
		}
		ep.listeners[lk] = l
		go ep.serve(l, key.MultiHop)
	}
	conn, err := bfdSender(p.SourceAddress.Unmap(), is4)
	if err != nil {
		ep.closeIdleListeners()
		return nil, err
	}
	discr := rand.Uint32()
	for discr == 0 || ep.demux.Used(discr) {
		discr = rand.Uint32()
	}
	s, err := bfd.NewSession(p.BFD.config(), discr, time.Now(), nil)
	if err != nil {
		_ = conn.Close()
		ep.closeIdleListeners()
		return nil, err
	}
	l := &bfdLink{ep: ep, key: key, conn: conn, discr: discr, log: log, onChange: onChange,
		dst:  &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone(), Port: ports.peer},
		rx:   make(chan bfd.Packet, bfdRxQueueSize),
		stop: make(chan struct{}), stopped: make(chan struct{}), state: bfd.StateDown}
	if err := ep.demux.Add(key, discr, p.BFD.MinimumTTL, l); err != nil { // checked above: cannot happen
		_ = conn.Close()
		ep.closeIdleListeners()
		return nil, err
	}
	go l.run(s)
	return l, nil
}

// closeIdleListeners closes the listeners no session needs. Callers hold ep.mu.
func (ep *bfdEndpoint) closeIdleListeners() {
	for lk, l := range ep.listeners {
		used := false
		for k := range ep.demux.Keys() {
			used = used || k.Remote.Is4() == lk.is4 && k.MultiHop == lk.multiHop
		}
		if !used {
			_ = l.Close()
			delete(ep.listeners, lk)
		}
	}
}

// serve reads packets from l (the multi-hop port's or the single-hop one's) until it is closed
// and hands them to their sessions.
func (ep *bfdEndpoint) serve(l bfdListener, multiHop bool) {
	buf := make([]byte, 512)
	for {
		n, src, dst, ttl, err := l.ReadFrom(buf)
		if err != nil {
			ep.mu.Lock()
			open := slices.Contains(slices.Collect(maps.Values(ep.listeners)), l)
			ep.mu.Unlock()
			if !open || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p, err := bfd.ParsePacket(buf[:n])
		if err != nil {
			continue
		}
		ep.mu.Lock()
		link, err := ep.demux.Lookup(bfd.Arrival{MultiHop: multiHop, Src: src, Dst: dst, TTL: ttl}, p)
		ep.mu.Unlock()
		if err != nil {
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
	ep.demux.Remove(l.discr)
	ep.closeIdleListeners()
}

// bfdSender opens a session's sending socket: source port from 49152-65535, TTL 255 (single
// and multi-hop alike).
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
			err = ipv4.NewConn(c).SetTTL(bfd.SendTTL)
		} else {
			err = ipv6.NewConn(c).SetHopLimit(bfd.SendTTL)
		}
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("setting the TTL of the BFD socket: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("opening a BFD socket with a source port from %d-%d: %w", bfdSrcPortMin, bfdSrcPortMax, err)
}

// listenBFD opens the listener of a family on the UDP port (3784 or 4784), with the destination
// address and TTL of received packets.
func listenBFD(is4 bool, port int) (bfdListener, error) {
	if is4 {
		c, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return nil, err
		}
		pc := ipv4.NewPacketConn(c)
		if err := pc.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("asking for the TTL and destination of received packets: %w", err)
		}
		return listener4{pc}, nil
	}
	c, err := net.ListenPacket("udp6", fmt.Sprintf("[::]:%d", port))
	if err != nil {
		return nil, err
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("asking for the hop limit and destination of received packets: %w", err)
	}
	return listener6{pc}, nil
}

type listener4 struct{ pc *ipv4.PacketConn }

func (l listener4) ReadFrom(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	if cm == nil {
		return n, udpAddr(src), netip.Addr{}, -1, err
	}
	dst, _ := netip.AddrFromSlice(cm.Dst)
	return n, udpAddr(src), dst, cm.TTL, err
}

func (l listener4) Close() error { return l.pc.Close() }

type listener6 struct{ pc *ipv6.PacketConn }

func (l listener6) ReadFrom(b []byte) (int, netip.Addr, netip.Addr, int, error) {
	n, cm, src, err := l.pc.ReadFrom(b)
	if cm == nil {
		return n, udpAddr(src), netip.Addr{}, -1, err
	}
	dst, _ := netip.AddrFromSlice(cm.Dst)
	return n, udpAddr(src), dst, cm.HopLimit, err
}

func (l listener6) Close() error { return l.pc.Close() }

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
