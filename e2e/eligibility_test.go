package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/herald-lb/herald/speaker/nodemeta"
)

// probeInterval is how often the tests below ask for every layer-2 IP.
const probeInterval = 10 * time.Millisecond

// waitMembers waits until every speaker counts n members (ready or not).
func waitMembers(ctx context.Context, l *lab.Lab, n int) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, node := range l.Nodes {
			v, err := speakerMetric(ctx, l, node.Name, "herald_speaker_members")
			if err != nil || v != float64(n) {
				last = fmt.Sprintf("%s: %v members (%v)", node.Name, v, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d members everywhere (%s): %w", n, last, err)
	}
	return nil
}

// TestLayer2SpeakerWithoutValidConfigGetsNoIP: a speaker that restarts while the configuration is
// invalid for it (a BGPPeer whose password Secret is missing; Secrets pass no webhook) joins its
// peers but is not handed any layer-2 IP: every IP stays answered by the two healthy speakers,
// which keep their last good configuration. The restarted speaker is the owner of an IP before,
// so a speaker elected on liveness alone would leave that IP dark.
func TestLayer2SpeakerWithoutValidConfigGetsNoIP(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 3*time.Minute)
	ns := newNamespace(t, l, "noconf")
	ips, owners := l2Services(t, ctx, l, ns, 6)
	victim := owners[ips[0]]

	peer := &v1beta1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: "missing-secret"},
		Spec: v1beta1.BGPPeerSpec{MyASN: l.Plan.NodeASN, PeerASN: l.Plan.RouterASN, PeerAddress: "198.51.100.4",
			PasswordSecret: &v1beta1.SecretKeyReference{Name: "no-such-secret"}},
	}
	must(t, l.Client.Create(ctx, peer))
	t.Cleanup(func() {
		_ = l.Client.Delete(context.Background(), peer)
		if err := waitSpeakerReady(context.Background(), l, victim); err != nil {
			t.Errorf("after the configuration was fixed: %v", err)
		}
	})

	probe := startARPProbe(t, l.NS("l2client"), l.Plan.SegmentIface, ips, probeInterval)
	restartSpeakerAfter(t, l, victim)
	must(t, l.StopSpeaker(victim, syscall.SIGTERM))
	must(t, l.StartSpeaker(victim))
	must(t, waitMembers(ctx, l, len(l.Nodes)))
	// It has computed (and refused) the configuration; give a wrongly elected node time to show.
	must(t, wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		v, err := speakerMetric(ctx, l, victim, "herald_speaker_sync_seconds_count")
		return err == nil && v > 0, nil
	}))
	soak := time.NewTimer(3 * time.Second)
	<-soak.C
	probe.Stop()
	probe.checkGaps(t, "a speaker restarted without a valid configuration")
	ready, err := speakerMetric(ctx, l, victim, "herald_speaker_ready")
	t.Logf("the restarted speaker of %s says ready=%v (%v)", victim, ready, err)
	for i, ip := range ips {
		got, err := l.L2Owners(ctx, ns, fmt.Sprintf("web-%d", i))
		must(t, err)
		if len(got) != 1 || (ready == 0 && got[0] == victim) {
			t.Errorf("%s: ServiceL2Status names %v; want one node, not %s, which cannot answer", ip, got, victim)
		}
	}
}

// TestLayer2RollingRestart: every speaker in turn is stopped with SIGTERM and started again (and
// the next one only once it is a member and ready), under an ARP request for every layer-2 IP
// every 10 ms. Two NotReady Nodes whose speakers do not exist (their addresses answer nothing)
// make joining dial peers that never answer: a restarted speaker must neither hold its first
// computation on them nor take IPs before it can answer. No IP may go unanswered longer than the
// kill -9 failover target.
func TestLayer2RollingRestart(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 4*time.Minute)
	for i, addr := range []string{"198.51.100.14", "198.51.100.15"} {
		ghostNode(t, ctx, l, fmt.Sprintf("ghost-%d", i), addr)
	}
	ns := newNamespace(t, l, "rolling")
	ips, _ := l2Services(t, ctx, l, ns, 6)

	probe := startARPProbe(t, l.NS("l2client"), l.Plan.SegmentIface, ips, probeInterval)
	for _, n := range l.Nodes {
		restartSpeakerAfter(t, l, n.Name)
		start := time.Now()
		must(t, l.StopSpeaker(n.Name, syscall.SIGTERM))
		must(t, l.StartSpeaker(n.Name))
		must(t, withHerald(waitSpeakerReady(ctx, l, n.Name), l))
		t.Logf("%s stopped at %s, restarted, member and ready after %v", n.Name, start.Format("15:04:05.000"), time.Since(start).Round(time.Millisecond))
	}
	// Let the last one take its IPs back before the probe ends.
	settle := time.NewTimer(time.Second)
	<-settle.C
	probe.Stop()
	probe.checkGaps(t, "rolling restart of every speaker")
}

