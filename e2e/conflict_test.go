package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/netlab"
)

// TestLayer2SplitBrain cuts one node's speaker off memberlist (TCP and UDP 7946 dropped in its
// namespace, to and from both other nodes: with three nodes, cutting only one pair is no split
// brain, as memberlist's indirect probes go through the third; the layer-2 segment and the API
// server still work): it sees only itself and takes over the Service's address, which the owner
// keeps answering. Within seconds the conflict is
// reported on ServiceL2Status, as a Warning event on the Service and by herald_layer2_conflicts;
// the rule leaves the address to its owner, and the segment client sees one responder. Healed,
// the speakers converge with one ServiceL2Status and one responder, and no conflict left.
func TestLayer2SplitBrain(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 3*time.Minute)
	ns := newNamespace(t, l, "split")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
	owner, err := waitL2Owner(ctx, l, ns, "web", "")
	must(t, err)
	ownerMAC, err := l.MAC(ctx, owner)
	must(t, err)
	_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
	must(t, err)

	isolated := ""
	for _, n := range l.Nodes {
		if n.Name != owner {
			isolated = n.Name
			break
		}
	}
	r := splitBrain(t, ctx, l, ns, "web", ip, isolated)
	t.Logf("%s cut off memberlist: conflict on ServiceL2Status after %v (%s), event after %v, metric after %v",
		isolated, r.status, r.conflict, r.event, r.metric)
	// Reported by the owner (with the isolated node): kept; by the isolated node: yielded.
	if (r.conflict.Node == isolated && r.conflict.Action != v1beta1.L2ConflictKept) ||
		(r.conflict.Node == owner && r.conflict.Action != v1beta1.L2ConflictYielded) || r.conflict.Node == "" {
		t.Errorf("first conflict reported (by %s): %+v; want %s to yield to %s, or %s to keep it against %s",
			r.conflict.reporter, r.conflict, isolated, owner, owner, isolated)
	}
	if !strings.Contains(r.message, "split brain") || !strings.Contains(r.message, "7946") {
		t.Errorf("event %q: want it to name the split brain and port 7946", r.message)
	}

	// Settled while the partition lasts: the owner answers, alone (the isolated speaker keeps
	// checking, and keeps yielding).
	want := strings.ToLower(ownerMAC)
	waitOneResponder(t, ctx, l, ip, want)
	if got := l2ConflictMetric(l, isolated, "yielded"); got != 1 {
		t.Errorf("herald_layer2_conflicts{action=yielded} on %s = %v during the partition, want 1", isolated, got)
	}

	// Healed: one status naming the owner, no conflict reported, one responder.
	must(t, l.HealMemberlist(ctx, isolated))
	must(t, withHerald(waitSpeakersConverged(ctx, l), l))
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		cs, err := l2StatusConflicts(ctx, l, ns, "web")
		return err == nil && len(cs) == 0, nil
	})
	must(t, withHerald(err, l))
	final, err := waitL2Owner(ctx, l, ns, "web", "")
	must(t, err)
	if final != owner {
		t.Errorf("after healing %s is announced by %s, want %s: healing moves nothing", ip, final, owner)
	}
	if macs := arpWatch(t, ctx, l, "l2client", ip, 30, 100*time.Millisecond); len(macs) < 25 || slices.ContainsFunc(macs, func(m string) bool { return m != want }) {
		t.Errorf("after healing, ARP replies for %s: %s; want ~30, all from %s (%s)", ip, compact(macs), owner, want)
	}
	for _, n := range l.Nodes {
		if got := l2ConflictMetric(l, n.Name, ""); got != 0 {
			t.Errorf("herald_layer2_conflicts on %s = %v after healing, want 0", n.Name, got)
		}
	}
}

