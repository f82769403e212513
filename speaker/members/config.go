package members

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPort is the TCP and UDP port speakers gossip on when Config.BindPort is zero.
const DefaultPort = 7946

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("invalid members config")
	// ErrNotStarted is returned by methods that need Start to have succeeded.
	ErrNotStarted = errors.New("members not started")
	// ErrStopped is returned by methods called after Shutdown.
	ErrStopped = errors.New("members shut down")
	// ErrNoPeerReached is returned by Join when none of the addresses could be contacted.
	ErrNoPeerReached = errors.New("no peer reached")
)

// Config is the configuration of one speaker's membership.
type Config struct {
	// NodeName is the Kubernetes Node name; members are named after it. Required.
	NodeName string
	// BindAddr is the address to listen on for gossip (TCP and UDP); the unspecified IPv4
	// address (all interfaces) when zero.
	BindAddr netip.Addr
	// BindPort is the port to listen on, DefaultPort when zero.
	BindPort int
	// AdvertiseAddr is the address peers reach this member on, normally the Node's
	// InternalIP. When zero, memberlist uses BindAddr, or the first private address of the
	// host when BindAddr is unspecified.
	AdvertiseAddr netip.Addr
	// Join lists the peers Start tries to join: "IP" (DefaultPort is then BindPort) or
	// "IP:port"/"[IPv6]:port". The speaker passes the InternalIPs of the Nodes; its own address
	// may be among them.
	Join []string
	// SecretKey, 16, 24 or 32 bytes, selects AES-128/192/256 encryption of all gossip. Members
	// with different keys cannot talk to each other. Empty runs unencrypted, with a warning, and
	// then keys cannot be added later (SetKeys returns ErrNotEncrypted).
	SecretKey []byte
	// SecondaryKeys are further keys accepted on incoming gossip but never used to send: the
	// keyring of a key rotation (see SetKeys). Only used with a SecretKey.
	SecondaryKeys [][]byte
	// Registerer, when set, receives the members' metrics (gossip sent, keyring, local health).
	Registerer prometheus.Registerer
	// Meta is this member's initial metadata (at most 512 bytes), seen by the others through
	// MemberMeta; SetMeta changes it.
	Meta []byte
	// Timers tunes failure detection and gossip; zero fields take DefaultTimers' values.
	Timers Timers
	// Logger receives membership changes at info level and memberlist's own log lines at
	// debug level. Required.
	Logger *slog.Logger
	// Notify, when set, is called for every membership event, synchronously from memberlist's
	// goroutines while they hold memberlist's locks: it must not block and must not call
	// back into Members. Most callers should use Members.Changes instead.
	Notify func(Event)
}

// Timers are the failure-detection and gossip parameters of memberlist. Field meanings are
// those of memberlist.Config.
type Timers struct {
	// ProbeInterval is how often each member probes one other member (round robin).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct UDP ping waits for its ack before indirect probes
	// through IndirectChecks other members and a TCP ping are tried.
	ProbeTimeout time.Duration
	// IndirectChecks is how many members are asked to probe a member that missed a direct ack.
	IndirectChecks int
	// SuspicionMult scales the time a suspected member has to refute before it is declared
	// dead: SuspicionMult * ProbeInterval * max(1, log10(members)).
	SuspicionMult int
	// SuspicionMaxTimeoutMult is the multiple of that time used while no other member has
	// confirmed the suspicion (it shrinks toward the base as confirmations arrive).
	SuspicionMaxTimeoutMult int
	// AwarenessMaxMultiplier bounds how much a member stretches its probe interval and
	// timeouts when it sees signs that it is itself slow (Lifeguard local health).
	AwarenessMaxMultiplier int
	// GossipInterval is how often queued messages (suspect, dead, alive) are gossiped.
	GossipInterval time.Duration
	// GossipNodes is how many random members each gossip round sends to.
	GossipNodes int
	// RetransmitMult: a message is gossiped RetransmitMult * log(members+1) times.
	RetransmitMult int
	// GossipToTheDeadTime is how long dead members keep receiving gossip, so that a member
	// wrongly declared dead learns it and refutes.
	GossipToTheDeadTime time.Duration
	// PushPullInterval is the period of the full state exchange (anti-entropy).
	PushPullInterval time.Duration
	// TCPTimeout bounds TCP connections: join, push/pull, fallback pings.
	TCPTimeout time.Duration
	// DeadNodeReclaimTime lets a member come back under the same name from a different address
	// after being dead that long (a re-addressed Node); zero never allows it.
	DeadNodeReclaimTime time.Duration
}