// ghostNode creates a NotReady Node with an InternalIP where no speaker runs, deleted at the end.
func ghostNode(t *testing.T, ctx context.Context, l *lab.Lab, name, addr string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	must(t, l.Client.Create(ctx, node))
	t.Cleanup(func() { _ = l.Client.Delete(context.Background(), node) })
	now := metav1.Now()
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
		Reason: "NodeStatusUnknown", Message: "lab ghost: kubelet stopped posting", LastHeartbeatTime: now, LastTransitionTime: now}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
	must(t, l.Client.Status().Update(ctx, node))
}

// secondSegment gives every node an eth1 on a second bridge, with a client there, and a pool
// announced only on eth1 (the L2Advertisement names it): eth0 stays the nodes' management link
// (memberlist, the API server), as on nodes with a separate service segment.
type secondSegment struct {
	net       *netlab.Lab
	sw        string
	client    string
	pool, adv string
}

const seg2Client = "198.51.100.226/28"

func newSecondSegment(t *testing.T, ctx context.Context, l *lab.Lab) *secondSegment {
	t.Helper()
	s := &secondSegment{net: netlab.ForTest(t), pool: "seg2", adv: "seg2"}
	var err error
	s.sw, err = s.net.AddNS("seg2sw")
	must(t, err)
	must(t, s.net.Bridge(s.sw, "br2"))
	s.client, err = s.net.AddNS("seg2c")
	must(t, err)
	must(t, s.net.Veth(s.client, "eth0", s.sw, "p-client", "br2"))
	_, err = s.net.Exec(s.client, "ip", "addr", "add", seg2Client, "dev", "eth0")
	must(t, err)
	for _, n := range l.Nodes {
		must(t, s.net.Veth(l.NS(n.Name), "eth1", s.sw, "p-"+n.Name, "br2"))
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: lab.HeraldNamespace}
	}
	pool := &v1beta1.IPAddressPool{ObjectMeta: meta(s.pool), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.232-198.51.100.235"}}}
	adv := &v1beta1.L2Advertisement{ObjectMeta: meta(s.adv), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{s.pool}, Interfaces: []string{"eth1"}}}
	must(t, l.Client.Create(ctx, pool))
	must(t, l.Client.Create(ctx, adv))
	t.Cleanup(func() {
		_ = l.Client.Delete(context.Background(), adv)
		_ = l.Client.Delete(context.Background(), pool)
	})
	return s
}

// mac returns the MAC of node's eth1 (upper case).
func (s *secondSegment) mac(t *testing.T, l *lab.Lab, node string) string {
	t.Helper()
	out, err := s.net.Exec(l.NS(node), "ip", "-json", "link", "show", "eth1")
	must(t, err)
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("reading the MAC of eth1 in %s: %v: %s", node, err, out)
	}
	return strings.ToUpper(links[0].Address)
}

