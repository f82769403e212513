package bfd

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
)

// Ports and TTLs of single-hop (RFC 5881) and multi-hop (RFC 5883) BFD.
const (
	// PortSingleHop is the UDP destination port of single-hop Control packets.
	PortSingleHop = 3784
	// PortMultiHop is the UDP destination port of multi-hop Control packets.
	PortMultiHop = 4784
	// SendTTL is the TTL (hop limit) of every packet sent: RFC 5881 requires it for single hop;
	// for multi-hop it is what lets the receiver's minimum TTL count the routers in between
	// (FRR's bfdd sends 255 too).
	SendTTL = 255
	// DefaultMinimumTTL is the least TTL a multi-hop session accepts when its configuration sets
	// none: FRR's default, one router at most between the peers.
	DefaultMinimumTTL = 254
)

// Key names a session by its addresses (RFC 5881 section 3: one single-hop session per peer
// address; RFC 5883 section 4: one multi-hop session per pair of source and destination
// addresses).
type Key struct {
	MultiHop bool
	// Local is a multi-hop session's own address; invalid (the zero Addr) when the system picks
	// it, and then the session takes packets sent to any local address. Single-hop keys have none.
	Local netip.Addr
	// Remote is the peer's address.
	Remote netip.Addr
}

// normal returns k with unmapped addresses without zone, and no Local for single hop.
func (k Key) normal() Key {
	k.Remote = normalAddr(k.Remote)
	k.Local = normalAddr(k.Local)
	if !k.MultiHop {
		k.Local = netip.Addr{}
	}
	return k
}

func normalAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func (k Key) String() string {
	if !k.MultiHop {
		return fmt.Sprintf("single-hop %v", k.Remote)
	}
	if !k.Local.IsValid() {
		return fmt.Sprintf("multi-hop %v", k.Remote)
	}
	return fmt.Sprintf("multi-hop %v from %v", k.Remote, k.Local)
}

// Arrival is how a packet was received: on the multi-hop port or the single-hop one, its source
// and destination addresses and its TTL (hop limit), -1 when the system did not say.
type Arrival struct {
	MultiHop bool
	Src, Dst netip.Addr
	TTL      int
}

// Errors of Demux.Lookup: why a received packet belongs to no session.
var (
	ErrTTL       = errors.New("BFD packet TTL too low")
	ErrNoSession = errors.New("no BFD session for the packet")
	ErrAddresses = errors.New("BFD packet addresses do not match its session")
	ErrDuplicate = errors.New("BFD session already exists")
)

// Demux finds the session of each received Control packet (RFC 5880 section 6.8.6, RFC 5881
// sections 4-5, RFC 5883 sections 3-5): by Your Discriminator when the packet has one (and then
// its addresses must be the session's), else by its addresses (the source, and for multi-hop
// the destination, falling back to a session without a local address); and it applies the TTL
// check, TTL 255 for single hop (GTSM, RFC 5082) and the session's minimum TTL for multi-hop.
// S is the caller's session handle. The zero Demux is empty and ready; it is not safe for
// concurrent use.
type Demux[S any] struct {
	byDiscr map[uint32]demuxEntry[S]
	byKey   map[Key]uint32
}

type demuxEntry[S any] struct {
	key    Key
	minTTL int
	s      S
}

// Add registers session s with its key, local discriminator (not 0) and, for multi-hop, the
// least TTL it accepts (DefaultMinimumTTL when 0). It refuses a key or discriminator in use.
func (d *Demux[S]) Add(key Key, discr uint32, minTTL uint8, s S) error {
	key = key.normal()
	if d.byDiscr == nil {
		d.byDiscr, d.byKey = map[uint32]demuxEntry[S]{}, map[Key]uint32{}
	}
	switch _, dupKey := d.byKey[key]; {
	case dupKey:
		return fmt.Errorf("%w: %v", ErrDuplicate, key)
	case discr == 0:
		return fmt.Errorf("%w: discriminator 0", ErrDuplicate)
	}
	if _, dup := d.byDiscr[discr]; dup {
		return fmt.Errorf("%w: discriminator %d", ErrDuplicate, discr)
	}
	ttl := int(minTTL)
	if ttl == 0 {
		ttl = DefaultMinimumTTL
	}
	d.byDiscr[discr], d.byKey[key] = demuxEntry[S]{key: key, minTTL: ttl, s: s}, discr
	return nil
}

// Has reports whether a session has key.
func (d *Demux[S]) Has(key Key) bool {
	_, ok := d.byKey[key.normal()]
	return ok
}

// Used reports whether a session has the discriminator.
func (d *Demux[S]) Used(discr uint32) bool {
	_, ok := d.byDiscr[discr]
	return ok
}

// Remove removes the session with the discriminator.
func (d *Demux[S]) Remove(discr uint32) {
	if e, ok := d.byDiscr[discr]; ok {
		delete(d.byDiscr, discr)
		delete(d.byKey, e.key)
	}
}

// Keys returns the keys of the sessions.
func (d *Demux[S]) Keys() iter.Seq[Key] { return maps.Keys(d.byKey) }

// Len is the number of sessions.
func (d *Demux[S]) Len() int { return len(d.byDiscr) }

// Lookup returns the session of packet p received as a says, or an error (ErrTTL, ErrNoSession,
// ErrAddresses) saying why it belongs to none and must be discarded.
func (d *Demux[S]) Lookup(a Arrival, p Packet) (S, error) {
	var zero S
	src, dst := normalAddr(a.Src), normalAddr(a.Dst)
	if !a.MultiHop && a.TTL != SendTTL {
		return zero, fmt.Errorf("%w: single-hop packet from %v with TTL %d, want %d", ErrTTL, src, a.TTL, SendTTL)
	}
	var e demuxEntry[S]
	if p.YourDiscriminator != 0 {
		var ok bool
		if e, ok = d.byDiscr[p.YourDiscriminator]; !ok {
			return zero, fmt.Errorf("%w: Your Discriminator %d from %v", ErrNoSession, p.YourDiscriminator, src)
		}
		if e.key.MultiHop != a.MultiHop || e.key.Remote != src || e.key.Local.IsValid() && e.key.Local != dst {
			return zero, fmt.Errorf("%w: packet from %v to %v (multi-hop %v) for the session %v", ErrAddresses, src, dst, a.MultiHop, e.key)
		}
	} else {
		keys := []Key{{Remote: src}}
		if a.MultiHop {
			keys = []Key{{MultiHop: true, Local: dst, Remote: src}, {MultiHop: true, Remote: src}}
		}
		found := false
		for _, k := range keys {
			var discr uint32
			if discr, found = d.byKey[k]; found {
				e = d.byDiscr[discr]
				break
			}
		}
		if !found {
			return zero, fmt.Errorf("%w: packet from %v to %v (multi-hop %v) without Your Discriminator", ErrNoSession, src, dst, a.MultiHop)
		}
	}
	if a.MultiHop && a.TTL < e.minTTL {
		return zero, fmt.Errorf("%w: multi-hop packet from %v with TTL %d, the session %v accepts %d or more", ErrTTL, src, a.TTL, e.key, e.minTTL)
	}
	return e.s, nil
}
