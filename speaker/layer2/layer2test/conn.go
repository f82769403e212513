// Package layer2test provides in-memory doubles for the I/O boundary of package layer2: a Conn that
// carries whole Ethernet frames and records multicast group membership. It works inside
// testing/synctest bubbles (it blocks only on channels).
package layer2test

import (
	"net"
	"sync"
)

// Frame is a frame a responder wrote and the hardware address it was written to.
type Frame struct {
	Data []byte
	To   net.HardwareAddr
}

// Conn is an in-memory link-layer socket. It implements layer2.Conn and layer2.GroupConn.
// Create it with NewConn (or inside the synctest bubble that uses it).
type Conn struct {
	in     chan []byte
	closed chan struct{}
	once   sync.Once

	mu      sync.Mutex
	written []Frame
	groups  map[string]int
}

// NewConn returns an open Conn with no frames queued.
func NewConn() *Conn {
	return &Conn{in: make(chan []byte, 64), closed: make(chan struct{}), groups: map[string]int{}}
}

// Deliver queues a frame for the responder to read, as if it had arrived on the wire. It returns
// false if the Conn is closed. It blocks when 64 frames are already queued.
func (c *Conn) Deliver(frame []byte) bool {
	b := append([]byte(nil), frame...)
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case c.in <- b:
		return true
	case <-c.closed:
		return false
	}
}

// Take returns the frames written since the last Take and forgets them.
func (c *Conn) Take() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.written
	c.written = nil
	return out
}

// Groups returns the multicast addresses currently joined, with how many times each was joined.
func (c *Conn) Groups() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for g, n := range c.groups {
		out[g] = n
	}
	return out
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// ReadFrom implements net.PacketConn's ReadFrom: it blocks until a frame is delivered or the Conn closes.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case f := <-c.in:
		return copy(b, f), nil, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo records the frame.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.Closed() {
		return 0, net.ErrClosed
	}
	f := Frame{Data: append([]byte(nil), b...)}
	if a, ok := addr.(interface{ String() string }); ok && addr != nil {
		if hw, err := net.ParseMAC(a.String()); err == nil {
			f.To = hw
		}
	}
	c.mu.Lock()
	c.written = append(c.written, f)
	c.mu.Unlock()
	return len(b), nil
}

// Close makes pending and future reads fail with net.ErrClosed.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// JoinGroup records a membership of hw.
func (c *Conn) JoinGroup(hw net.HardwareAddr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups[hw.String()]++
	return nil
}

// LeaveGroup drops a membership of hw.
func (c *Conn) LeaveGroup(hw net.HardwareAddr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[hw.String()]--; c.groups[hw.String()] <= 0 {
		delete(c.groups, hw.String())
	}
	return nil
}