// DefaultTimers are tuned for speakers on one LAN: a member killed with SIGKILL is declared
// dead by the others in well under half a second, yet a busy CPU does not cause false failovers.
// (With ProbeInterval 100ms the measured detection was 0.45-0.7s; layer-2 failover then missed
// its 0.5s median target, so the interval is 70ms.)
//
//   - ProbeInterval 70ms: the dead member is probed by someone within ~70ms. Each probe is
//     one small UDP packet, so even 100 nodes send only ~1400 packets/s in total.
//   - ProbeTimeout 35ms: LAN round trips are well under 1ms, so 35ms absorbs GC pauses and
//     scheduling delays. A missed direct ack only triggers indirect probes and a TCP ping, which
//     have until the end of the (health-scaled) probe interval; it does not suspect anyone.
//   - IndirectChecks 3: before suspecting a member, three others are asked to reach it, so a
//     single lossy path does not start a suspicion.
//   - SuspicionMult 3: the base suspicion time is 210ms (clusters under 10 members; 420ms at
//     100), and memberlist wants SuspicionMult-2 = 1 independent confirmation from another
//     member before it uses it. A member that really died is confirmed at once by the next
//     member probing it, so it is declared dead about 0.2s after the first suspicion.
//   - SuspicionMaxTimeoutMult 6: a suspicion that nobody confirms (the accuser is the slow one,
//     or only its path is bad) runs for up to 1.3s, giving a live but busy member ample time to
//     see the suspect message (piggybacked on the next ping to it) and refute. This, with
//     Lifeguard's local health below, is what keeps a busy CPU from causing failovers.
//     In a 2-member cluster no confirmation is possible and the 210ms applies directly.
//   - AwarenessMaxMultiplier 8: a member that notices it is slow (missing nacks from indirect
//     probes) stretches its own probe interval up to 560ms instead of accusing others.
//   - GossipInterval 10ms, GossipNodes 3, RetransmitMult 4: suspect, dead, leave and refutation
//     messages reach every member of a small cluster within one or two gossip rounds. A leave
//     waits for the next round, so this interval is most of a graceful (SIGTERM) failover. A
//     round with nothing queued sends nothing, so the short interval costs no traffic when idle.
//   - GossipToTheDeadTime 5s, PushPullInterval 15s, TCPTimeout 2s, DeadNodeReclaimTime 30s.
//
// Expected detection of a killed member: up to one probe interval until it is probed, one
// probe interval for the failed direct and indirect probes, 210ms of confirmed suspicion, one
// gossip round.
func DefaultTimers() Timers {
	return Timers{
		ProbeInterval:           70 * time.Millisecond,
		ProbeTimeout:            35 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 6,
		AwarenessMaxMultiplier:  8,
		GossipInterval:          10 * time.Millisecond,
		GossipNodes:             3,
		RetransmitMult:          4,
		GossipToTheDeadTime:     5 * time.Second,
		PushPullInterval:        15 * time.Second,
		TCPTimeout:              2 * time.Second,
		DeadNodeReclaimTime:     30 * time.Second,
	}
}

