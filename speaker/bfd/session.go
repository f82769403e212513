package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Config is what a session is configured with: a BFDProfile's values.
type Config struct {
	// DesiredMinTx is the interval at which this system wants to send Control packets once the
	// session is Up (bfd.DesiredMinTxInterval); until then it sends at most one a second.
	DesiredMinTx time.Duration
	// RequiredMinRx is the shortest interval between received Control packets this system
	// supports (bfd.RequiredMinRxInterval).
	RequiredMinRx time.Duration
	// DetectMult is how many intervals without a packet the peer may let pass before this
	// system declares the session down (bfd.DetectMult).
	DetectMult uint8
	// Passive makes the session send nothing until the peer has sent a packet (RFC 5880,
	// section 6.1).
	Passive bool
}

// Limits of Config.
const (
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Minute
	// slowTx is the least transmit interval while the session is not Up (RFC 5880, 6.8.3).
	slowTx = time.Second
)

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("invalid BFD configuration")

// Validate checks that c can be run.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"transmit interval", c.DesiredMinTx}, {"receive interval", c.RequiredMinRx}} {
		if f.v < MinInterval || f.v > MaxInterval || f.v%time.Millisecond != 0 {
			return fmt.Errorf("%w: %s %v: must be whole milliseconds between %v and %v", ErrInvalidConfig, f.name, f.v, MinInterval, MaxInterval)
		}
	}
	if c.DetectMult < 2 {
		return fmt.Errorf("%w: detect multiplier %d: must be between 2 and 255", ErrInvalidConfig, c.DetectMult)
	}
	return nil
}

// Session is the state machine of one BFD session in asynchronous mode (RFC 5880, section 6.8),
// without the echo function, demand mode of its own or authentication. It is pure: the caller
// gives it the packets it receives and the time, and sends the packets it returns. It is not
// safe for concurrent use.
//
// The caller calls Receive for every packet of the session (those whose Your Discriminator is
// the session's, or that carry none and come from the peer's address), and Timeout whenever
// the time returned by Deadline has come.
type Session struct {
	cfg    Config
	jitter func(time.Duration) time.Duration

	state       State
	diag        Diag
	localDiscr  uint32
	remoteDiscr uint32
	remoteState State
	remoteMinRx time.Duration
	remoteTx    time.Duration // the peer's Desired Min TX Interval
	remoteMult  uint8
	remoteDmd   bool
	desiredTx   time.Duration // bfd.DesiredMinTxInterval as now advertised
	polling     bool          // a Poll Sequence is running

	nextTx   time.Time // zero when nothing is to be sent periodically
	detectAt time.Time // zero when the detection timer is not running
}

// Output is what a call of the state machine asks of the caller.
type Output struct {
	// Send are packets to send now, in order.
	Send []Packet
	// Changed is true when the session's state changed; State is the new one.
	Changed bool
	State   State
	// Failure is true when the session left Up because the path failed: the detection time
	// passed without a packet, or the peer said it is Down. A peer that takes the session
	// administratively down (AdminDown) is no failure (RFC 5882, section 3.2): its clients must
	// not act on it.
	Failure bool
}

// NewSession returns a Down session with local discriminator discr (not zero, unique among the
// caller's sessions), starting at now. jitter maps a transmit interval to the interval to wait
// (RFC 5880, section 6.8.7: 75 % to 100 % of it, 75 % to 90 % with a Detect Mult of 1); nil
// uses Jitter.
func NewSession(cfg Config, discr uint32, now time.Time, jitter func(time.Duration) time.Duration) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if discr == 0 {
		return nil, fmt.Errorf("%w: local discriminator 0", ErrInvalidConfig)
	}
	if jitter == nil {
		jitter = Jitter
	}
	s := &Session{cfg: cfg, jitter: jitter, state: StateDown, localDiscr: discr, remoteMinRx: time.Microsecond}
	s.desiredTx = s.wantTx()
	if !cfg.Passive {
		s.nextTx = now
	}
	return s, nil
}

// State returns the session's state.
func (s *Session) State() State { return s.state }

// Diag returns the local diagnostic: why the session last left Up.
func (s *Session) Diag() Diag { return s.diag }

// LocalDiscriminator returns the session's discriminator.
func (s *Session) LocalDiscriminator() uint32 { return s.localDiscr }

// RemoteDiscriminator returns the peer's discriminator, zero when none is known.
func (s *Session) RemoteDiscriminator() uint32 { return s.remoteDiscr }

// DetectionTime is how long the session waits for a packet before declaring the peer down:
// the peer's Detect Mult times the greater of this system's Required Min RX Interval and the
// peer's Desired Min TX Interval (RFC 5880, section 6.8.4).
func (s *Session) DetectionTime() time.Duration {
	return time.Duration(s.remoteMult) * max(s.cfg.RequiredMinRx, s.remoteTx)
}

// Deadline returns when Timeout must be called next; zero when there is nothing to wait for.
func (s *Session) Deadline() time.Time {
	switch {
	case s.nextTx.IsZero():
		return s.detectAt
	case s.detectAt.IsZero() || s.nextTx.Before(s.detectAt):
		return s.nextTx
	}
	return s.detectAt
}

// wantTx is bfd.DesiredMinTxInterval for the current state: at least a second unless Up.
func (s *Session) wantTx() time.Duration {
	if s.state == StateUp {
		return s.cfg.DesiredMinTx
	}
	return max(s.cfg.DesiredMinTx, slowTx)
}

// txInterval is the interval between periodic packets (RFC 5880, section 6.8.7), before jitter.
func (s *Session) txInterval() time.Duration { return max(s.desiredTx, s.remoteMinRx) }

