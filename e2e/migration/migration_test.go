// Package migration runs the migration from MetalLB to Herald end to end in Herald's lab: MetalLB
// v0.15 (built from the Go module proxy) announces two Services, one over layer 2 and one over BGP,
// then the README's runbook moves them to Herald while clients keep sending requests, and the test
// measures what the clients see. It has a lab of its own (started without Herald), so it lives in a
// package of its own; the lab's machine-wide lock makes it wait for other lab runs.
package migration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli"
	"github.com/herald-lb/herald/cli/manifest"
	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/internal/testing/frr"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// MetalLBVersion is the MetalLB release the migration starts from (module go.universe.tf/metallb).
const MetalLBVersion = "v0.15.2"

const (
	metallbNS    = "metallb-system"
	speakerLabel = "app=metallb,component=speaker"
	// mlPort is MetalLB's memberlist port in the lab: not Herald's 7946, although the two never
	// run on one node at the same time.
	mlPort = "7947"
)

// metallbBinaries returns MetalLB's controller and speaker, built into <repo>/bin on first use
// (`make metallb-assets` does the same).
func metallbBinaries(t *testing.T, repo string) (controller, speaker string) {
	t.Helper()
	bin := filepath.Join(repo, "bin")
	controller = filepath.Join(bin, "metallb-controller-"+MetalLBVersion)
	speaker = filepath.Join(bin, "metallb-speaker-"+MetalLBVersion)
	for _, b := range []struct{ out, pkg string }{{controller, "go.universe.tf/metallb/controller"}, {speaker, "go.universe.tf/metallb/speaker"}} {
		if _, err := os.Stat(b.out); err == nil {
			continue
		}
		tmp := t.TempDir()
		cmd := exec.CommandContext(t.Context(), "go", "install", "-trimpath", b.pkg+"@"+MetalLBVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building MetalLB %s (%s): %v\n%s", MetalLBVersion, b.pkg, err, out)
		}
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(tmp, filepath.Base(b.pkg)), b.out); err != nil {
			t.Fatal(err)
		}
	}
	return controller, speaker
}

// running is the lab of the test in progress, removed if the test binary is interrupted.
var running atomic.Pointer[lab.Lab]

func TestMain(m *testing.M) {
	// kubectl herald runs in this process: without a logger controller-runtime prints a stack
	// trace after 30 s to say it has none.
	ctrl.SetLogger(logr.Discard())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "migration: %v: removing the lab\n", s)
		if l := running.Load(); l != nil {
			_ = l.Close()
		}
		os.Exit(130)
	}()
	os.Exit(m.Run())
}

// herald runs kubectl herald against the lab.
func herald(t *testing.T, l *lab.Lab, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(t.Context(), append(args, "--kubeconfig", l.Kubeconfig), cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func createYAML(t *testing.T, ctx context.Context, c client.Client, doc string) {
	t.Helper()
	objs, err := manifest.Decode("test.yaml", strings.NewReader(doc))
	must(t, err)
	for _, o := range objs {
		if err := c.Create(ctx, o.Object); err != nil {
			t.Fatalf("creating %s %s: %v", o.Object.GetKind(), o.Object.GetName(), err)
		}
	}
}

// metallbConfig is MetalLB's configuration for the lab: the lab's two pools, layer 2 for one,
// BGP to the router for the other (IPv4: MetalLB's native BGP, which takes no keepaliveTime: it
// keeps alive every holdTime/3). The test's CRDs have no defaults: the fields MetalLB's CRDs
// default (peerPort, aggregationLength) are written out.
func metallbConfig(l *lab.Lab) string {
	rt := l.RouterAddrs()[0]
	return fmt.Sprintf(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2, namespace: %[1]s}
spec:
  addresses: [%[2]s]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: %[1]s}
spec:
  addresses: [%[3]s]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: %[1]s}
spec:
  ipAddressPools: [l2]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: %[1]s}
spec:
  ipAddressPools: [bgp]
  aggregationLength: 32
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: rt, namespace: %[1]s}
spec:
  myASN: %[4]d
  peerASN: %[5]d
  peerAddress: %[6]s
  peerPort: 179
  holdTime: 3s
