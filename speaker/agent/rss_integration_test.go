package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestBenchSpeakerRSS measures the resident memory of one real herald-speaker process, built as
// the image builds it (-trimpath -ldflags='-s -w'), with the DaemonSet's defaults (memberlist
// unencrypted: it is alone), against the real API server holding n LoadBalancer Services with
// their IPs and EndpointSlices. The speaker
// runs in a network namespace of its own (a veth to an empty segment), reaches the API server
// through a forwarder on its loopback, and is the only live speaker: it owns every layer-2 IP, so
// it announces all n and writes the n ServiceL2Status objects the speakers of a cluster write for
// n Services between them. Its memory is read from /proc/PID/status once it has written them and
// its CPU use has settled.
//
// make test runs 500 Services and reports the figures without asserting them; HERALD_BENCH=1 (make
// bench) runs 10,000 and prints speaker_rss_10000_mib (VmRSS), _anon_mib (RssAnon: heap and
// stacks), _file_mib (RssFile: the binary's pages) and _peak_mib (VmHWM); the goal of issue 15 (at
// most 80 MiB) is judged in bench/REPORT.md. HERALD_RSS_SERVICES=n runs another size.
func TestBenchSpeakerRSS(t *testing.T) {
	testenv.Require(t, env)
	if testing.Short() {
		t.Skip("builds and runs the speaker binary")
	}
	if err := netlab.Available(); err != nil {
		t.Skipf("the speaker runs in a network namespace: %v", err)
	}
	bench := os.Getenv("HERALD_BENCH") == "1"
	n := 500
	if bench {
		n = 10000
	}
	if v := os.Getenv("HERALD_RSS_SERVICES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 65000 {
			t.Fatalf("HERALD_RSS_SERVICES=%q: want a number of Services from 1 to 65000", v)
		}
	}
	bin := buildSpeaker(t)
	sc := newScaleCluster(t)
	t.Cleanup(func() { sc.deleteAll(t) })
	sc.grow(t, n)

	lab := netlab.ForTest(t)
	ns, err := lab.AddNS("rss")
	if err != nil {
		t.Fatal(err)
	}
	seg, err := lab.AddNS("rss-seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Veth(ns, "eth0", seg, "eth0", ""); err != nil {
		t.Fatal(err)
	}
	const hostIP = "192.0.2.11"
	for _, args := range [][]string{
		{"ip", "addr", "add", hostIP + "/24", "dev", "eth0"},
		// The layer-2 IPs of the scale cluster (2001:db8:100::/112) are on this segment.
		{"ip", "-6", "addr", "add", "2001:db8:100::1:11/96", "dev", "eth0", "nodad"},
	} {
		if out, err := lab.Exec(ns, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	kubeconfig := forwardAPIServer(t, ns)

	node := sc.nodes[0]
	args := []string{"--kubeconfig", kubeconfig, "--node-name", node, "--host-ip", hostIP, "--namespace", sc.hns,
		"--lb-class", scaleClass, "--memberlist-secret=", "--memberlist-allow-unencrypted",
		"--metrics-addr", hostIP + ":7472", "--metrics-secure=false", "--health-addr", hostIP + ":7473", "--log-level", "info"}
	// HERALD_RSS_HEAP=file saves a heap profile of the speaker (from its --pprof-addr) in file just
	// before its memory is read, for finding what holds it.
	heapFile := os.Getenv("HERALD_RSS_HEAP")
	if heapFile != "" {
		args = append(args, "--pprof-addr", hostIP+":7476")
	}
	// HERALD_RSS_ENV="GOGC=100;GOGC=25 GOMEMLIMIT=40MiB" compares settings by hand: one run of
	// the speaker per ;-separated set of environment variables, after the one with the defaults.
	variants := [][]string{nil}
	if v := os.Getenv("HERALD_RSS_ENV"); v != "" {
		for _, set := range strings.Split(v, ";") {
			variants = append(variants, strings.Fields(set))
		}
	}
	for i, extra := range variants {
		var heap func()
		if heapFile != "" && i == 0 {
			heap = func() { saveHeapProfile(t, lab, ns, "http://"+hostIP+":7476/debug/pprof/heap", heapFile) }
		}
		m := runSpeakerForRSS(t, lab, ns, bin, args, extra, sc.hns, node, n, heap)
		mib := func(b int64) float64 { return float64(b) / (1 << 20) }
		t.Logf("speaker memory at %d Services (one live speaker owning every IP; environment %q): VmRSS %.1f MiB (RssAnon %.1f, RssFile %.1f), VmHWM %.1f MiB",
			n, extra, mib(m.RSS), mib(m.Anon), mib(m.File), mib(m.Peak))
		if m.RSS <= m.File || m.Anon == 0 {
			t.Errorf("implausible memory figures: %+v", m)
		}
		if bench && i == 0 {
			p := fmt.Sprintf("speaker_rss_%d", n)
			benchLine(p+"_mib", mib(m.RSS), "MiB")
			benchLine(p+"_anon_mib", mib(m.Anon), "MiB")
			benchLine(p+"_file_mib", mib(m.File), "MiB")
			benchLine(p+"_peak_mib", mib(m.Peak), "MiB")
		}
	}
}

// runSpeakerForRSS starts the speaker in ns with args and the extra environment, waits until it
// has written the n ServiceL2Status objects of node and its CPU use has settled, reads its memory,
// then kills it and deletes what it wrote, for the next run.
func runSpeakerForRSS(t *testing.T, lab *netlab.Lab, ns, bin string, args, extra []string, hns, node string, n int, heap func()) testenv.Memory {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "speaker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// gctrace: the runtime prints the live heap after each collection (read below); it changes
	// nothing else. HERALD_RSS_GODEBUG adds settings, e.g. memprofilerate=1 for an exact heap
	// profile with HERALD_RSS_HEAP (at a few thousand Services: it slows the speaker down).
	godebug := "GODEBUG=gctrace=1"
	if v := os.Getenv("HERALD_RSS_GODEBUG"); v != "" {
		godebug += "," + v
	}
	argv := append(append([]string{"env", godebug}, extra...), bin)
	argv = append(argv, args...)
	cmd, err := lab.Start(ns, logFile, logFile, argv...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("speaker log (last 3000 bytes):\n%s", tail(string(b), 3000))
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ctx := context.WithoutCancel(t.Context())
		if err := env.Client.DeleteAllOf(ctx, &v1beta1.ServiceL2Status{}, client.InNamespace(hns), client.MatchingLabels{LabelNode: node}); err != nil {
			t.Errorf("deleting the speaker's ServiceL2Status objects: %v", err)
		}
	}()
	pid := cmd.Process.Pid // ip netns exec and env exec the speaker: same process

	begin := time.Now()
	written := 0
	err = wait.PollUntilContextTimeout(t.Context(), time.Second, 20*time.Minute, true, func(ctx context.Context) (bool, error) {
		if done, _ := exited(pid); done {
			return false, errors.New("the speaker exited")
		}
		var l v1beta1.ServiceL2StatusList
		if err := env.Client.List(ctx, &l, client.InNamespace(hns), client.MatchingLabels{LabelNode: node}); err != nil {
			return false, nil
		}
		written = len(l.Items)
		return written == n, nil
	})
	if err != nil {
		t.Fatalf("the speaker wrote %d of %d ServiceL2Status objects within 20 minutes: %v", written, n, err)
	}
	t.Logf("the speaker wrote its %d ServiceL2Status objects %s after it started", n, time.Since(begin).Round(time.Millisecond))
	settleCPU(t, pid)
	if heap != nil {
		heap()
	}
	m, err := testenv.ProcessMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	logResidentBinary(t, pid, bin)
	if b, err := os.ReadFile(logPath); err == nil {
		t.Logf("the speaker's last collection: %s", lastGC(string(b)))
		// HERALD_RSS_GCLOG=file keeps the speaker's log (every collection's live heap) in file.
		if os.Getenv("HERALD_RSS_GCLOG") != "" {
			_ = os.WriteFile(os.Getenv("HERALD_RSS_GCLOG"), b, 0o644)
		}
	}
	return m
}

// logResidentBinary logs which sections of the speaker's binary are resident (RssFile), and the
// packages whose code is, largest first.
func logResidentBinary(t *testing.T, pid int, bin string) {
	t.Helper()
	r, err := testenv.ResidentBinary(pid, bin)
	if err != nil {
		t.Logf("cannot tell which pages of the binary are resident: %v", err)
		return
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	var secs, code []string
	for _, k := range testenv.Top(r.Sections, 6) {
		secs = append(secs, k+" "+mib(r.Sections[k]))
	}
	for _, k := range testenv.Top(r.Code, 12) {
		code = append(code, k+" "+mib(r.Code[k]))
	}
	// The API groups the binary links without using them (client-go's scheme registers all).
	var api int64
	groups := 0
	for k, n := range r.Code {
		if strings.HasPrefix(k, "k8s.io/api/") {
			api += n
			groups++
		}
	}
	t.Logf("resident pages of the binary by section: %s; code by package: %s; code of k8s.io/api's %d groups: %s",
		strings.Join(secs, ", "), strings.Join(code, ", "), groups, mib(api))
}

// saveHeapProfile fetches a heap profile from url, reachable in namespace ns, into file.
func saveHeapProfile(t *testing.T, lab *netlab.Lab, ns, url, file string) {
	t.Helper()
	out, err := lab.Exec(ns, "curl", "-sS", "--max-time", "30", "-o", file, url)
	if err != nil {
		t.Errorf("fetching the speaker's heap profile: %v: %s", err, out)
		return
	}
	// The same endpoint with debug=1 ends with the runtime's MemStats: how much of the resident
	// memory is heap in use, idle heap not yet returned, stacks and the runtime's own.
	if out, err := lab.Exec(ns, "curl", "-sS", "--max-time", "30", "-o", file+".txt", url+"?debug=1"); err != nil {
		t.Errorf("fetching the speaker's heap statistics: %v: %s", err, out)
		return
	}
	t.Logf("the speaker's heap profile is in %s, its MemStats at the end of %s.txt", file, file)
}

// lastGC returns the last gctrace line of a log ("gc 12 @3.4s 1%: ... 30->31->15 MB, 32 MB goal,
// ...": heap at the start and end of the collection, live heap after it, next goal).
func lastGC(log string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "gc ") && strings.Contains(lines[i], "MB goal") {
			return lines[i]
		}
	}
	return "none logged"
}