// periodic reports whether the session sends packets periodically.
func (s *Session) periodic() bool {
	switch {
	case s.cfg.Passive && s.remoteDiscr == 0:
		return false
	case s.remoteMinRx == 0:
		return false
	case s.remoteDmd && s.state == StateUp && s.remoteState == StateUp:
		return false
	}
	return true
}

// packet is the Control packet the session sends now.
func (s *Session) packet() Packet {
	return Packet{Diag: s.diag, State: s.state, Poll: s.polling, DetectMult: s.cfg.DetectMult,
		MyDiscriminator: s.localDiscr, YourDiscriminator: s.remoteDiscr,
		DesiredMinTx: s.desiredTx, RequiredMinRx: s.cfg.RequiredMinRx}
}

// schedule sets the next periodic transmission, an interval after now.
func (s *Session) schedule(now time.Time) {
	if !s.periodic() {
		s.nextTx = time.Time{}
		return
	}
	s.nextTx = now.Add(s.jitter(s.txInterval()))
}

// setState moves the session to st and adjusts bfd.DesiredMinTxInterval, starting a Poll
// Sequence when it changes (RFC 5880, section 6.8.3).
func (s *Session) setState(st State, now time.Time, out *Output) {
	prev := s.state
	s.state = st
	out.Changed, out.State = true, st
	out.Failure = prev == StateUp && st == StateDown && s.remoteState != StateAdminDown
	if tx := s.wantTx(); tx != s.desiredTx {
		s.desiredTx = tx
		if st == StateUp {
			s.polling = true
		}
	}
	if st != StateUp {
		s.polling = false
	}
}

// Receive handles a packet of the session (ParsePacket's checks passed) at now.
func (s *Session) Receive(p Packet, now time.Time) Output {
	var out Output
	// RFC 5880, section 6.8.6.
	if p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown {
		return out
	}
	if p.YourDiscriminator != 0 && p.YourDiscriminator != s.localDiscr {
		return out
	}
	wasPeriodic := s.periodic()
	learned := s.remoteDiscr != p.MyDiscriminator
	s.remoteDiscr = p.MyDiscriminator
	s.remoteState = p.State
	s.remoteDmd = p.Demand
	s.remoteMinRx = p.RequiredMinRx
	s.remoteTx = p.DesiredMinTx
	s.remoteMult = p.DetectMult
	if p.Final {
		s.polling = false
	}
	if s.state == StateAdminDown {
		return out
	}
	switch {
	case p.State == StateAdminDown:
		if s.state != StateDown {
			s.diag = DiagNeighborSignaledDown
			s.setState(StateDown, now, &out)
		}
	case s.state == StateDown && p.State == StateDown:
		s.setState(StateInit, now, &out)
	case s.state == StateDown && p.State == StateInit:
		s.setState(StateUp, now, &out)
	case s.state == StateInit && (p.State == StateInit || p.State == StateUp):
		s.setState(StateUp, now, &out)
	case s.state == StateUp && p.State == StateDown:
		s.diag = DiagNeighborSignaledDown
		s.setState(StateDown, now, &out)
	}
	s.detectAt = now.Add(s.DetectionTime())
	if p.Poll {
		reply := s.packet()
		reply.Poll, reply.Final = false, true
		out.Send = append(out.Send, reply)
	}
	// A state change, or a peer (discriminator) new to the session, is answered at once (it
	// speeds up the three-way handshake and tells the peer of a failure); otherwise packets keep their period, which changes with the peer's Required
	// Min RX Interval at the next transmission.
	if (out.Changed || learned || !wasPeriodic) && s.periodic() && s.state != StateAdminDown {
		out.Send = append(out.Send, s.packet())
		s.schedule(now)
	} else if !s.periodic() {
		s.nextTx = time.Time{}
	} else if next := now.Add(s.txInterval()); s.nextTx.After(next) {
		// The peer asks for packets faster than the current period.
		s.nextTx = now.Add(s.jitter(s.txInterval()))
	}
	return out
}

// Timeout handles the timers at now: the periodic transmission and the detection time.
func (s *Session) Timeout(now time.Time) Output {
	var out Output
	if !s.detectAt.IsZero() && !now.Before(s.detectAt) {
		s.detectAt = time.Time{}
		if s.state == StateInit || s.state == StateUp {
			s.diag = DiagControlDetectExpired
			s.setState(StateDown, now, &out)
		}
		// bfd.RemoteDiscr is forgotten when the detection time passes (section 6.8.1).
		s.remoteDiscr, s.remoteState, s.remoteMinRx, s.remoteDmd = 0, StateDown, time.Microsecond, false
		if out.Changed && s.periodic() {
			out.Send = append(out.Send, s.packet())
			s.schedule(now)
			return out
		}
	}
	if !s.nextTx.IsZero() && !now.Before(s.nextTx) {
		if s.periodic() {
			out.Send = append(out.Send, s.packet())
		}
		s.schedule(now)
	} else if s.nextTx.IsZero() && s.periodic() {
		s.schedule(now)
	}
	return out
}

// AdminDown takes the session administratively down (its owner stops it): it returns the
// AdminDown packet to send (diagnostic "administratively down"), so that the peer does not take
// the end of the session for a failure. The session sends nothing more.
func (s *Session) AdminDown(now time.Time) Output {
	var out Output
	s.diag = DiagAdministrativelyDown
	if s.state != StateAdminDown {
		s.setState(StateAdminDown, now, &out)
	}
	s.polling = false
	if s.remoteDiscr != 0 || !s.cfg.Passive {
		out.Send = append(out.Send, s.packet())
	}
	s.nextTx, s.detectAt = time.Time{}, time.Time{}
	return out
}

// Jitter is the jitter of RFC 5880, section 6.8.7, for sessions with a Detect Mult above 1: a
// random interval between 75 % and 100 % of d.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - rand.N(d/4+1)
}
