package members

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// The membership simulation runs real memberlist instances, configured by this package exactly as
// the speaker configures them (timers, encryption, metadata), on an in-memory network inside a
// testing/synctest bubble. Time in the bubble is virtual: it advances only when every goroutine is
// blocked, so hundreds of members run at their production timers on any machine, and what is
// measured is the protocol (memberlist's code and Herald's timers), not this machine's CPU.
//
// The network delivers each datagram after a latency and drops a share of them; streams (joins,
// push/pull, fallback pings) are in-memory pipes. A killed member's transport goes silent at once
// (as a host whose speaker was killed: its packets stop, its open connections end, new ones are
// refused).
//
// The CPU is not simulated: processing takes no virtual time. What a CPU limit does to a speaker
// is modelled instead as freezes: while a member is frozen (a CFS quota spent, a long GC pause),
// what it sends and what it receives waits until the freeze ends, while its timers keep running,
// as for a process that is not scheduled.

// simNet is the in-memory network.
type simNet struct {
	mu    sync.Mutex
	nodes map[string]*simEndpoint
	rng   *rand.Rand
	// loss is the share of datagrams dropped; latency returns each datagram's delay.
	loss    float64
	latency func(r *rand.Rand) time.Duration
	// frozen returns until when a member is frozen at t (zero or before t: not frozen).
	frozen func(member int, t time.Time) time.Time
	// readWhileFrozen delivers datagrams to a frozen member at once rather than when it thaws
	// (what it sends still waits): see TestBenchMembershipSimulation.
	readWhileFrozen bool
}

func newSimNet(seed uint64) *simNet {
	return &simNet{nodes: map[string]*simEndpoint{}, rng: rand.New(rand.NewPCG(seed, 1)),
		latency: func(*rand.Rand) time.Duration { return 200 * time.Microsecond }}
}

// simEndpoint is one member's place on the network; it is the member's memberlist transport.
type simEndpoint struct {
	net     *simNet
	index   int
	addr    string
	ip      net.IP
	port    int
	packets chan *memberlist.Packet
	streams chan net.Conn
	down    atomic.Bool
	// conns are the ends of streams this member holds open: a killed process's sockets are
	// closed by its kernel, so the other ends see the connection end at once.
	connsMu sync.Mutex
	conns   map[*countingPipe]bool

	udpPackets, udpBytes, tcpStreams, tcpBytes atomic.Uint64
}

var _ trafficTransport = (*simEndpoint)(nil)

func (n *simNet) endpoint(index int, ip netip.Addr, port int) *simEndpoint {
	e := &simEndpoint{net: n, index: index, addr: netip.AddrPortFrom(ip, uint16(port)).String(), ip: net.IP(ip.AsSlice()), port: port,
		packets: make(chan *memberlist.Packet, 4096), streams: make(chan net.Conn, 64), conns: map[*countingPipe]bool{}}
	n.mu.Lock()
	n.nodes[e.addr] = e
	n.mu.Unlock()
	return e
}

func (n *simNet) lookup(addr string) *simEndpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[addr]
}

// thawed returns when member i may act at t: t itself unless it is frozen.
func (n *simNet) thawed(i int, t time.Time) time.Time {
	n.mu.Lock()
	frozen := n.frozen
	n.mu.Unlock()
	if frozen == nil {
		return t
	}
	if until := frozen(i, t); until.After(t) {
		return until
	}
	return t
}

func (e *simEndpoint) FinalAdvertiseAddr(string, int) (net.IP, int, error) { return e.ip, e.port, nil }
func (e *simEndpoint) PacketCh() <-chan *memberlist.Packet                 { return e.packets }
func (e *simEndpoint) StreamCh() <-chan net.Conn                           { return e.streams }

func (e *simEndpoint) WriteTo(b []byte, addr string) (time.Time, error) {
	return e.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (e *simEndpoint) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if e.down.Load() {
		return now, net.ErrClosed
	}
	e.udpPackets.Add(1)
	e.udpBytes.Add(uint64(len(b)))
	n := e.net
	n.mu.Lock()
	lost := n.rng.Float64() < n.loss
	lat := n.latency(n.rng)
	n.mu.Unlock()
	if lost {
		return now, nil
	}
	buf := bytes.Clone(b)
	from := &net.UDPAddr{IP: e.ip, Port: e.port}
	// A frozen sender sends when it runs again; a frozen receiver reads when it runs again.
	at := n.thawed(e.index, now).Add(lat)
	var deliver func()
	deliver = func() {
		dst := n.lookup(a.Addr)
		if dst == nil || dst.down.Load() {
			return
		}
		n.mu.Lock()
		readAnyway := n.readWhileFrozen
		n.mu.Unlock()
		if t := n.thawed(dst.index, time.Now()); t.After(time.Now()) && !readAnyway {
			time.AfterFunc(time.Until(t), deliver)
			return
		}
		select {
		case dst.packets <- &memberlist.Packet{Buf: buf, From: from, Timestamp: time.Now()}:
		default: // the receive buffer is full: dropped, as UDP would
		}
	}
	time.AfterFunc(at.Sub(now), deliver)
	return now, nil
}

