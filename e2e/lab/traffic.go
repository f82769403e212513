package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-lb/herald/internal/testing/netlab"
	"k8s.io/apimachinery/pkg/util/wait"
)

// URL is the HTTP URL of addr:port.
func URL(addr netip.Addr, port int32) string {
	return "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(int(port))) + "/"
}

// Curl runs curl in a node's namespace against addr:port and returns the reply body, trimmed (the
// name of the node whose backend answered).
func (l *Lab) Curl(ctx context.Context, node string, addr netip.Addr, port int32) (string, error) {
	out, err := l.Exec(ctx, node, "curl", "-sS", "--max-time", "2", "--connect-timeout", "1", URL(addr, port))
	return strings.TrimSpace(out), err
}

// WaitCurl curls from node until a reply satisfies ok (any reply when ok is nil) or ctx ends.
func (l *Lab) WaitCurl(ctx context.Context, node string, addr netip.Addr, port int32, ok func(string) bool) (string, error) {
	var body string
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		body, lastErr = l.Curl(ctx, node, addr, port)
		return lastErr == nil && (ok == nil || ok(body)), nil
	})
	if err != nil {
		return body, l.withHerald(fmt.Errorf("curl from %s to %s: last reply %q, last error %w: %w", node, URL(addr, port), body, lastErr, err))
	}
	return body, nil
}

// HTTPClient returns a client whose connections are opened inside node's namespace, one new
// connection per request (so every request sees the current ARP/route state), with timeout.
func (l *Lab) HTTPClient(node string, timeout time.Duration) *http.Client {
	ns := l.ns[node]
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netlab.Do(ns, func() error {
			var err error
			d := net.Dialer{Timeout: timeout}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}
}

// Sample is one request of a Stream.
type Sample struct {
	Start, End time.Time
	Body       string
	Err        error
}

// Stream sends a GET every interval from a node and records the outcomes, until Stop.
type Stream struct {
	mu      sync.Mutex
	samples []Sample
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartStream starts a stream of requests to url from node: one every interval, each with its own
// timeout, several in flight when the target does not answer.
func (l *Lab) StartStream(node, url string, interval, timeout time.Duration) *Stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{cancel: cancel}
	hc := l.HTTPClient(node, timeout)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				sm := Sample{Start: time.Now()}
				sm.Body, sm.Err = Get(ctx, hc, url)
				sm.End = time.Now()
				if ctx.Err() != nil && sm.Err != nil {
					return // cut short by Stop
				}
				s.mu.Lock()
				s.samples = append(s.samples, sm)
				s.mu.Unlock()
			}()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Get sends one GET with hc and returns the trimmed body of a 200 reply.
func Get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// Stop ends the stream and returns its samples sorted by start time.
func (s *Stream) Stop() []Sample {
	s.cancel()
	s.wg.Wait()
	return s.Samples()
}

// Samples returns the samples so far, sorted by start time.
func (s *Stream) Samples() []Sample {
	s.mu.Lock()
	out := slices.Clone(s.samples)
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Sample) int { return a.Start.Compare(b.Start) })
	return out
}

// WaitSuccessAfter waits until a request that started after t succeeded and returns it.
func (s *Stream) WaitSuccessAfter(ctx context.Context, t time.Time, ok func(body string) bool) (Sample, error) {
	var found Sample
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, sm := range s.Samples() {
			if sm.Start.After(t) && sm.Err == nil && (ok == nil || ok(sm.Body)) {
				found = sm
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return Sample{}, fmt.Errorf("waiting for a successful request after %s: %w", t.Format(time.StampMilli), err)
	}
	return found, nil
}

// WaitSteady waits until no request has failed for span, with requests succeeding during it: the
// path to the Service works before an operation is measured.
func (s *Stream) WaitSteady(ctx context.Context, span time.Duration) error {
	last := "none"
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		samples := s.Samples()
		if len(samples) == 0 {
			return false, nil
		}
		since := samples[0].Start
		for _, sm := range samples {
			if sm.Err != nil {
				last = sm.Err.Error()
				if sm.End.After(since) {
					since = sm.End
				}
			}
		}
		return time.Since(since) >= span && slices.ContainsFunc(samples, func(sm Sample) bool {
			return sm.Err == nil && sm.Start.After(since)
		}), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %v without a failed request (last failure: %s): %w", span, last, err)
	}
	return nil
}

// From keeps the samples that started at or after t.
func From(samples []Sample, t time.Time) []Sample {
	var out []Sample
	for _, sm := range samples {
		if !sm.Start.Before(t) {
			out = append(out, sm)
		}
	}
	return out
}

