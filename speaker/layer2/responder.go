package layer2

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/prometheus/client_golang/prometheus"
)

// family is an address family and the protocol that resolves it.
type family int

const (
	familyIPv4 family = iota // ARP
	familyIPv6               // NDP
	numFamilies
)

func (f family) String() string {
	if f == familyIPv4 {
		return "ipv4"
	}
	return "ipv6"
}

func familyOf(ip netip.Addr) family {
	if ip.Is4() {
		return familyIPv4
	}
	return familyIPv6
}

// readRetry bounds how fast a responder retries reading after an unexpected socket error
// (ENETDOWN while its interface is down, for example).
const readRetry = 100 * time.Millisecond

// responder answers for one address family on one interface.
type responder struct {
	fam    family
	ifname string
	hw     net.HardwareAddr
	mtu    int
	conn   Conn
	groups GroupConn // NDP only
	log    *slog.Logger

	requests, replies, gratuitous, errs prometheus.Counter
	ownedGauge                          prometheus.Gauge

	// mu is held for reading while a frame is decided and written, and for writing while the owned
	// set changes, so that no answer for an address goes out after setOwned has dropped it.
	mu     sync.RWMutex
	owned  map[netip.Addr]struct{}
	joined map[string]int // NDP: solicited-node group MAC -> owned addresses in it
	// muted are owned addresses not answered nor announced (yet): being probed before their first
	// announcement, or yielded to another station (conflicts.go).
	muted map[netip.Addr]struct{}

	// claims, when not nil, receives what other stations claim of the owned addresses (set once,
	// before serve starts, when duplicate address detection is on).
	claims chan<- seenClaim

	closing atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

func newResponder(fam family, ifi *net.Interface, conn Conn, m *metrics, log *slog.Logger) *responder {
	lv := []string{ifi.Name, fam.String()}
	r := &responder{
		fam: fam, ifname: ifi.Name, hw: ifi.HardwareAddr, mtu: ifi.MTU, conn: conn,
		log:        log.With("interface", ifi.Name, "family", fam.String()),
		requests:   m.requests.WithLabelValues(lv...),
		replies:    m.replies.WithLabelValues(lv...),
		gratuitous: m.gratuitous.WithLabelValues(lv...),
		errs:       m.errors.WithLabelValues(lv...),
		ownedGauge: m.owned.WithLabelValues(lv...),
		owned:      map[netip.Addr]struct{}{},
		joined:     map[string]int{},
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if gc, ok := conn.(GroupConn); ok && fam == familyIPv6 {
		r.groups = gc
	}
	return r
}

// serve reads and answers requests until close.
func (r *responder) serve() {
	defer close(r.done)
	buf := make([]byte, max(r.mtu, 1500)+18) // Ethernet header and up to one VLAN tag
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			if r.closing.Load() {
				return
			}
			r.errs.Inc()
			r.log.Error("reading frame", "error", err)
			select {
			case <-time.After(readRetry):
			case <-r.stop:
				return
			}
			continue
		}
		r.handle(buf[:n])
	}
}

// handle answers one received frame if it asks for an owned address.
func (r *responder) handle(frame []byte) {
	if r.claims != nil {
		r.watch(frame)
	}
	var (
		target, asker netip.Addr
		reply         func() ([]byte, error)
		dst           net.HardwareAddr
	)
	switch r.fam {
	case familyIPv4:
		req, err := parseARPRequest(frame, r.hw)
		if err != nil {
			r.logIgnored(err)
			return
		}
		target, asker, dst = req.Target, req.SenderIP, req.SenderHW
		reply = func() ([]byte, error) { return arpReply(req, r.hw) }
	default:
		s, err := parseSolicitation(frame, r.hw)
		if err != nil {
			r.logIgnored(err)
			return
		}
		target, asker, dst = s.Target, s.Src, s.SrcHW
		if s.Src.IsUnspecified() {
			dst = allNodesMAC
		}
		reply = func() ([]byte, error) { return neighborAdvertisementReply(s, r.hw) }
	}
	r.requests.Inc()

	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.answers(target) {
		return
	}
	b, err := reply()
	if err != nil {
		r.errs.Inc()
		r.log.Error("building reply", "ip", target, "asker", asker, "error", err)
		return
	}
	if err := r.write(b, dst); err != nil {
		r.log.Error("sending reply", "ip", target, "asker", asker, "error", err)
		return
	}
	r.replies.Inc()
	r.log.Debug("answered", "ip", target, "asker", asker, "askerMAC", dst.String())
}

func (r *responder) logIgnored(err error) {
	if errors.Is(err, errIgnored) {
		return
	}
	r.log.Debug("dropping malformed frame", "error", err)
}

func (r *responder) write(frame []byte, dst net.HardwareAddr) error {
	if _, err := r.conn.WriteTo(frame, &packet.Addr{HardwareAddr: dst}); err != nil {
		r.errs.Inc()
		return fmt.Errorf("writing to %s on %s: %w", dst, r.ifname, err)
	}
	return nil
}

