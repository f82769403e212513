// Package members owns the speakers' view of which speakers are alive: a thin wrapper over
// hashicorp/memberlist (SWIM gossip with Lifeguard) that joins the speakers of the cluster,
// optionally encrypts their gossip, detects failed speakers within about half a second, and
// tells the speaker when membership changes so that it re-elects at once.
//
// Liveness for the election comes from here, not from the API server: a speaker that cannot
// reach the API server is still alive for its peers.
//
// Shutdown order on SIGTERM: the speaker stops announcing, calls Leave so that peers see it
// gone at once (rather than after failure detection), then Shutdown.
package members

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// EventKind says what happened to a member.
type EventKind int

const (
	// Joined: a member joined, or came back after being gone.
	Joined EventKind = iota + 1
	// Gone: a member left (Leave) or was declared dead by failure detection. memberlist
	// v0.7.0 does not tell the two apart in its callback (hashicorp/memberlist#266); both mean
	// "re-elect without it".
	Gone
	// Updated: a member's metadata or address changed.
	Updated
)

// String returns the kind in lower case.
func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Gone:
		return "gone"
	case Updated:
		return "updated"
	default:
		return "unknown"
	}
}

// Event is one membership change.
type Event struct {
	Kind EventKind
	Node string
	Addr netip.AddrPort
}

// Members is this speaker's membership in the cluster of speakers. Its methods are safe for
// concurrent use.
type Members struct {
	cfg     Config
	log     *slog.Logger
	changes chan struct{}

	mu      sync.Mutex // guards ml and stopped
	ml      *memberlist.Memberlist
	stopped bool

	// metaMu guards meta. It is separate from mu because memberlist calls NodeMeta from
	// Create, while Start holds mu.
	metaMu sync.Mutex
	meta   []byte

	// keyring holds the encryption keys (nil when unencrypted); memberlist and SetKeys share it.
	keyring *memberlist.Keyring
	// keyMu serialises SetKeys.
	keyMu sync.Mutex
	// transport counts what memberlist sends; set by Start.
	transport trafficTransport
	metrics   metrics
	// newTransport opens the transport Start gives memberlist: newCountingTransport, or an
	// in-memory network in the membership simulation (sim_test.go).
	newTransport func(bindAddr string, port int, logger *log.Logger) (trafficTransport, error)
}

// New checks cfg and returns Members ready to Start. It opens no sockets.
func New(cfg Config) (*Members, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	m := &Members{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "members", "node", cfg.NodeName),
		changes: make(chan struct{}, 1),
		meta:    slices.Clone(cfg.Meta),
		newTransport: func(bindAddr string, port int, logger *log.Logger) (trafficTransport, error) {
			return newCountingTransport(bindAddr, port, logger)
		},
	}
	if len(cfg.SecretKey) > 0 {
		if m.keyring, err = newKeyring(cfg.SecretKey, cfg.SecondaryKeys); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if cfg.Registerer != nil {
		if err := m.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("registering the metrics of members %s: %w", cfg.NodeName, err)
		}
	}
	return m, nil
}

// Start listens for gossip and tries to join Config.Join. A failure to join is logged, not
// returned: the first speaker of a cluster has nobody to join, and the speaker calls Join again
// when Nodes change. It returns an error when memberlist cannot start, for example because
// the port is taken.
func (m *Members) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ml != nil {
		return fmt.Errorf("starting members %s: already started", m.cfg.NodeName)
	}
	conf := m.memberlistConfig()
	tr, err := m.newTransport(conf.BindAddr, conf.BindPort, conf.Logger)
	if err != nil {
		return fmt.Errorf("starting memberlist %s on %s: %w", m.cfg.NodeName,
			netip.AddrPortFrom(m.cfg.BindAddr, uint16(m.cfg.BindPort)), err)
	}
	conf.Transport = tr
	ml, err := memberlist.Create(conf)
	if err != nil {
		_ = tr.Shutdown()
		return fmt.Errorf("starting memberlist %s on %s: %w", m.cfg.NodeName,
			netip.AddrPortFrom(m.cfg.BindAddr, uint16(m.cfg.BindPort)), err)
	}
	m.transport = tr
	m.ml = ml
	local := ml.LocalNode()
	m.log.Info("memberlist started", "bind", netip.AddrPortFrom(m.cfg.BindAddr, uint16(m.cfg.BindPort)),
		"advertise", addrPort(local), "encrypted", m.keyring != nil, "keys", m.keyFingerprints())
	if len(m.cfg.SecretKey) == 0 {
		m.log.Warn("memberlist gossip is NOT encrypted and NOT authenticated: anyone who can reach the " +
			"memberlist port can join and forge membership; configure a secret key")
	}
	if len(m.cfg.Join) > 0 {
		if n, err := m.join(ml, m.cfg.Join); err != nil {
			m.log.Info("no peer joined at start; waiting for others to join this member", "error", err)
		} else {
			m.log.Info("joined cluster", "contacted", n)
		}
	}
	return nil
}