// TestLayer2ForeignHost: a host on the segment (the segment client) already has a pool address
// when a Service requests it. The owner's probe before the first announcement finds the host:
// the Service gets a Warning event naming the host's MAC, ServiceL2Status reports the address
// NotAnnounced, and no node answers for it: the host keeps its address. Once the host gives it up,
// the owner announces it.
func TestLayer2ForeignHost(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 2*time.Minute)
	ns := newNamespace(t, l, "foreign")
	ip := netip.MustParseAddr("198.51.100.118")
	hostMAC, err := l.MAC(ctx, "l2client")
	must(t, err)
	must(t, addAddr(ctx, l, "l2client", ip))
	t.Cleanup(func() { delAddr(context.WithoutCancel(ctx), l, "l2client", ip) })

	got := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName,
		Annotations: map[string]string{v1beta1.AnnotationLoadBalancerIPs: ip.String()}}, 1)
	if got[0] != ip {
		t.Fatalf("Service got %v, want the requested %v", got, ip)
	}
	var msg string
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		evs, err := l.WarningEvents(ctx, "Service", ns, "web")
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		for _, e := range evs {
			if e.Reason == "AddressConflict" {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	must(t, withHerald(err, l))
	if !strings.Contains(msg, strings.ToLower(hostMAC)) || !strings.Contains(msg, "not a Herald speaker") || !strings.Contains(msg, "does not announce") {
		t.Errorf("event %q: want it to name the host %s, say it is not a Herald speaker and that the address is not announced", msg, hostMAC)
	}
	var cs []nodeConflict
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		cs, err = l2StatusConflicts(ctx, l, ns, "web")
		return err == nil && len(cs) > 0, nil
	})
	must(t, withHerald(err, l))
	if c := cs[0]; c.IP != ip.String() || c.Action != v1beta1.L2ConflictNotAnnounced || c.MAC != strings.ToLower(hostMAC) || c.Node != "" {
		t.Errorf("ServiceL2Status conflict %+v: want %s NotAnnounced because of %s", c, ip, hostMAC)
	}
	if got := l2ConflictMetric(l, cs[0].reporter, "not-announced"); got != 1 {
		t.Errorf("herald_layer2_conflicts{action=not-announced} on %s = %v, want 1", cs[0].reporter, got)
	}
	// Only the host answers, as seen from the router's segment interface.
	macs := arpWatch(t, ctx, l, "rt", ip, 20, 100*time.Millisecond)
	if len(macs) < 15 || slices.ContainsFunc(macs, func(m string) bool { return m != strings.ToLower(hostMAC) }) {
		who := map[string]bool{}
		for _, m := range macs {
			n, _ := l.NodeByMAC(ctx, m)
			who[m+" "+n] = true
		}
		t.Errorf("ARP replies for %s: %s (%v); want ~20, all from the host %s", ip, compact(macs), who, hostMAC)
	}

	// The host gives the address up: Herald announces it after its checks go unanswered.
	delAddr(ctx, l, "l2client", ip)
	owner := cs[0].reporter
	_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
	must(t, err)
}

// TestMeasureL2Conflict measures, for `make bench` (HERALD_BENCH=1), how long a split brain takes
// to be reported on ServiceL2Status: from cutting a node off memberlist to the first conflict in
// status (median of 3), as l2_conflict_detect_ms. It includes memberlist declaring the others
// dead on the cut-off node (about 1.3s with the default timers) and the 1s confirmation.
func TestMeasureL2Conflict(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("measurement: set HERALD_BENCH=1 (make bench)")
	}
	l := requireHerald(t)
	ctx := deadline(t, 5*time.Minute)
	ns := newNamespace(t, l, "m-split")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName}, 1)[0]
	owner, err := waitL2Owner(ctx, l, ns, "web", "")
	must(t, err)
	var ds []time.Duration
	for i := range 3 {
		isolated := l.Nodes[i%len(l.Nodes)].Name
		if isolated == owner {
			isolated = l.Nodes[(i+1)%len(l.Nodes)].Name
		}
		r := splitBrain(t, ctx, l, ns, "web", ip, isolated)
		ds = append(ds, r.status)
		must(t, l.HealMemberlist(ctx, isolated))
		must(t, withHerald(waitSpeakersConverged(ctx, l), l))
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
			cs, err := l2StatusConflicts(ctx, l, ns, "web")
			return err == nil && len(cs) == 0, nil
		})
		must(t, err)
	}
	t.Logf("conflict in status after %v", ds)
	report(t, "l2_conflict_detect_ms", median(ds))
}

// splitReport is when a split brain was first reported, each way, after the cut.
type splitReport struct {
	status, event, metric time.Duration
	conflict              nodeConflict // the first one seen in status
	message               string       // the first AddressConflict event
}

// splitBrain cuts isolated off memberlist (healed when the test ends) and waits until the conflict
// over ip shows in ServiceL2Status, in a Warning event on the Service and in a speaker's metrics.
func splitBrain(t *testing.T, ctx context.Context, l *lab.Lab, ns, svc string, ip netip.Addr, isolated string) splitReport {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		if err := l.HealMemberlist(ctx, isolated); err != nil {
			t.Errorf("healing %s: %v", isolated, err)
		}
		if err := waitSpeakersConverged(ctx, l); err != nil {
			t.Errorf("after healing %s: %v", isolated, err)
		}
	})
	// Events repeat by count: a conflict is new when its event is, or counts more.
	before := map[string]int32{}
	if evs, err := l.WarningEvents(ctx, "Service", ns, svc); err == nil {
		for _, e := range evs {
			before[e.Name] = e.Count
		}
	}
	start := time.Now()
	must(t, l.IsolateMemberlist(ctx, isolated))
	var r splitReport
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		at := time.Since(start)
		if r.status == 0 {
			if cs, err := l2StatusConflicts(ctx, l, ns, svc); err == nil && len(cs) > 0 {
				r.status, r.conflict = at, cs[0]
			}
		}
		if r.event == 0 {
			if evs, err := l.WarningEvents(ctx, "Service", ns, svc); err == nil {
				for _, e := range evs {
					if e.Reason == "AddressConflict" && e.Count > before[e.Name] && strings.Contains(e.Message, ip.String()) {
						r.event, r.message = at, e.Message
					}
				}
			}
		}
		if r.metric == 0 {
			for _, n := range l.Nodes {
				if l2ConflictMetric(l, n.Name, "") > 0 {
					r.metric = at
				}
			}
		}
		return r.status > 0 && r.event > 0 && r.metric > 0, nil
	})
	if err != nil {
		t.Fatal(withHerald(fmt.Errorf("%s cut off memberlist: conflict over %s reported in status after %v, event %v, metric %v (0: not seen): %w",
			isolated, ip, r.status, r.event, r.metric, err), l))
	}
	if limit := 10 * time.Second; r.status > limit || r.event > limit || r.metric > limit {
		t.Errorf("conflict reported after %v (status), %v (event), %v (metric): want within %v", r.status, r.event, r.metric, limit)
	}
	return r
}