// waitAnswered waits until ip is answered by one node's eth1 only, for at least 300 ms of probes,
// and one ServiceL2Status names that node; it returns the node.
func (s *secondSegment) waitAnswered(t *testing.T, ctx context.Context, l *lab.Lab, p *arpProbe, ip netip.Addr, ns, svc string, ok func(node, mac string) bool) string {
	t.Helper()
	macs := map[string]string{}
	for _, n := range l.Nodes {
		macs[s.mac(t, l, n.Name)] = n.Name
	}
	var last string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		mac, at := p.lastMAC(ip)
		node := macs[mac]
		owners, err := l.L2Owners(ctx, ns, svc)
		last = fmt.Sprintf("last reply %s (%s) at %s, status %v (%v)", mac, node, at.Format("15:04:05.000"), owners, err)
		if node == "" || time.Since(at) > 100*time.Millisecond || !ok(node, mac) || err != nil || !slices.Equal(owners, []string{node}) {
			return false, nil
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		rs := p.replies[ip]
		var recent int
		for i := len(rs) - 1; i >= 0 && time.Since(rs[i].at) < 300*time.Millisecond; i-- {
			if rs[i].mac != mac {
				return false, nil // another node answered too, lately
			}
			recent++
		}
		return recent >= 10, nil
	})
	if err != nil {
		t.Fatal(withHerald(fmt.Errorf("waiting for %s to be answered on the second segment: %s: %w", ip, last, err), l))
	}
	return macs[must2(p.lastMAC(ip))]
}

func must2[T, U any](v T, _ U) T { return v }

// TestLayer2SecondSegment: nodes with a management link (eth0) and a service segment (eth1, named
// by the L2Advertisement).
//   - The owner's segment link goes down (its switch port): the owner is no longer eligible,
//     another node answers on the segment, and the status names the node that answers; the cut-off
//     node claims the IP nowhere else.
//   - The owner's eth1 is deleted and created again under the same name (new index, new MAC): the
//     speaker reopens it and answers there again.
func TestLayer2SecondSegment(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 3*time.Minute)
	seg := newSecondSegment(t, ctx, l)
	ns := newNamespace(t, l, "seg2")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: seg.pool}, 1)[0]
	probe := startARPProbe(t, seg.client, "eth0", []netip.Addr{ip}, probeInterval)
	owner := seg.waitAnswered(t, ctx, l, probe, ip, ns, "web", func(string, string) bool { return true })
	t.Logf("%s answered on the second segment by %s", ip, owner)
	// The management segment never sees it: the advertisement names eth1 only.
	if macs, err := l.ARPReplies(ctx, "l2client", ip, 2); err == nil {
		t.Errorf("%s answered on the management segment by %v", ip, macs)
	}

	t.Run("segment link down", func(t *testing.T) {
		port := "p-" + owner
		_, err := seg.net.Exec(seg.sw, "ip", "link", "set", port, "down")
		must(t, err)
		cut := time.Now()
		t.Cleanup(func() { _, _ = seg.net.Exec(seg.sw, "ip", "link", "set", port, "up") })
		next := seg.waitAnswered(t, ctx, l, probe, ip, ns, "web", func(node, _ string) bool { return node != owner })
		t.Logf("with %s's segment link down, %s answered by %s after %v; status names it", owner, ip, next, time.Since(cut).Round(time.Millisecond))
		if macs, err := l.ARPReplies(ctx, "l2client", ip, 2); err == nil {
			t.Errorf("the cut-off node claims %s on the management segment: replies from %v", ip, macs)
		}
		_, err = seg.net.Exec(seg.sw, "ip", "link", "set", port, "up")
		must(t, err)
		back := seg.waitAnswered(t, ctx, l, probe, ip, ns, "web", func(node, _ string) bool { return node == owner })
		t.Logf("link up again: %s answered by %s", ip, back)
	})

	t.Run("interface recreated", func(t *testing.T) {
		before := seg.mac(t, l, owner)
		_, err := seg.net.Exec(l.NS(owner), "ip", "link", "del", "eth1")
		must(t, err)
		must(t, seg.net.Veth(l.NS(owner), "eth1", seg.sw, "p-"+owner, "br2"))
		recreated := time.Now()
		after := seg.mac(t, l, owner)
		if after == before {
			t.Fatalf("eth1 of %s kept its MAC %s: not recreated", owner, after)
		}
		seg.waitAnswered(t, ctx, l, probe, ip, ns, "web", func(node, mac string) bool { return node == owner && mac == after })
		t.Logf("eth1 of %s recreated (MAC %s -> %s): answered there again after %v", owner, before, after, time.Since(recreated).Round(time.Millisecond))
	})
}

