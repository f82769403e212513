package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/netlab"
)

// failoverTarget is the layer-2 failover target after kill -9 of the owner's speaker: no IP may
// stay unanswered longer than this through any planned change (a restart, a speaker that cannot
// answer, interface churn).
const failoverTarget = 500 * time.Millisecond

// arpProbe asks for every IP with an ARP request every interval from one interface of a namespace,
// and records when each is answered and by which MAC.
//
// It measures what a client would see, not its own scheduling: replies are stamped by the kernel
// when they arrive (SO_TIMESTAMPNS), and a gap is counted from the first request sent after the
// last reply, so a moment when the test process itself is not scheduled (on a busy machine) shows
// neither as a late reply nor as a gap.
type arpProbe struct {
	c        *arp.Client // sends the requests
	fd       int         // packet socket receiving the replies, with kernel timestamps
	ips      []netip.Addr
	interval time.Duration

	mu      sync.Mutex
	start   time.Time
	sends   []time.Time // when each round of requests was sent
	replies map[netip.Addr][]probeReply

	stop, sent, read chan struct{}
}

type probeReply struct {
	at  time.Time
	mac string
}

// startARPProbe starts probing; Stop ends it (also called when the test ends).
func startARPProbe(t *testing.T, ns, ifname string, ips []netip.Addr, interval time.Duration) *arpProbe {
	t.Helper()
	p := &arpProbe{fd: -1, ips: slices.Clone(ips), interval: interval, replies: map[netip.Addr][]probeReply{},
		stop: make(chan struct{}), sent: make(chan struct{}), read: make(chan struct{})}
	must(t, netlab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if p.c, err = arp.Dial(ifi); err != nil {
			return err
		}
		p.fd, err = timestampedARPSocket(ifi.Index)
		return err
	}))
	want := map[netip.Addr]bool{}
	for _, ip := range ips {
		want[ip] = true
	}
	go func() {
		defer close(p.read)
		buf, oob := make([]byte, 1500), make([]byte, 128)
		for {
			n, oobn, _, _, err := unix.Recvmsg(p.fd, buf, oob, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				select {
				case <-p.stop:
					return
				default:
					continue
				}
			}
			if err != nil {
				return
			}
			var f ethernet.Frame
			var pkt arp.Packet
			if f.UnmarshalBinary(buf[:n]) != nil || f.EtherType != ethernet.EtherTypeARP || pkt.UnmarshalBinary(f.Payload) != nil ||
				pkt.Operation != arp.OperationReply || !want[pkt.SenderIP] {
				continue
			}
			at, ok := kernelTime(oob[:oobn])
			if !ok {
				at = time.Now()
			}
			p.mu.Lock()
			p.replies[pkt.SenderIP] = append(p.replies[pkt.SenderIP], probeReply{at: at, mac: strings.ToUpper(pkt.SenderHardwareAddr.String())})
			p.mu.Unlock()
		}
	}()
	p.start = time.Now()
	go func() {
		defer close(p.sent)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			now := time.Now()
			for _, ip := range p.ips {
				_ = p.c.Request(ip)
			}
			p.mu.Lock()
			p.sends = append(p.sends, now)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

// timestampedARPSocket opens a packet socket for ARP frames on an interface, whose frames carry
// the kernel's receive time, with a short receive timeout so its reader can stop.
func timestampedARPSocket(ifindex int) (int, error) {
	proto := binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, unix.ETH_P_ARP)) // network byte order
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, fmt.Errorf("opening a packet socket: %w", err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	for _, err := range []error{
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifindex}),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
	} {
		if err != nil {
			_ = unix.Close(fd)
			return -1, fmt.Errorf("setting up a packet socket: %w", err)
		}
	}
	return fd, nil
}

// kernelTime returns the receive time in a SCM_TIMESTAMPNS control message.
func kernelTime(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// Stop ends the probe, waiting briefly for the replies to the last requests.
func (p *arpProbe) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.sent
	wait := time.NewTimer(100 * time.Millisecond)
	<-wait.C
	<-p.read // ends within the socket's receive timeout
	_ = unix.Close(p.fd)
	_ = p.c.Close()
}

// unanswered is one stretch during which requests for an IP went unanswered: from the first
// request after a reply (or the start) to the next reply (or the last request).
type unanswered struct {
	ip       netip.Addr
	from, to time.Time
	before   string // MAC of the reply before, "" at the start
	after    string // MAC of the reply after, "end" when none came
}

func (u unanswered) length() time.Duration { return u.to.Sub(u.from) }