// buildSpeaker builds herald-speaker as the image does.
func buildSpeaker(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "herald-speaker", "./speaker", "-trimpath", "-ldflags=-s -w")
}

// forwardAPIServer listens on the loopback of namespace ns, forwards every connection to the test
// API server, and returns a kubeconfig that reaches it from ns. The API server's certificate names
// 127.0.0.1, so only the port changes.
func forwardAPIServer(t *testing.T, ns string) string {
	t.Helper()
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	var ln net.Listener
	if err := netlab.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatalf("listening in %s: %v", ns, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			for _, p := range [][2]net.Conn{{in, out}, {out, in}} {
				wg.Go(func() {
					_, _ = io.Copy(p[0], p[1])
					_ = p[0].Close()
					_ = p[1].Close()
				})
			}
		}
	})
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + ln.Addr().String()
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// settleCPU waits until process pid has used less than 5% of a core over three seconds: the
// start-up work (lists, the first computations, the status writes, the paced announcements) is
// done and its memory is what it holds at rest.
func settleCPU(t *testing.T, pid int) {
	t.Helper()
	last, err := testenv.ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	const window = 3 * time.Second
	err = wait.PollUntilContextTimeout(t.Context(), window, 5*time.Minute, false, func(context.Context) (bool, error) {
		now, err := testenv.ProcessCPU(pid)
		if err != nil {
			return false, err
		}
		used := now - last
		last = now
		return used < window/20, nil
	})
	if err != nil {
		t.Fatalf("the speaker's CPU use did not settle within 5 minutes: %v", err)
	}
}