`, metallbNS, l.Plan.L2Pool[0], l.Plan.BGPPool[0], l.Plan.NodeASN, l.Plan.RouterASN, rt)
}

// speakerPods creates, for MetalLB's memberlist, the speaker Pods MetalLB's speakers list to find
// each other (the lab runs them as processes): one per node, Running, with the node's address.
func speakerPods(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: metallbNS, Name: "default"}}
	if err := l.Client.Create(ctx, sa); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: metallbNS, Name: "speaker-" + n.Name, Labels: map[string]string{"app": "metallb", "component": "speaker"}},
			Spec: corev1.PodSpec{NodeName: n.Name, HostNetwork: true, AutomountServiceAccountToken: new(bool),
				Containers: []corev1.Container{{Name: "speaker", Image: "quay.io/metallb/speaker:" + MetalLBVersion}}},
		}
		must(t, l.Client.Create(ctx, p))
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: n.V4.String(), PodIPs: []corev1.PodIP{{IP: n.V4.String()}}, HostIP: n.V4.String(),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		must(t, l.Client.Status().Update(ctx, p))
	}
}

func startMetalLBSpeaker(l *lab.Lab, bin string, n lab.NodeInfo) error {
	_, err := l.StartProcess("metallb-speaker-"+n.Name, n.Name, bin,
		"--kubeconfig", l.LabKubeconfig, "--node-name", n.Name, "--pod-name", "speaker-"+n.Name, "--namespace", metallbNS,
		"--host", n.V4.String(), "--port", "7482", "--log-level", "info",
		"--ml-bindaddr", n.V4.String(), "--ml-bindport", mlPort, "--ml-labels", speakerLabel)
	return err
}

// metallbL2Owner is the node that answers ARP for ip on MetalLB's behalf, as the layer-2 client
// sees it: the MAC its neighbour table resolves ip to, the same in two readings in a row (MetalLB's
// speakers may both answer for a moment before their memberlist settles). It is read on the wire,
// not from MetalLB's ServiceL2Status: a run once waited 14 minutes for MetalLB's status objects,
// left at two owners after an update conflict, while the one owner answered. It gives up after 30s.
func metallbL2Owner(ctx context.Context, l *lab.Lab, ip netip.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var owner, last string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		l.FlushNeighbor(ctx, "l2client", ip)
		mac, err := l.NeighborMAC(ctx, "l2client", ip)
		if err != nil {
			last = ""
			return false, nil //nolint:nilerr // retried until the deadline
		}
		node, err := l.NodeByMAC(ctx, mac)
		if err != nil {
			return false, err
		}
		if node == last {
			owner = node
			return true, nil
		}
		last = node
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("finding the node that answers for %s: %w", ip, err)
	}
	return owner, nil
}

// outage is the longest time without a successful request, and the failed requests.
func outage(samples []lab.Sample) (longest time.Duration, failed int) {
	var lastOK time.Time
	down := false
	for _, s := range samples {
		if s.Err != nil {
			failed++
			down = true
			continue
		}
		if down && !lastOK.IsZero() && s.End.Sub(lastOK) > longest {
			longest = s.End.Sub(lastOK)
		}
		down = false
		if s.End.After(lastOK) {
			lastOK = s.End
		}
	}
	return longest, failed
}

func report(t *testing.T, name string, value float64, unit string) {
	t.Helper()
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, value, unit})
	fmt.Printf("BENCHJSON %s\n", line)
	t.Logf("%s = %v %s", name, value, unit)
}

// TestMigrateFromMetalLB follows the README's runbook in the lab, with requests flowing to a
// layer-2 Service (from the segment client, whose neighbor entry is flushed every 100 ms so that
// every answer to ARP counts) and to a BGP Service (from the client behind the router):
//
//  1. kubectl herald migrate-from-metallb --apply --layer2=false: Herald's configuration without
//     its L2Advertisements;
//  2. MetalLB's controller stops, Herald's starts: every Service keeps its IPs (from status);
//  3. node by node but the last, MetalLB's layer-2 owner first: MetalLB's speaker stops (MetalLB
//     fails layer 2 over among the others; the router keeps the other next hops), Herald's starts
//     and opens its BGP session;
//  4. the last MetalLB speaker stops, kubectl herald migrate-from-metallb --apply adds the
//     L2Advertisements (Herald's speakers answer ARP), Herald's speaker starts on the last node.
//
// Targets: no BGP request lost; the layer-2 gap under 1 s (the longest of MetalLB's own failover
// in step 3 and Herald's takeover in step 4, each reported).
func TestMigrateFromMetalLB(t *testing.T) {
	lab.RequireMachine(t)
	repo, err := testenv.RepoRoot()
	must(t, err)
	mlbController, mlbSpeaker := metallbBinaries(t, repo)
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Minute) // includes waiting for other labs on this machine
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l, err := lab.Start(ctx, lab.Options{NoHerald: true, Log: log, LogLevel: "info"})
	must(t, err)
	running.Store(l)
	t.Cleanup(func() {
		running.Store(nil)
		if t.Failed() {
			t.Logf("lab logs:\n%s", l.LogTails(40))
		}
		if err := l.Close(); err != nil {
			t.Errorf("removing the lab: %v", err)
		}
	})
	must(t, l.BuildHerald(ctx))
	must(t, memberlistkey.EnsureSecret(ctx, crclient.Client(l.Client), lab.HeraldNamespace, lab.MemberlistSecret))

	// MetalLB, as processes: its CRDs, configuration, controller and speakers.
	_, err = envtest.InstallCRDs(l.Env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(repo, "cli", "testdata", "metallb-crds.yaml")}, ErrorIfPathMissing: true})
	must(t, err)
	must(t, l.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metallbNS}}))
	createYAML(t, ctx, l.Client, metallbConfig(l))
	speakerPods(t, ctx, l)
	_, err = l.StartProcess("metallb-controller", "", mlbController, "--kubeconfig", l.LabKubeconfig, "--namespace", metallbNS,
		"--webhook-mode=disabled", "--disable-cert-rotation", "--port", "7572", "--log-level", "info")
	must(t, err)
	for _, n := range l.Nodes {
		must(t, startMetalLBSpeaker(l, mlbSpeaker, n))
	}

	ns, err := l.NewNamespace(ctx, "shop")
	must(t, err)
	_, err = l.CreateService(ctx, lab.ServiceSpec{Namespace: ns, Name: "web", Annotations: map[string]string{"metallb.universe.tf/address-pool": "l2"}})
	must(t, err)
	_, err = l.CreateService(ctx, lab.ServiceSpec{Namespace: ns, Name: "api", Annotations: map[string]string{"metallb.io/address-pool": "bgp"}})
	must(t, err)
	webIPs, err := l.WaitIngress(ctx, ns, "web", 1)
	must(t, err)
	apiIPs, err := l.WaitIngress(ctx, ns, "api", 1)
	must(t, err)
	webIP, apiIP := webIPs[0], apiIPs[0]
	all := l.NodeAddrs(true)
	_, err = l.WaitCurl(ctx, "l2client", webIP, 80, nil)
	must(t, err)
	_, err = l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(apiIP), all, 10*time.Millisecond)
	must(t, err)
	_, err = l.WaitCurl(ctx, "extclient", apiIP, 80, nil)
	must(t, err)
	mlbOwner, err := metallbL2Owner(ctx, l, webIP)
	must(t, err)
	t.Logf("MetalLB announces %s over layer 2 from %s and %s over BGP from every node", webIP, mlbOwner, apiIP)

	// The clients.
	flushCtx, stopFlush := context.WithCancel(ctx)
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for flushCtx.Err() == nil {
			l.FlushNeighbor(flushCtx, "l2client", webIP)
			select {
			case <-flushCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	// The router's next hops for the BGP Service, as the kernel changes them: a lost request is
	// told apart by whether a next hop was added or removed while it was in flight.
	routes, err := l.Router.WatchKernelRoutes(ctx)
	must(t, err)
	var hopChanges []frr.KernelRouteEvent
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range routes.Events() {
			// zebra may replace a nexthop object and then the route: one change of the set.
			if ev.Prefix == lab.HostPrefix(apiIP) && (len(hopChanges) == 0 || !slices.Equal(hopChanges[len(hopChanges)-1].Hops, ev.Hops)) {
				hopChanges = append(hopChanges, ev)
			}
		}
	}()
	l2 := l.StartStream("l2client", lab.URL(webIP, 80), 10*time.Millisecond, 300*time.Millisecond)
	bgp := l.StartStream("extclient", lab.URL(apiIP, 80), 10*time.Millisecond, 300*time.Millisecond)
	defer func() {
		stopFlush()
		<-flushed
		l2.Stop()
		bgp.Stop()
		routes.Stop()
		<-watched
	}()
	time.Sleep(time.Second) //nolint:forbidigo // the clients' baseline before the migration: a time span, not a synchronisation

	// 1. Herald's configuration, without layer 2.
	code, _, errOut := herald(t, l, "migrate-from-metallb", "--apply", "--layer2=false")
	if code != cli.ExitOK {
		t.Fatalf("migrate-from-metallb --apply --layer2=false: exit %d\n%s", code, errOut)
	}
	t.Logf("migrate-from-metallb:\n%s", errOut)

	// 2. The controllers.
	l.Proc("metallb-controller").Stop(syscall.SIGTERM, 10*time.Second)
	must(t, l.StartController())
	for _, svc := range []struct {
		name, pool string
		ip         netip.Addr
	}{{"web", "l2", webIP}, {"api", "bgp", apiIP}} {
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
			var s corev1.Service
			if err := l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: svc.name}, &s); err != nil {
				return false, nil //nolint:nilerr // retried until the deadline
			}
			return s.Annotations[v1beta1.AnnotationAllocatedFromPool] == svc.pool, nil
		})
		if err != nil {
			t.Fatalf("herald-controller did not take %s over: %v", svc.name, err)
		}
		if got := ipsOf(t, ctx, l, ns, svc.name); !slices.Equal(got, []netip.Addr{svc.ip}) {
			t.Fatalf("Service %s has %v after herald-controller took over, want %v", svc.name, got, svc.ip)
		}
	}

	// 3. The speakers, node by node; MetalLB's layer-2 owner first, so that the clients go through
	// MetalLB's own layer-2 failover (to one of its other speakers) before Herald's takeover.
	order := []string{mlbOwner}
	for _, n := range l.Nodes {
		if n.Name != mlbOwner {
			order = append(order, n.Name)
		}
	}
	var firstStop, lastStop time.Time
	for i, name := range order {
		last := i == len(order)-1
		if i == 0 {
			firstStop = time.Now()
		}
		l.Proc("metallb-speaker-"+name).Stop(syscall.SIGTERM, 10*time.Second)
		// One node at a time: the router drops the node's path when MetalLB's session ends. Waiting
		// for it makes the wait for every next hop below a wait for Herald's own session.
		var others []string
		for _, n := range l.Nodes {
			if n.Name != name {
				others = append(others, n.Name)
			}
		}
		if _, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(apiIP), l.NodeAddrs(true, others...), 10*time.Millisecond); err != nil {
			t.Fatalf("after stopping MetalLB's speaker on %s: %v", name, err)
		}
		t.Logf("+%v: MetalLB's speaker on %s stopped, the router dropped its path", time.Since(firstStop).Round(time.Millisecond), name)
		if last {
			lastStop = time.Now()
			// 4. Layer 2 to Herald.
			if code, _, errOut := herald(t, l, "migrate-from-metallb", "--apply"); code != cli.ExitOK {
				t.Fatalf("migrate-from-metallb --apply: exit %d\n%s", code, errOut)
			}
		}
		must(t, l.StartSpeaker(name))
		t.Logf("+%v: Herald's speaker on %s started", time.Since(firstStop).Round(time.Millisecond), name)
		if _, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(apiIP), all, 10*time.Millisecond); err != nil {
			t.Fatalf("after swapping the speaker of %s: %v", name, err)
		}
		t.Logf("+%v: the router has every next hop", time.Since(firstStop).Round(time.Millisecond))
	}
	if _, err := l2.WaitSuccessAfter(ctx, lastStop, nil); err != nil {
		t.Fatalf("layer 2 never came back: %v", err)
	}
	time.Sleep(2 * time.Second) //nolint:forbidigo // the clients keep going for a while after the last step: a time span, not a synchronisation
	stopFlush()
	<-flushed
	l2Samples, bgpSamples := l2.Stop(), bgp.Stop()
	routes.Stop()
	<-watched

	// What the clients saw.
	l2Gap, l2Failed := outage(l2Samples)
	bgpGap, bgpFailed := outage(bgpSamples)
	mlbFailover := lab.Gap(samplesBefore(l2Samples, lastStop), firstStop)
	handover := lab.Gap(l2Samples, lastStop)
	report(t, "migration_l2_gap_ms", float64(l2Gap.Microseconds())/1000, "ms")
	report(t, "migration_l2_metallb_failover_gap_ms", float64(mlbFailover.Microseconds())/1000, "ms")
	report(t, "migration_l2_herald_takeover_gap_ms", float64(handover.Microseconds())/1000, "ms")
	report(t, "migration_l2_failed_requests", float64(l2Failed), "requests")
	report(t, "migration_bgp_failed_requests", float64(bgpFailed), "requests")
	report(t, "migration_bgp_gap_ms", float64(bgpGap.Microseconds())/1000, "ms")
	t.Logf("requests: layer 2 %d (%d failed), BGP %d (%d failed)", len(l2Samples), l2Failed, len(bgpSamples), bgpFailed)
	for _, ev := range hopChanges {
		t.Logf("router: %s at +%v: next hops %v (deleted %v)", ev.Prefix, ev.At.Sub(firstStop).Round(time.Microsecond), ev.Hops, ev.Deleted)
	}
	rehashed, lost := rehashResets(bgpSamples, hopChanges)
	for _, s := range bgpSamples {
		if s.Err != nil {
			t.Logf("BGP request +%v..+%v failed: %v", s.Start.Sub(firstStop).Round(time.Microsecond), s.End.Sub(firstStop).Round(time.Microsecond), s.Err)
		}
	}
	report(t, "migration_bgp_rehash_resets", float64(rehashed), "requests")
	if len(hopChanges) != 2*len(order) {
		t.Errorf("router: %d changes of the next hops, want %d (one node at a time: MetalLB's path leaves, Herald's joins)", len(hopChanges), 2*len(order))
	}
	if lost != 0 {
		t.Errorf("BGP: %d request(s) lost while the router's next hops stood still, want 0 (longest gap %v)", lost, bgpGap)
	}
	if bgpGap >= 200*time.Millisecond {
		t.Errorf("BGP: longest gap %v, want under 200ms", bgpGap)
	}
	if l2Gap >= time.Second {
		t.Errorf("layer 2: longest gap %v, want under 1s", l2Gap)
	}

	// Every Service kept its IP, Herald announces them, kubectl herald status agrees.
	if got := ipsOf(t, ctx, l, ns, "web"); !slices.Equal(got, []netip.Addr{webIP}) {
		t.Errorf("web: %v, want %v", got, webIP)
	}
	if got := ipsOf(t, ctx, l, ns, "api"); !slices.Equal(got, []netip.Addr{apiIP}) {
		t.Errorf("api: %v, want %v", got, apiIP)
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		code, _, _ := herald(t, l, "status", "-n", ns)
		return code == cli.ExitOK, nil
	})
	code, out, _ := herald(t, l, "status", "-n", ns, "-o", "wide")
	t.Logf("kubectl herald status -o wide:\n%s", out)
	if err != nil || code != cli.ExitOK {
		t.Errorf("kubectl herald status: exit %d, want 0", code)
	}
	var l2s v1beta1.ServiceL2StatusList
	must(t, l.Client.List(ctx, &l2s, client.InNamespace(lab.HeraldNamespace)))
	if len(l2s.Items) != 1 {
		t.Errorf("Herald's ServiceL2Statuses: %d, want 1", len(l2s.Items))
	}
	must(t, l.CheckHerald())
}

// rehashSlack is how late `ip monitor` may time a kernel route change after a request that the
// change broke has already failed (a reset comes back within a round trip).
const rehashSlack = 50 * time.Millisecond

// rehashResets splits the failed requests into those in flight while the router's next hops
// changed (rehashed: the router's ECMP hash moved the connection to another node mid-flight,
// which answers it with a reset, as any ECMP router does when a path joins or leaves without
// resilient hashing) and the others (lost).
func rehashResets(samples []lab.Sample, changes []frr.KernelRouteEvent) (rehashed, lost int) {
	for _, s := range samples {
		if s.Err == nil {
			continue
		}
		if slices.ContainsFunc(changes, func(ev frr.KernelRouteEvent) bool {
			return !ev.At.Before(s.Start) && !ev.At.After(s.End.Add(rehashSlack))
		}) {
			rehashed++
		} else {
			lost++
		}
	}
	return rehashed, lost
}

func TestRehashResets(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	failed := func(start, end int) lab.Sample {
		return lab.Sample{Start: at(start), End: at(end), Err: errors.New("reset")}
	}
	ok := lab.Sample{Start: at(0), End: at(1000)}
	changes := []frr.KernelRouteEvent{{At: at(100)}, {At: at(500)}}
	for _, tc := range []struct {
		name           string
		samples        []lab.Sample
		rehashed, lost int
	}{
		{"none failed", []lab.Sample{ok}, 0, 0},
		{"in flight at a change", []lab.Sample{failed(98, 101), ok}, 1, 0},
		{"failed just before ip monitor saw the change", []lab.Sample{failed(490, 499)}, 1, 0},
		{"failed long before a change", []lab.Sample{failed(300, 320)}, 0, 1},
		{"started after the change", []lab.Sample{failed(101, 104)}, 0, 1},
		{"both kinds", []lab.Sample{failed(95, 100), failed(700, 710), ok}, 1, 1},
	} {
		rehashed, lost := rehashResets(tc.samples, changes)
		if rehashed != tc.rehashed || lost != tc.lost {
			t.Errorf("%s: rehashed %d lost %d, want %d and %d", tc.name, rehashed, lost, tc.rehashed, tc.lost)
		}
	}
}

// samplesBefore keeps the requests that started before t.
func samplesBefore(samples []lab.Sample, t time.Time) []lab.Sample {
	var out []lab.Sample
	for _, s := range samples {
		if s.Start.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

func ipsOf(t *testing.T, ctx context.Context, l *lab.Lab, ns, name string) []netip.Addr {
	t.Helper()
	var s corev1.Service
	must(t, l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s))
	return lab.IngressIPs(&s)
}
