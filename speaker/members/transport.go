package members

import (
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Traffic counts what this member's memberlist sent since Start: every UDP datagram (probes,
// acks, gossip; one datagram may carry several messages) and every byte written to TCP streams
// (joins, push/pull state exchanges, fallback pings), both those it opened and those it accepted.
type Traffic struct {
	// UDPPackets and UDPBytes are the datagrams sent and their payload bytes.
	UDPPackets, UDPBytes uint64
	// TCPStreams is the number of TCP connections opened; TCPBytes what was written to any.
	TCPStreams, TCPBytes uint64
}

// Sub returns t - o, for rates over an interval.
func (t Traffic) Sub(o Traffic) Traffic {
	return Traffic{
		UDPPackets: t.UDPPackets - o.UDPPackets, UDPBytes: t.UDPBytes - o.UDPBytes,
		TCPStreams: t.TCPStreams - o.TCPStreams, TCPBytes: t.TCPBytes - o.TCPBytes,
	}
}

// Traffic returns what this member sent since Start (zero before).
func (m *Members) Traffic() Traffic {
	m.mu.Lock()
	tr := m.transport
	m.mu.Unlock()
	if tr == nil {
		return Traffic{}
	}
	return tr.traffic()
}

// countingTransport is memberlist's own UDP/TCP transport with counters on everything sent.
type countingTransport struct {
	*memberlist.NetTransport
	streams  chan net.Conn
	stop     chan struct{} // closed by Shutdown: accepted streams are closed, not handed on
	closed   chan struct{} // closed when the sockets are closed: the pump ends
	pumpDone chan struct{}
	once     sync.Once
	err      error

	udpPackets, udpBytes, tcpStreams, tcpBytes atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(bindAddr string, port int, logger *log.Logger) (*countingTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bindAddr}, BindPort: port, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the memberlist sockets: %w", err)
	}
	t := &countingTransport{
		NetTransport: nt, streams: make(chan net.Conn),
		stop: make(chan struct{}), closed: make(chan struct{}), pumpDone: make(chan struct{}),
	}
	go t.pump()
	return t, nil
}

// pump hands the accepted streams to memberlist, wrapped so that replies are counted too. After
// Shutdown began it closes them instead, until the listener is gone: memberlist no longer reads
// the channel then, and a listener blocked on handing over a stream would never end.
func (t *countingTransport) pump() {
	defer close(t.pumpDone)
	in := t.NetTransport.StreamCh()
	for {
		select {
		case <-t.closed:
			return
		case c := <-in:
			select {
			case t.streams <- &countingConn{Conn: c, t: t}:
			case <-t.stop:
				_ = c.Close()
			}
		}
	}
}

func (t *countingTransport) traffic() Traffic {
	return Traffic{
		UDPPackets: t.udpPackets.Load(), UDPBytes: t.udpBytes.Load(),
		TCPStreams: t.tcpStreams.Load(), TCPBytes: t.tcpBytes.Load(),
	}
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ts, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		t.udpPackets.Add(1)
		t.udpBytes.Add(uint64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	t.tcpStreams.Add(1)
	return &countingConn{Conn: c, t: t}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *countingTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.stop)
		t.err = t.NetTransport.Shutdown()
		close(t.closed)
		<-t.pumpDone
	})
	return t.err
}

// countingConn counts the bytes written to a memberlist TCP stream.
type countingConn struct {
	net.Conn
	t *countingTransport
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.t.tcpBytes.Add(uint64(n))
	return n, err
}