func (m *Members) memberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = m.cfg.NodeName
	c.BindAddr = m.cfg.BindAddr.String()
	c.BindPort = m.cfg.BindPort
	c.AdvertisePort = m.cfg.BindPort
	if m.cfg.AdvertiseAddr.IsValid() {
		c.AdvertiseAddr = m.cfg.AdvertiseAddr.String()
	}
	if m.keyring != nil {
		c.Keyring = m.keyring
		c.GossipVerifyIncoming = true
		c.GossipVerifyOutgoing = true
	}
	t := m.cfg.Timers
	c.ProbeInterval = t.ProbeInterval
	c.ProbeTimeout = t.ProbeTimeout
	c.IndirectChecks = t.IndirectChecks
	c.SuspicionMult = t.SuspicionMult
	c.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	c.AwarenessMaxMultiplier = t.AwarenessMaxMultiplier
	c.GossipInterval = t.GossipInterval
	c.GossipNodes = t.GossipNodes
	c.RetransmitMult = t.RetransmitMult
	c.GossipToTheDeadTime = t.GossipToTheDeadTime
	c.PushPullInterval = t.PushPullInterval
	c.TCPTimeout = t.TCPTimeout
	c.DeadNodeReclaimTime = t.DeadNodeReclaimTime
	// No compression: memberlist compresses every datagram with a fresh LZW writer (a 64 KiB
	// table each), which costs 40% of an idle member's CPU (measured: 8.7 vs 5.2 ms of CPU per
	// second per member) and saves nothing on pings and acks. Compressed datagrams from other
	// members are still understood.
	c.EnableCompression = false
	c.Events = &events{m: m}
	c.Delegate = &delegate{m: m}
	c.Logger = log.New(&logWriter{log: m.log}, "", 0)
	return c
}

// Join contacts the given peers ("IP", "IP:port" or "[IPv6]:port"; a missing port means
// Config.BindPort) and merges their view of the cluster. This member's own address is
// skipped. It returns how many peers were contacted, and an error wrapping ErrNoPeerReached
// when there were peers to contact but none answered.
func (m *Members) Join(addrs []string) (int, error) {
	ml, err := m.started()
	if err != nil {
		return 0, fmt.Errorf("joining %v: %w", addrs, err)
	}
	return m.join(ml, addrs)
}

func (m *Members) join(ml *memberlist.Memberlist, addrs []string) (int, error) {
	self := addrPort(ml.LocalNode())
	var peers []string
	for _, a := range addrs {
		ap, err := parsePeer(a, m.cfg.BindPort)
		if err != nil {
			return 0, fmt.Errorf("joining %v: %w", addrs, err)
		}
		if ap == self {
			continue
		}
		peers = append(peers, ap.String())
	}
	if len(peers) == 0 {
		return 0, nil
	}
	n, err := ml.Join(peers)
	if n == 0 {
		return 0, fmt.Errorf("joining %v: %w: %w", peers, ErrNoPeerReached, err)
	}
	if err != nil {
		m.log.Debug("some peers could not be joined", "contacted", n, "error", err)
	}
	return n, nil
}