// exited reports whether process pid is gone (or a zombie).
func exited(pid int) (bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true, err
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 {
		return s[i+2] == 'Z', nil
	}
	return false, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// deleteAll deletes the scale cluster's Services and EndpointSlices, so that later tests' caches
// do not hold them (the test API server has no namespace controller).
func (sc *scaleCluster) deleteAll(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan client.Object)
	for range 32 {
		wg.Go(func() {
			for o := range work {
				if err := client.IgnoreNotFound(sc.client.Delete(ctx, o)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range sc.ips {
		if sc.slices[i] == nil {
			continue
		}
		work <- sc.slices[i]
		s := &corev1.Service{}
		s.Name, s.Namespace = strings.TrimSuffix(sc.slices[i].Name, "-x"), sc.app
		work <- s
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("deleting the scale Services: %v (and %d more)", errs[0], len(errs)-1)
	}
}

// retriable reports whether a write failed because the API server was too busy to finish it (on
// this shared machine, 10,000 creates can time out); it may have been done all the same.
func retriable(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsConflict(err) || errors.Is(err, context.DeadlineExceeded) || apierrors.IsInternalError(err)
}

// busyBackoff retries a write on a busy API server for up to about a minute.
var busyBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 10 * time.Second}

// createRetrying creates obj, retrying while the API server is too busy; an object that a timed
// out attempt created after all is read back into obj.
func createRetrying(ctx context.Context, c client.Client, obj client.Object) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, busyBackoff, func(ctx context.Context) (bool, error) {
		last = c.Create(ctx, obj)
		switch {
		case last == nil:
			return true, nil
		case apierrors.IsAlreadyExists(last):
			last = c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			return last == nil, nil
		case retriable(last):
			return false, nil
		}
		return false, last
	})
	if wait.Interrupted(err) {
		return last
	}
	return err
}

// setIngressRetrying sets the Service's load-balancer IP in its status, retrying while the API
// server is too busy.
func setIngressRetrying(ctx context.Context, c client.Client, s *corev1.Service, ip string) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, busyBackoff, func(ctx context.Context) (bool, error) {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if last = c.Status().Update(ctx, s); last == nil {
			return true, nil
		}
		if !retriable(last) {
			return false, last
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil && !retriable(err) {
			return false, err
		}
		return false, nil
	})
	if wait.Interrupted(err) {
		return last
	}
	return err
}