// withDefaults returns t with every zero field set from DefaultTimers.
func (t Timers) withDefaults() Timers {
	d := DefaultTimers()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&t.ProbeInterval, d.ProbeInterval)
	setDur(&t.ProbeTimeout, d.ProbeTimeout)
	setInt(&t.IndirectChecks, d.IndirectChecks)
	setInt(&t.SuspicionMult, d.SuspicionMult)
	setInt(&t.SuspicionMaxTimeoutMult, d.SuspicionMaxTimeoutMult)
	setInt(&t.AwarenessMaxMultiplier, d.AwarenessMaxMultiplier)
	setDur(&t.GossipInterval, d.GossipInterval)
	setInt(&t.GossipNodes, d.GossipNodes)
	setInt(&t.RetransmitMult, d.RetransmitMult)
	setDur(&t.GossipToTheDeadTime, d.GossipToTheDeadTime)
	setDur(&t.PushPullInterval, d.PushPullInterval)
	setDur(&t.TCPTimeout, d.TCPTimeout)
	setDur(&t.DeadNodeReclaimTime, d.DeadNodeReclaimTime)
	return t
}

func (t Timers) validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout},
		{"GossipInterval", t.GossipInterval}, {"GossipToTheDeadTime", t.GossipToTheDeadTime},
		{"PushPullInterval", t.PushPullInterval}, {"TCPTimeout", t.TCPTimeout},
		{"DeadNodeReclaimTime", t.DeadNodeReclaimTime},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("timers: %s is %s, want a positive duration", d.name, d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"IndirectChecks", t.IndirectChecks}, {"SuspicionMult", t.SuspicionMult},
		{"SuspicionMaxTimeoutMult", t.SuspicionMaxTimeoutMult}, {"AwarenessMaxMultiplier", t.AwarenessMaxMultiplier},
		{"GossipNodes", t.GossipNodes}, {"RetransmitMult", t.RetransmitMult},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("timers: %s is %d, want a positive number", n.name, n.v))
		}
	}
	if t.ProbeTimeout >= t.ProbeInterval {
		errs = append(errs, fmt.Errorf("Timers.ProbeTimeout (%s) must be shorter than Timers.ProbeInterval (%s)", t.ProbeTimeout, t.ProbeInterval))
	}
	return errors.Join(errs...)
}

// normalize checks c and returns it with defaults filled in.
func (c Config) normalize() (Config, error) {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("NodeName is empty"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("no Logger given"))
	}
	if !c.BindAddr.IsValid() {
		c.BindAddr = netip.IPv4Unspecified()
	}
	if c.BindPort == 0 {
		c.BindPort = DefaultPort
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		errs = append(errs, fmt.Errorf("BindPort %d is not a port number (1-65535)", c.BindPort))
	}
	if len(c.SecretKey) > 0 {
		if err := memberlist.ValidateKey(c.SecretKey); err != nil {
			errs = append(errs, fmt.Errorf("SecretKey of %d bytes: %w", len(c.SecretKey), err))
		}
	}
	if len(c.SecondaryKeys) > 0 && len(c.SecretKey) == 0 {
		errs = append(errs, errors.New("SecondaryKeys given without a SecretKey: a keyring needs a primary key"))
	}
	for i, k := range c.SecondaryKeys {
		if err := memberlist.ValidateKey(k); err != nil {
			errs = append(errs, fmt.Errorf("SecondaryKeys[%d] of %d bytes: %w", i, len(k), err))
		}
	}
	if len(c.Meta) > memberlist.MetaMaxSize {
		errs = append(errs, fmt.Errorf("metadata is %d bytes, at most %d allowed", len(c.Meta), memberlist.MetaMaxSize))
	}
	for _, a := range c.Join {
		if _, err := parsePeer(a, c.BindPort); err != nil {
			errs = append(errs, fmt.Errorf("Join: %w", err))
		}
	}
	c.Timers = c.Timers.withDefaults()
	if err := c.Timers.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// parsePeer parses "IP", "IP:port" or "[IPv6]:port"; host names are refused so that joining
// never depends on DNS.
func parsePeer(s string, defaultPort int) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("peer address %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("peer address %q: want IP, IP:port or [IPv6]:port", s)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(defaultPort)), nil
}
