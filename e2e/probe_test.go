package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/frr"
	"github.com/herald-lb/herald/internal/netlab"
)

// failoverTarget is the layer-2 failover target after kill -9 of the owner's speaker: no IP may
// stay unanswered longer than this through any planned change (a restart, a speaker that cannot
// answer, interface churn).
const failoverTarget = 500 * time.Millisecond

// arpProbe asks for every IP with an ARP request every interval from one interface of a namespace,
// and records when each is answered and by which MAC.
type arpProbe struct {
	c        *arp.Client
	ips      []netip.Addr
	interval time.Duration

	mu      sync.Mutex
	start   time.Time
	last    time.Time // last round of requests
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
	var c *arp.Client
	must(t, netlab.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	}))
	p := &arpProbe{c: c, ips: slices.Clone(ips), interval: interval, replies: map[netip.Addr][]probeReply{},
		stop: make(chan struct{}), sent: make(chan struct{}), read: make(chan struct{})}
	want := map[netip.Addr]bool{}
	for _, ip := range ips {
		want[ip] = true
	}
	go func() {
		defer close(p.read)
		for {
			pkt, _, err := c.Read()
			if err != nil {
				return // closed, or the read deadline Stop sets
			}
			if pkt.Operation != arp.OperationReply || !want[pkt.SenderIP] {
				continue
			}
			p.mu.Lock()
			p.replies[pkt.SenderIP] = append(p.replies[pkt.SenderIP], probeReply{at: time.Now(), mac: strings.ToUpper(pkt.SenderHardwareAddr.String())})
			p.mu.Unlock()
		}
	}()
	p.start = time.Now()
	go func() {
		defer close(p.sent)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			for _, ip := range p.ips {
				_ = c.Request(ip)
			}
			p.mu.Lock()
			p.last = time.Now()
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

// Stop ends the probe, waiting briefly for the replies to the last requests.
func (p *arpProbe) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.sent
	_ = p.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	<-p.read
	_ = p.c.Close()
}

// worstGap returns, over every IP, the longest time without a reply between the start of the
// probe and its last requests, and which IP and when. An IP never answered counts the whole run.
func (p *arpProbe) worstGap() (time.Duration, netip.Addr, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		worst time.Duration
		ip    netip.Addr
		at    time.Time
	)
	for _, a := range p.ips {
		prev := p.start
		for _, r := range append(slices.Clone(p.replies[a]), probeReply{at: p.last}) {
			if g := r.at.Sub(prev); g > worst {
				worst, ip, at = g, a, prev
			}
			if r.at.After(prev) {
				prev = r.at
			}
		}
	}
	return worst, ip, at
}

// gaps returns every gap longer than min, per IP, for diagnosis.
func (p *arpProbe) gaps(min time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, a := range p.ips {
		prev := probeReply{at: p.start}
		for _, r := range append(slices.Clone(p.replies[a]), probeReply{at: p.last, mac: "end"}) {
			if g := r.at.Sub(prev.at); g > min {
				out = append(out, fmt.Sprintf("%s: %v from %s (%s) to %s (%s)", a, g.Round(time.Millisecond), prev.at.Format("15:04:05.000"), prev.mac, r.at.Format("15:04:05.000"), r.mac))
			}
			if r.at.After(prev.at) {
				prev = r
			}
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

// speakerMetric reads one unlabelled metric from a node's speaker.
func speakerMetric(ctx context.Context, l *lab.Lab, node, name string) (float64, error) {
	n, ok := l.Node(node)
	if !ok {
		return 0, fmt.Errorf("no lab node %q", node)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(n.V4.String(), "7472")+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading the metrics of %s: %w", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("reading the metrics of %s: %w", node, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s does not report %s", node, name)
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
	err := frr.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
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