// announce sends the gratuitous frames for ip if it is still owned here.
func (r *responder) announce(ip netip.Addr) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.answers(ip) {
		return nil
	}
	var frames [][]byte
	var err error
	dst := allNodesMAC
	if r.fam == familyIPv4 {
		frames, err = gratuitousARP(ip, r.hw)
		dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	} else {
		var b []byte
		b, err = unsolicitedNeighborAdvertisement(ip, r.hw)
		frames = [][]byte{b}
	}
	if err != nil {
		r.errs.Inc()
		return err
	}
	for _, f := range frames {
		if err := r.write(f, dst); err != nil {
			return fmt.Errorf("announcing %s: %w", ip, err)
		}
		r.gratuitous.Inc()
	}
	return nil
}

// setOwned replaces the set of addresses answered here. For NDP it joins the solicited-node groups
// of new addresses before answering for them and leaves those no longer needed after.
func (r *responder) setOwned(ips map[netip.Addr]struct{}) error {
	if r.owns(ips) {
		// Unchanged (every resync): no copy, and the same groups joined.
		return nil
	}
	var errs []error
	want := map[string]int{}
	if r.fam == familyIPv6 {
		for ip := range ips {
			want[string(solicitedNodeMAC(ip))]++
		}
		if len(ips) > 0 && r.claims != nil {
			// Advertisements that answer duplicate address detection go to all nodes. Counted
			// once per owned address, as add and remove count it.
			want[string(allNodesMAC)] += len(ips)
		}
		for g := range want {
			if r.joined[g] == 0 && r.groups != nil {
				if err := r.groups.JoinGroup(net.HardwareAddr(g)); err != nil {
					errs = append(errs, fmt.Errorf("joining group %s on %s: %w", net.HardwareAddr(g), r.ifname, err))
				}
			}
		}
	}

	next := make(map[netip.Addr]struct{}, len(ips))
	for ip := range ips {
		next[ip] = struct{}{}
	}
	r.mu.Lock()
	r.owned = next
	r.mu.Unlock()
	r.ownedGauge.Set(float64(len(next)))

	if r.fam == familyIPv6 {
		for g := range r.joined {
			if want[g] == 0 && r.groups != nil {
				if err := r.groups.LeaveGroup(net.HardwareAddr(g)); err != nil {
					errs = append(errs, fmt.Errorf("leaving group %s on %s: %w", net.HardwareAddr(g), r.ifname, err))
				}
			}
		}
		r.joined = want
	}
	return errors.Join(errs...)
}

func solicitedNodeMAC(ip netip.Addr) net.HardwareAddr {
	snm, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		// Only IPv6 addresses reach here.
		panic(fmt.Sprintf("solicited-node group of %s: %v", ip, err))
	}
	return ipv6MulticastMAC(snm)
}

// close stops serving and closes the socket.
func (r *responder) close() error {
	r.closing.Store(true)
	close(r.stop)
	err := r.conn.Close()
	<-r.done
	r.ownedGauge.Set(0)
	if err != nil {
		return fmt.Errorf("closing %s socket on %s: %w", r.fam, r.ifname, err)
	}
	return nil
}

// owns reports whether ips are exactly the addresses answered here.
func (r *responder) owns(ips map[netip.Addr]struct{}) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(ips) != len(r.owned) {
		return false
	}
	for ip := range ips {
		if _, ok := r.owned[ip]; !ok {
			return false
		}
	}
	return true
}

// answers reports whether ip is answered here: owned and not muted. r.mu must be held.
func (r *responder) answers(ip netip.Addr) bool {
	if _, ok := r.owned[ip]; !ok {
		return false
	}
	_, muted := r.muted[ip]
	return !muted
}

// setMuted replaces the set of owned addresses not to answer.
func (r *responder) setMuted(ips map[netip.Addr]struct{}) {
	r.mu.Lock()
	r.muted = ips
	r.mu.Unlock()
}

// mute stops (on) or resumes (off) answering for one address.
func (r *responder) mute(ip netip.Addr, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !on {
		delete(r.muted, ip)
		return
	}
	if r.muted == nil {
		r.muted = map[netip.Addr]struct{}{}
	}
	r.muted[ip] = struct{}{}
}

// watch passes on a claim another station makes in frame for an owned address. It never blocks:
// when the Announcer is behind, the claim is dropped (a station in conflict claims again).
func (r *responder) watch(frame []byte) {
	parse := parseARPClaim
	if r.fam == familyIPv6 {
		parse = parseNDPClaim
	}
	c, err := parse(frame, r.hw)
	if err != nil {
		return
	}
	r.mu.RLock()
	_, ok := r.owned[c.IP]
	r.mu.RUnlock()
	if !ok {
		return
	}
	select {
	case r.claims <- seenClaim{ifname: r.ifname, claim: c}:
	default:
	}
}

// probe asks whether another station has ip: an RFC 5227 ARP probe, or a duplicate address
// detection solicitation. An owner answers it to this interface (ARP) or to all nodes (NDP).
func (r *responder) probe(ip netip.Addr) error {
	var (
		b   []byte
		dst net.HardwareAddr
		err error
	)
	if r.fam == familyIPv4 {
		b, err = arpProbe(ip, r.hw)
		dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	} else {
		b, dst, err = dadSolicitation(ip, r.hw)
	}
	if err != nil {
		r.errs.Inc()
		return err
	}
	if err := r.write(b, dst); err != nil {
		return fmt.Errorf("probing %s: %w", ip, err)
	}
	return nil
}