// stretches returns every stretch of unanswered requests, per IP. p.mu must be held.
func (p *arpProbe) stretches() []unanswered {
	var out []unanswered
	if len(p.sends) == 0 {
		return nil
	}
	last := p.sends[len(p.sends)-1]
	// firstSendAfter returns the first round sent after t, and false when none was.
	firstSendAfter := func(t time.Time) (time.Time, bool) {
		i, _ := slices.BinarySearchFunc(p.sends, t, func(s, t time.Time) int { return s.Compare(t) })
		for i < len(p.sends) && !p.sends[i].After(t) {
			i++
		}
		if i == len(p.sends) {
			return time.Time{}, false
		}
		return p.sends[i], true
	}
	for _, a := range p.ips {
		prev := probeReply{at: p.start.Add(-time.Nanosecond)}
		for _, r := range append(slices.Clone(p.replies[a]), probeReply{at: last, mac: "end"}) {
			if from, ok := firstSendAfter(prev.at); ok && from.Before(r.at) {
				out = append(out, unanswered{ip: a, from: from, to: r.at, before: prev.mac, after: r.mac})
			}
			if r.at.After(prev.at) {
				prev = r
			}
		}
	}
	return out
}

// worstGap returns the longest stretch during which requests for an IP went unanswered, which IP,
// and when it began. An IP never answered counts the whole run.
func (p *arpProbe) worstGap() (time.Duration, netip.Addr, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var worst unanswered
	for _, u := range p.stretches() {
		if u.length() > worst.length() {
			worst = u
		}
	}
	return worst.length(), worst.ip, worst.from
}

// gaps describes every stretch longer than min, for diagnosis.
func (p *arpProbe) gaps(min time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, u := range p.stretches() {
		if u.length() > min {
			out = append(out, fmt.Sprintf("%s: %v from %s (after %s) to %s (%s)", u.ip, u.length().Round(time.Millisecond),
				u.from.Format("15:04:05.000"), u.before, u.to.Format("15:04:05.000"), u.after))
		}
	}
	return out
}

// macs returns the MACs that answered for ip, in order, with repeats collapsed.
func (p *arpProbe) macs(ip netip.Addr) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.replies[ip] {
		if len(out) == 0 || out[len(out)-1] != r.mac {
			out = append(out, r.mac)
		}
	}
	return out
}

// lastMAC returns the MAC of the last reply for ip ("" if none) and when it came.
func (p *arpProbe) lastMAC(ip netip.Addr) (string, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.replies[ip]
	if len(rs) == 0 {
		return "", time.Time{}
	}
	return rs[len(rs)-1].mac, rs[len(rs)-1].at
}

// checkGaps fails t when an IP went unanswered longer than the failover target.
func (p *arpProbe) checkGaps(t *testing.T, what string) {
	t.Helper()
	worst, ip, at := p.worstGap()
	t.Logf("%s: longest time without an ARP reply %v (%s, from %s)", what, worst, ip, at.Format("15:04:05.000"))
	for _, g := range p.gaps(100 * time.Millisecond) {
		t.Logf("  gap %s", g)
	}
	if worst > failoverTarget {
		t.Errorf("%s: %s went unanswered for %v from %s, longer than the %v failover target (MACs that answered it: %v)",
			what, ip, worst, at.Format("15:04:05.000"), failoverTarget, p.macs(ip))
	}
}

// waitSpeakerReady waits until node's speaker is a member of every speaker's cluster and tells
// the others it is ready.
func waitSpeakerReady(ctx context.Context, l *lab.Lab, node string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitSpeakersConverged(ctx, l); err != nil {
		return err
	}
	var last error
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		v, err := speakerMetric(ctx, l, node, "herald_speaker_ready")
		last = err
		return err == nil && v == 1, nil
	})
	if err != nil {
		if last != nil {
			err = fmt.Errorf("%w (last error: %w)", err, last)
		}
		return fmt.Errorf("the speaker of %s did not become ready: %w", node, err)
	}
	return nil
}

// l2Services creates n IPv4 layer-2 Services in ns and returns their IPs and the owner of each,
// once every IP has exactly one ServiceL2Status.
func l2Services(t *testing.T, ctx context.Context, l *lab.Lab, ns string, n int) ([]netip.Addr, map[netip.Addr]string) {
	t.Helper()
	var ips []netip.Addr
	owners := map[netip.Addr]string{}
	for i := range n {
		name := fmt.Sprintf("web-%d", i)
		ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: name, Pool: lab.L2PoolName}, 1)[0]
		owner, err := waitL2Owner(ctx, l, ns, name, "")
		must(t, err)
		ips = append(ips, ip)
		owners[ip] = owner
	}
	return ips, owners
}