// Members returns the names of the members not known to be dead or gone, this one included,
// sorted. A member under suspicion is still listed: it is alive until declared dead, and
// dropping it earlier would move IPs back and forth when it refutes. Before Start and after
// Shutdown it returns nil.
func (m *Members) Members() []string {
	m.mu.Lock()
	ml, stopped := m.ml, m.stopped
	m.mu.Unlock()
	if ml == nil || stopped {
		return nil
	}
	nodes := ml.Members()
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// MemberMeta returns the metadata of every member Members lists, by name.
func (m *Members) MemberMeta() map[string][]byte {
	m.mu.Lock()
	ml, stopped := m.ml, m.stopped
	m.mu.Unlock()
	if ml == nil || stopped {
		return nil
	}
	out := map[string][]byte{}
	for _, n := range ml.Members() {
		out[n.Name] = slices.Clone(n.Meta)
	}
	return out
}

// SetMeta replaces this member's metadata (at most 512 bytes) and gossips it, waiting up to
// timeout for the update to be sent out.
func (m *Members) SetMeta(meta []byte, timeout time.Duration) error {
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("setting metadata of %s: %d bytes, at most %d allowed", m.cfg.NodeName, len(meta), memberlist.MetaMaxSize)
	}
	m.metaMu.Lock()
	m.meta = slices.Clone(meta)
	m.metaMu.Unlock()
	m.mu.Lock()
	ml := m.ml
	m.mu.Unlock()
	if ml == nil {
		return nil // used when Start creates memberlist
	}
	if err := ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossiping metadata of %s: %w", m.cfg.NodeName, err)
	}
	return nil
}

// Changes returns a channel that receives a value after membership changes (a member joined,
// left, was declared dead, or updated its metadata). Notifications coalesce: one value may stand for several changes,
// so the receiver re-reads Members, it does not count events. The channel is never closed.
func (m *Members) Changes() <-chan struct{} {
	return m.changes
}

// LocalAddr returns the address and port peers reach this member on.
func (m *Members) LocalAddr() (netip.AddrPort, error) {
	ml, err := m.started()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("local address of %s: %w", m.cfg.NodeName, err)
	}
	return addrPort(ml.LocalNode()), nil
}

// Leave tells the other members that this one is leaving, so they drop it at once instead of
// after failure detection, and waits up to timeout for that message to go out. The member keeps
// gossiping until Shutdown. Call it after the speaker stopped announcing.
func (m *Members) Leave(timeout time.Duration) error {
	ml, err := m.started()
	if err != nil {
		return fmt.Errorf("leaving: %w", err)
	}
	m.log.Info("leaving cluster")
	if err := ml.Leave(timeout); err != nil {
		return fmt.Errorf("leaving cluster as %s: %w", m.cfg.NodeName, err)
	}
	return nil
}

// Shutdown stops gossiping and closes the sockets. Without a prior Leave the other members
// see this one fail. Calling it more than once, or before Start, is harmless.
func (m *Members) Shutdown() error {
	m.mu.Lock()
	ml := m.ml
	m.stopped = ml != nil
	m.mu.Unlock()
	if ml == nil {
		return nil
	}
	if err := ml.Shutdown(); err != nil {
		return fmt.Errorf("shutting down memberlist %s: %w", m.cfg.NodeName, err)
	}
	return nil
}

func (m *Members) started() (*memberlist.Memberlist, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ml == nil {
		return nil, ErrNotStarted
	}
	if m.stopped {
		return nil, ErrStopped
	}
	return m.ml, nil
}

func (m *Members) notify(ev Event) {
	select {
	case m.changes <- struct{}{}:
	default: // a notification is already pending
	}
	if m.cfg.Notify != nil {
		m.cfg.Notify(ev)
	}
}

func addrPort(n *memberlist.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// events receives memberlist's membership callbacks. They run on memberlist's goroutines and
// must not block.
type events struct{ m *Members }

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.m.log.Info("member joined", "member", n.Name, "addr", addrPort(n))
	e.m.notify(Event{Kind: Joined, Node: n.Name, Addr: addrPort(n)})
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.m.log.Info("member gone", "member", n.Name, "addr", addrPort(n))
	e.m.notify(Event{Kind: Gone, Node: n.Name, Addr: addrPort(n)})
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.m.log.Debug("member updated", "member", n.Name, "addr", addrPort(n))
	e.m.notify(Event{Kind: Updated, Node: n.Name, Addr: addrPort(n)})
}

// delegate serves this member's metadata; the other memberlist.Delegate hooks are unused.
type delegate struct{ m *Members }

func (d *delegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	defer d.m.metaMu.Unlock()
	if len(d.m.meta) > limit {
		return nil
	}
	return slices.Clone(d.m.meta)
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: message") into debug records
// of the injected logger, keeping memberlist's own level as an attribute.
type logWriter struct{ log *slog.Logger }

var _ io.Writer = (*logWriter)(nil)

func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := ""
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if lvl, msg, ok := strings.Cut(rest, "]"); ok {
			level, line = lvl, strings.TrimSpace(msg)
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Debug(line, "source", "memberlist", "memberlistLevel", level)
	return len(p), nil
}