// TestLayer2ManyRoutedPodVeths: a node with 300 routed pod veths (ptp CNI style: host ends up,
// outside any bridge, with the gateway address and a route each; pod ends in another namespace)
// restarts its speaker and keeps its share of the IPs; its metadata is as small as on a node
// without pods; then 300 more veths come and go under a 10 ms ARP probe: no IP goes unanswered
// longer than the failover target, no owner changes and the speaker publishes nothing new.
func TestLayer2ManyRoutedPodVeths(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 4*time.Minute)
	ns := newNamespace(t, l, "veths")
	ips, owners := l2Services(t, ctx, l, ns, 6)
	node := owners[ips[0]]

	pods := netlab.ForTest(t)
	podNS, err := pods.AddNS("pods")
	must(t, err)
	veths, err := netlab.RoutedVeths(l.NS(node), podNS, "cali", 0, 300)
	must(t, err)
	out, err := l.Exec(ctx, node, "ip", "-o", "link", "show", "up")
	must(t, err)
	if n := strings.Count(out, ": cali"); n != 300 {
		t.Fatalf("%s has %d pod veths up, want 300", node, n)
	}

	restartSpeakerAfter(t, l, node)
	must(t, l.StopSpeaker(node, syscall.SIGTERM))
	must(t, l.StartSpeaker(node))
	must(t, withHerald(waitSpeakerReady(ctx, l, node), l))
	waitOwners(t, ctx, l, ns, ips, owners)

	size, err := speakerMetric(ctx, l, node, "herald_speaker_metadata_bytes")
	must(t, err)
	other := owners[ips[0]]
	for _, n := range l.Nodes {
		if n.Name != node {
			other = n.Name
		}
	}
	otherSize, err := speakerMetric(ctx, l, other, "herald_speaker_metadata_bytes")
	must(t, err)
	t.Logf("metadata: %v bytes on %s (300 pod veths), %v on %s", size, node, otherSize, other)
	if size > nodemeta.MaxSize || size != otherSize {
		t.Errorf("metadata of %s with 300 pod veths is %v bytes; want the same as %s without any (%v), within %d", node, size, other, otherSize, nodemeta.MaxSize)
	}
	updates, err := speakerMetric(ctx, l, node, "herald_speaker_metadata_updates_total")
	must(t, err)

	probe := startARPProbe(t, l.NS("l2client"), l.Plan.SegmentIface, ips, probeInterval)
	next := 300
	for round := range 6 {
		var gone []string
		for _, v := range veths[round*50 : round*50+50] {
			gone = append(gone, v.Host)
		}
		must(t, netlab.DeleteVeths(l.NS(node), gone))
		added, err := netlab.RoutedVeths(l.NS(node), podNS, "cali", next, 50)
		must(t, err)
		veths = append(veths, added...)
		next += 50
	}
	settle := time.NewTimer(time.Second)
	<-settle.C
	probe.Stop()
	probe.checkGaps(t, "pod veth churn")
	if _, ip, _ := probe.worstGap(); owners[ip] == node {
		t.Logf("(%s is owned by %s, the node with the pod veths)", ip, node)
	}
	if got, err := speakerMetric(ctx, l, node, "herald_speaker_metadata_updates_total"); err != nil || got != updates {
		t.Errorf("metadata updates on %s during pod churn: %v -> %v (%v), want none", node, updates, got, err)
	}
	waitOwners(t, ctx, l, ns, ips, owners)
}

// waitOwners waits until each IP's ServiceL2Status names exactly its owner in want.
func waitOwners(t *testing.T, ctx context.Context, l *lab.Lab, ns string, ips []netip.Addr, want map[netip.Addr]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		for i, ip := range ips {
			got, err := l.L2Owners(ctx, ns, fmt.Sprintf("web-%d", i))
			if err != nil || !slices.Equal(got, []string{want[ip]}) {
				last = fmt.Sprintf("%s: status names %v (%v), want %s", ip, got, err, want[ip])
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var list v1beta1.ServiceL2StatusList
		_ = l.Client.List(context.Background(), &list)
		for _, o := range list.Items {
			t.Logf("ServiceL2Status %s: labels %v, status %+v, created %v", o.Name, o.Labels, o.Status, o.CreationTimestamp)
		}
		t.Fatal(withHerald(fmt.Errorf("owners changed: %s: %w", last, err), l))
	}
}