// waitOneResponder waits (up to 20s) until a stream of ARP requests for ip from the segment client,
// 3s of them every 100ms, is answered by mac alone.
func waitOneResponder(t *testing.T, ctx context.Context, l *lab.Lab, ip netip.Addr, mac string) {
	t.Helper()
	var last []string
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		last = arpWatch(t, ctx, l, "l2client", ip, 30, 100*time.Millisecond)
		if len(last) >= 25 && !slices.ContainsFunc(last, func(m string) bool { return m != mac }) {
			return
		}
	}
	t.Fatal(withHerald(fmt.Errorf("ARP replies for %s: %s; want all from %s", ip, compact(last), mac), l))
}

// nodeConflict is a conflict some node's ServiceL2Status reports.
type nodeConflict struct {
	v1beta1.L2Conflict
	reporter string
}

// l2StatusConflicts returns the conflicts the ServiceL2Status objects of a Service report.
func l2StatusConflicts(ctx context.Context, l *lab.Lab, ns, name string) ([]nodeConflict, error) {
	var list v1beta1.ServiceL2StatusList
	if err := l.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing ServiceL2Status: %w", err)
	}
	var out []nodeConflict
	for _, s := range list.Items {
		if s.Status.ServiceNamespace == ns && s.Status.ServiceName == name {
			for _, c := range s.Status.Conflicts {
				out = append(out, nodeConflict{L2Conflict: c, reporter: s.Status.Node})
			}
		}
	}
	return out, nil
}

// l2ConflictMetric sums herald_layer2_conflicts on node's speaker, for one action ("": all).
func l2ConflictMetric(l *lab.Lab, node, action string) float64 {
	n, ok := l.Node(node)
	if !ok {
		return -1
	}
	hc := &http.Client{Timeout: time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort(n.V4.String(), "7472") + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "herald_layer2_conflicts{") || (action != "" && !strings.Contains(line, `action="`+action+`"`)) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// arpWatch sends n ARP requests for ip from node's segment interface, one every interval, and
// returns the MAC of every reply (lower case, in order).
func arpWatch(t *testing.T, ctx context.Context, l *lab.Lab, node string, ip netip.Addr, n int, interval time.Duration) []string {
	t.Helper()
	w := listenARP(t, l, node, ip)
	defer w.close()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		w.request(t)
	}
	return w.stop(t)
}

// arpListener is an ARP client whose socket lives in a lab node's namespace, on its segment
// interface, recording the MAC of every reply for one IP.
type arpListener struct {
	c    *arp.Client
	ip   netip.Addr
	done chan struct{}
	mu   sync.Mutex
	macs []string // lower case, in order
}

// listenARP opens an arpListener for ip in node; stop or close ends it (closing twice is harmless).
func listenARP(t *testing.T, l *lab.Lab, node string, ip netip.Addr) *arpListener {
	t.Helper()
	w := &arpListener{ip: ip, done: make(chan struct{})}
	must(t, netlab.Do(l.NS(node), func() error {
		ifi, err := net.InterfaceByName(l.Plan.SegmentIface)
		if err != nil {
			return err
		}
		w.c, err = arp.Dial(ifi)
		return err
	}))
	go func() {
		defer close(w.done)
		for {
			p, _, err := w.c.Read()
			if err != nil {
				return // the deadline of stop, or close, ends the loop
			}
			if p.Operation == arp.OperationReply && p.SenderIP == ip {
				w.mu.Lock()
				w.macs = append(w.macs, strings.ToLower(p.SenderHardwareAddr.String()))
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// request sends an ARP request for the IP.
func (w *arpListener) request(t *testing.T) {
	t.Helper()
	must(t, w.c.Request(w.ip))
}

// replies is how many replies came so far.
func (w *arpListener) replies() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.macs)
}

// stop takes the replies for 200 ms more, closes the client and returns the MACs of all replies.
func (w *arpListener) stop(t *testing.T) []string {
	t.Helper()
	must(t, w.c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	<-w.done
	w.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.macs)
}

func (w *arpListener) close() { _ = w.c.Close() }

func addAddr(ctx context.Context, l *lab.Lab, node string, ip netip.Addr) error {
	_, err := l.Exec(ctx, node, "ip", "addr", "add", lab.HostPrefix(ip).String(), "dev", l.Plan.SegmentIface)
	return err
}

func delAddr(ctx context.Context, l *lab.Lab, node string, ip netip.Addr) {
	_, _ = l.Exec(ctx, node, "ip", "addr", "del", lab.HostPrefix(ip).String(), "dev", l.Plan.SegmentIface)
}
