package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is a BFD session state, with its value on the wire (RFC 5880, section 4.1).
type State uint8

// Session states.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is the diagnostic code of a Control packet: why the sender's session last left Up
// (RFC 5880, section 4.1).
type Diag uint8

// Diagnostic codes.
const (
	DiagNone                  Diag = 0
	DiagControlDetectExpired  Diag = 1
	DiagEchoFailed            Diag = 2
	DiagNeighborSignaledDown  Diag = 3
	DiagForwardingPlaneReset  Diag = 4
	DiagPathDown              Diag = 5
	DiagConcatenatedPathDown  Diag = 6
	DiagAdministrativelyDown  Diag = 7
	DiagReverseConcatPathDown Diag = 8
)

func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "no diagnostic"
	case DiagControlDetectExpired:
		return "control detection time expired"
	case DiagEchoFailed:
		return "echo function failed"
	case DiagNeighborSignaledDown:
		return "neighbor signaled session down"
	case DiagForwardingPlaneReset:
		return "forwarding plane reset"
	case DiagPathDown:
		return "path down"
	case DiagConcatenatedPathDown:
		return "concatenated path down"
	case DiagAdministrativelyDown:
		return "administratively down"
	case DiagReverseConcatPathDown:
		return "reverse concatenated path down"
	}
	return fmt.Sprintf("diagnostic %d", uint8(d))
}

// Packet is a BFD Control packet without authentication (RFC 5880, section 4.1). Intervals are
// kept as durations; on the wire they are microseconds.
type Packet struct {
	Diag  Diag
	State State
	// Poll, Final, ControlPlaneIndependent, AuthPresent, Demand and Multipoint are the flags
	// P, F, C, A, D and M.
	Poll, Final, ControlPlaneIndependent, AuthPresent, Demand, Multipoint bool
	DetectMult                                                            uint8
	MyDiscriminator, YourDiscriminator                                    uint32
	DesiredMinTx, RequiredMinRx, RequiredMinEchoRx                        time.Duration
}

// PacketLen is the length of a Control packet without authentication.
const PacketLen = 24

// Version is the protocol version Herald speaks.
const Version = 1

// Errors of ParsePacket; each is wrapped with the detail.
var (
	ErrShortPacket   = errors.New("BFD packet too short")
	ErrVersion       = errors.New("unsupported BFD version")
	ErrLength        = errors.New("bad BFD length field")
	ErrInvalidPacket = errors.New("invalid BFD packet")
	// ErrAuthentication is returned for packets with the A bit: Herald runs BFD without
	// authentication, and RFC 5880 (section 6.8.6) discards such packets on sessions without it.
	ErrAuthentication = errors.New("BFD authentication is not supported")
)

// ParsePacket decodes a Control packet and applies the checks of RFC 5880, section 6.8.6, that
// need no session: version 1, a length field of at least 24 (26 with authentication) and not
// more than the data, a Detect Mult and My Discriminator that are not zero, and no Multipoint
// bit. Packets with authentication are refused (ErrAuthentication). Bytes after the length
// field's end are ignored.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) < PacketLen {
		return Packet{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrShortPacket, len(b), PacketLen)
	}
	if v := b[0] >> 5; v != Version {
		return Packet{}, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	flags := b[1]
	p := Packet{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(flags >> 6),
		Poll:                    flags&0x20 != 0,
		Final:                   flags&0x10 != 0,
		ControlPlaneIndependent: flags&0x08 != 0,
		AuthPresent:             flags&0x04 != 0,
		Demand:                  flags&0x02 != 0,
		Multipoint:              flags&0x01 != 0,
		DetectMult:              b[2],
		MyDiscriminator:         binary.BigEndian.Uint32(b[4:]),
		YourDiscriminator:       binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:            micros(binary.BigEndian.Uint32(b[12:])),
		RequiredMinRx:           micros(binary.BigEndian.Uint32(b[16:])),
		RequiredMinEchoRx:       micros(binary.BigEndian.Uint32(b[20:])),
	}
	length := int(b[3])
	minLen := PacketLen
	if p.AuthPresent {
		minLen = PacketLen + 2
	}
	if length < minLen || length > len(b) {
		return Packet{}, fmt.Errorf("%w: %d with %d bytes received", ErrLength, length, len(b))
	}
	switch {
	case p.AuthPresent:
		return Packet{}, ErrAuthentication
	case p.DetectMult == 0:
		return Packet{}, fmt.Errorf("%w: Detect Mult is 0", ErrInvalidPacket)
	case p.Multipoint:
		return Packet{}, fmt.Errorf("%w: Multipoint bit set", ErrInvalidPacket)
	case p.MyDiscriminator == 0:
		return Packet{}, fmt.Errorf("%w: My Discriminator is 0", ErrInvalidPacket)
	}
	return p, nil
}

// AppendPacket appends p's encoding (24 bytes, version 1, no authentication) to b. Intervals
// are sent in whole microseconds, at most 2^32-1.
func AppendPacket(b []byte, p Packet) []byte {
	flags := byte(p.State&3) << 6
	for i, set := range []bool{p.Poll, p.Final, p.ControlPlaneIndependent, p.AuthPresent, p.Demand, p.Multipoint} {
		if set {
			flags |= 0x20 >> i
		}
	}
	b = append(b, Version<<5|byte(p.Diag&0x1f), flags, p.DetectMult, PacketLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscriminator)
	for _, d := range []time.Duration{p.DesiredMinTx, p.RequiredMinRx, p.RequiredMinEchoRx} {
		b = binary.BigEndian.AppendUint32(b, toMicros(d))
	}
	return b
}

func micros(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }

func toMicros(d time.Duration) uint32 {
	us := d / time.Microsecond
	switch {
	case us < 0:
		return 0
	case us > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(us)
}