// Gap is the outage around an event at t: from the last request that succeeded before the first
// failure at or after t (or before t when nothing failed) to the first success after that failure.
// It is 0 when no request started at or after t failed.
func Gap(samples []Sample, t time.Time) time.Duration {
	firstFail := -1
	for i, sm := range samples {
		if !sm.Start.Before(t) && sm.Err != nil {
			firstFail = i
			break
		}
	}
	if firstFail < 0 {
		return 0
	}
	var lastOK time.Time
	for _, sm := range samples[:firstFail] {
		if sm.Err == nil && sm.End.After(lastOK) {
			lastOK = sm.End
		}
	}
	if lastOK.IsZero() {
		lastOK = t
	}
	for _, sm := range samples[firstFail:] {
		if sm.Err == nil {
			return sm.End.Sub(lastOK)
		}
	}
	return -1 // never recovered
}

// Failures counts the failed samples.
func Failures(samples []Sample) int {
	n := 0
	for _, sm := range samples {
		if sm.Err != nil {
			n++
		}
	}
	return n
}

var arpReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]+)\]`)

// ARPReplies sends count ARP requests for ip from node's segment interface and returns the MAC
// address of every reply (upper case, repeats kept), so a test can count who answers.
func (l *Lab) ARPReplies(ctx context.Context, node string, ip netip.Addr, count int) ([]string, error) {
	out, err := l.Exec(ctx, node, "arping", "-c", strconv.Itoa(count), "-w", strconv.Itoa(count+2), "-I", l.Plan.SegmentIface, ip.String())
	var macs []string
	for _, m := range arpReply.FindAllStringSubmatch(out, -1) {
		macs = append(macs, strings.ToUpper(m[1]))
	}
	if len(macs) == 0 {
		return nil, fmt.Errorf("no ARP reply for %s from %s: %w", ip, node, err)
	}
	return macs, nil
}

// MAC returns the MAC address of node's segment interface (upper case).
func (l *Lab) MAC(ctx context.Context, node string) (string, error) {
	out, err := l.Exec(ctx, node, "ip", "-json", "link", "show", l.Plan.SegmentIface)
	if err != nil {
		return "", err
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return "", fmt.Errorf("reading the MAC of %s in %s: %w: %s", l.Plan.SegmentIface, node, err, out)
	}
	return strings.ToUpper(links[0].Address), nil
}

// NeighborMAC pings ip from node (so the kernel resolves it with ARP or NDP) and returns the MAC
// address the neighbour table holds for it.
func (l *Lab) NeighborMAC(ctx context.Context, node string, ip netip.Addr) (string, error) {
	_, _ = l.Exec(ctx, node, "ping", "-c", "1", "-W", "1", ip.String())
	out, err := l.Exec(ctx, node, "ip", "-json", "neigh", "show", ip.String(), "dev", l.Plan.SegmentIface)
	if err != nil {
		return "", err
	}
	var ns []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		return "", fmt.Errorf("decoding neighbours: %w: %s", err, out)
	}
	if len(ns) == 0 || ns[0].LLAddr == "" {
		return "", errors.New("no neighbour entry for " + ip.String() + " in " + node)
	}
	return strings.ToUpper(ns[0].LLAddr), nil
}

// FlushNeighbor removes ip from node's neighbour table.
func (l *Lab) FlushNeighbor(ctx context.Context, node string, ip netip.Addr) {
	_, _ = l.Exec(ctx, node, "ip", "neigh", "flush", "to", ip.String())
}

// NodeByMAC returns the lab node whose segment interface has mac.
func (l *Lab) NodeByMAC(ctx context.Context, mac string) (string, error) {
	for _, n := range l.Nodes {
		m, err := l.MAC(ctx, n.Name)
		if err != nil {
			return "", err
		}
		if strings.EqualFold(m, mac) {
			return n.Name, nil
		}
	}
	return "", fmt.Errorf("no lab node has MAC %s", mac)
}

// NodeAddrs returns the nodes' segment addresses of one family, sorted.
func (l *Lab) NodeAddrs(v4 bool, names ...string) []netip.Addr {
	var out []netip.Addr
	for _, n := range l.Nodes {
		if len(names) > 0 && !slices.Contains(names, n.Name) {
			continue
		}
		a := n.V6
		if v4 {
			a = n.V4
		}
		if a.IsValid() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// HostPrefix is the /32 or /128 of addr.
func HostPrefix(addr netip.Addr) netip.Prefix { return netip.PrefixFrom(addr, addr.BitLen()) }