func (e *simEndpoint) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return e.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (e *simEndpoint) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dst := e.net.lookup(a.Addr)
	if e.down.Load() || dst == nil || dst.down.Load() {
		// The host is up but nothing listens: the connection is refused at once.
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errRefused)
	}
	e.tcpStreams.Add(1)
	// A frozen end connects when it runs again (a frozen listener accepts late).
	now := time.Now()
	if at := e.net.thawed(dst.index, e.net.thawed(e.index, now)); at.After(now) {
		if at.Sub(now) >= timeout {
			time.Sleep(timeout)
			return nil, fmt.Errorf("dial %s: timeout", a.Addr)
		}
		time.Sleep(at.Sub(now))
	}
	mine, theirs := net.Pipe()
	their, my := dst.hold(theirs), e.hold(mine)
	select {
	case dst.streams <- their:
	case <-time.After(timeout):
		_ = my.Close()
		_ = their.Close()
		return nil, fmt.Errorf("dial %s: timeout", a.Addr)
	}
	if dst.down.Load() { // killed meanwhile: it never accepts
		_ = their.Close()
	}
	return my, nil
}

// hold wraps one end of a stream that e holds.
func (e *simEndpoint) hold(c net.Conn) *countingPipe {
	p := &countingPipe{Conn: c, sent: &e.tcpBytes, owner: e}
	e.connsMu.Lock()
	e.conns[p] = true
	e.connsMu.Unlock()
	return p
}

var errRefused = errors.New("connection refused")

type countingPipe struct {
	net.Conn
	sent  *atomic.Uint64
	owner *simEndpoint
}

func (c *countingPipe) Close() error {
	c.owner.connsMu.Lock()
	delete(c.owner.conns, c)
	c.owner.connsMu.Unlock()
	return c.Conn.Close()
}

func (c *countingPipe) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(uint64(n))
	return n, err
}

func (e *simEndpoint) Shutdown() error {
	e.down.Store(true)
	e.connsMu.Lock()
	conns := make([]*countingPipe, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.connsMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

func (e *simEndpoint) traffic() Traffic {
	return Traffic{UDPPackets: e.udpPackets.Load(), UDPBytes: e.udpBytes.Load(), TCPStreams: e.tcpStreams.Load(), TCPBytes: e.tcpBytes.Load()}
}

// simLog counts memberlist's log lines about suspicions and deaths. Members log memberlist's
// lines at debug level.
type simLog struct {
	suspicions, refutations, deaths atomic.Int64
	trace                           func(slog.Record)
}

func (l *simLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *simLog) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.HasPrefix(r.Message, "Suspect "):
		l.suspicions.Add(1)
	case strings.HasPrefix(r.Message, "Refuting a suspect message"):
		l.refutations.Add(1)
	case strings.HasPrefix(r.Message, "Marking "):
		l.deaths.Add(1)
		if l.trace != nil {
			l.trace(r)
		}
	}
	return nil
}
func (l *simLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *simLog) WithGroup(string) slog.Handler      { return l }

// simCluster is a simulated cluster of speakers' members.
type simCluster struct {
	t      *testing.T
	net    *simNet
	timers Timers
	log    *simLog
	ms     []*Members
	eps    []*simEndpoint

	mu sync.Mutex
	// gone records, for each member name, when each observer first saw it gone; goneAt every
	// time any observer saw it gone.
	gone   map[string]map[string]time.Time
	goneAt map[string][]time.Time
	dead   map[string]bool // members killed on purpose
}

func simName(i int) string { return fmt.Sprintf("m%04d", i) }

func simAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}) }

// newSimCluster starts n members with the given timers; they join in batches of 25, each through
// a random earlier member, the way a DaemonSet rollout adds speakers a few at a time, and the
// function returns when every member lists all of them.
func newSimCluster(t *testing.T, n int, timers Timers, net *simNet) *simCluster {
	t.Helper()
	c := &simCluster{t: t, net: net, timers: timers, log: &simLog{}, gone: map[string]map[string]time.Time{}, goneAt: map[string][]time.Time{}, dead: map[string]bool{}}
	logger := slog.New(c.log)
	meta := bytes.Repeat([]byte("m"), 64)
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range n {
		observer := simName(i)
		cfg := Config{NodeName: observer, BindAddr: simAddr(i), BindPort: DefaultPort, AdvertiseAddr: simAddr(i),
			SecretKey: keyA, Meta: meta, Timers: timers, Logger: logger,
			Notify: func(ev Event) {
				if ev.Kind != Gone {
					return
				}
				c.mu.Lock()
				if c.gone[ev.Node] == nil {
					c.gone[ev.Node] = map[string]time.Time{}
				}
				if _, seen := c.gone[ev.Node][observer]; !seen {
					c.gone[ev.Node][observer] = time.Now()
				}
				c.goneAt[ev.Node] = append(c.goneAt[ev.Node], time.Now())
				c.mu.Unlock()
			}}
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ep := net.endpoint(i, simAddr(i), DefaultPort)
		m.newTransport = func(string, int, *log.Logger) (trafficTransport, error) { return ep, nil }
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		c.ms = append(c.ms, m)
		c.eps = append(c.eps, ep)
		if i > 0 {
			peer := rng.IntN(i)
			if _, err := m.Join([]string{netip.AddrPortFrom(simAddr(peer), DefaultPort).String()}); err != nil {
				t.Fatalf("%s joining %s: %v", observer, simName(peer), err)
			}
		}
		if (i+1)%25 == 0 || i == n-1 {
			c.converge(i + 1)
		}
	}
	return c
}

// converge waits (virtual time) until the first k members list k members each.
func (c *simCluster) converge(k int) {
	c.t.Helper()
	deadline := time.Now().Add(time.Duration(k)*time.Second + c.timers.PushPullInterval)
	for {
		behind := 0
		for _, m := range c.ms[:k] {
			if len(m.Members()) != k {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d members do not list all of them", behind, k)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops member i as kill -9 would: its transport goes silent at once, without a Leave.
func (c *simCluster) kill(i int) {
	c.mu.Lock()
	c.dead[simName(i)] = true
	c.mu.Unlock()
	_ = c.eps[i].Shutdown()
	_ = c.ms[i].Shutdown()
}

// detection waits until every live member saw member i gone (or d passed), and returns, for each
// live member, how long after since it saw it; members that did not within d are reported as d.
func (c *simCluster) detection(i int, since time.Time, d time.Duration) []time.Duration {
	victim := simName(i)
	deadline := since.Add(d)
	for {
		c.mu.Lock()
		seen := len(c.gone[victim])
		c.mu.Unlock()
		if seen >= c.alive() || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for j := range c.ms {
		if c.dead[simName(j)] {
			continue
		}
		if at, ok := c.gone[victim][simName(j)]; ok {
			out = append(out, at.Sub(since))
		} else {
			out = append(out, d)
		}
	}
	return out
}

// alive counts the members not killed.
func (c *simCluster) alive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ms) - len(c.dead)
}

// falseDeaths counts the times a live member was declared dead: the Gone events about members
// that were not killed, those less than 5s apart counted as one (the others hearing of the same
// death).
func (c *simCluster) falseDeaths() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for name, ats := range c.goneAt {
		if c.dead[name] {
			continue
		}
		var last time.Time
		for _, at := range ats {
			if last.IsZero() || at.Sub(last) > 5*time.Second {
				n++
			}
			last = at
		}
	}
	return n
}

// traffic sums what the live members sent.
func (c *simCluster) traffic() (Traffic, int) {
	var s Traffic
	n := 0
	for i, m := range c.ms {
		if c.eps[i].down.Load() {
			continue
		}
		tr := m.Traffic()
		s.UDPPackets += tr.UDPPackets
		s.UDPBytes += tr.UDPBytes
		s.TCPBytes += tr.TCPBytes
		s.TCPStreams += tr.TCPStreams
		n++
	}
	return s, n
}

// rate returns what a live member sends per second over the next d, on average.
func (c *simCluster) rate(d time.Duration) rates {
	before, _ := c.traffic()
	time.Sleep(d)
	after, n := c.traffic()
	got := after.Sub(before)
	per := float64(n) * d.Seconds()
	return rates{pkts: float64(got.UDPPackets) / per, udpBytes: float64(got.UDPBytes) / per, tcpBytes: float64(got.TCPBytes) / per}
}

// shutdown stops every member and waits (virtual time) for memberlist's goroutines to end: a
// synctest bubble ends only when none is left.
func (c *simCluster) shutdown() {
	for _, m := range c.ms {
		_ = m.Shutdown()
	}
	time.Sleep(time.Minute)
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
