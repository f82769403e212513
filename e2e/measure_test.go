package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestMeasureLab measures the lab for `make bench` (HERALD_BENCH=1; skipped otherwise): layer-2
// failover after kill -9 and SIGTERM of the owner's speaker (the gap in a stream of requests from
// the segment client, median and worst of failoverRuns runs each; the owner also stops serving the
// IP at that moment, as a failed node would, since otherwise its kernel keeps answering on the
// client's cached ARP entry and no gap shows), BGP withdrawal after SIGTERM (until the next hop
// leaves the router's kernel table; after kill -9 graceful restart keeps it, see gr_test.go), the time from creating a
// Service to the first successful request, the time from a new BGPPeer (with its pool and a
// Service) to the route at the router, and the time an externalTrafficPolicy Local endpoint's
// move takes to move the router's next hop (make-before-break checked). Each figure is printed as
// a BENCHJSON line.
func TestMeasureLab(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("measurement: set HERALD_BENCH=1 (make bench)")
	}
	l := requireHerald(t)
	ctx := deadline(t, 20*time.Minute)
	waitSessions(t, ctx, l)

	t.Run("service create to first curl", func(t *testing.T) {
		ns := newNamespace(t, l, "m-create")
		var ds []time.Duration
		for i := range 5 {
			name := fmt.Sprintf("web-%d", i)
			hc := l.HTTPClient("l2client", 200*time.Millisecond)
			start := time.Now()
			ips := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: name, Pool: lab.L2PoolName}, 1)
			err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
				_, err := lab.Get(ctx, hc, lab.URL(ips[0], 80))
				return err == nil, nil
			})
			if err != nil {
				t.Fatal(withHerald(fmt.Errorf("%s never answered: %w", ips[0], err), l))
			}
			ds = append(ds, time.Since(start))
		}
		report(t, "service_create_to_first_curl_ms", median(ds))
	})

	for _, c := range []struct {
		name string
		sig  syscall.Signal
	}{{"kill", syscall.SIGKILL}, {"sigterm", syscall.SIGTERM}} {
		t.Run("l2 failover "+c.name, func(t *testing.T) {
			ns := newNamespace(t, l, "m-l2")
			ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName}, 1)[0]
			owner, err := waitL2Owner(ctx, l, ns, "web", "")
			must(t, err)
			_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
			must(t, err)
			var gaps []time.Duration
			for range failoverRuns {
				gaps = append(gaps, l2Failover(t, ctx, l, ns, ip, owner, c.sig))
			}
			t.Logf("%s: gaps %v", c.name, gaps)
			report(t, "l2_failover_"+c.name+"_median_ms", median(gaps))
			report(t, "l2_failover_"+c.name+"_worst_ms", slices.Max(gaps))
		})
	}

	t.Run("bgp service IP to kernel route", func(t *testing.T) {
		ns := newNamespace(t, l, "m-bgproute")
		all := l.NodeAddrs(true)
		var ds []time.Duration
		for i := range 5 {
			ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: fmt.Sprintf("api-%d", i), Pool: lab.BGPPoolName}, 1)[0]
			got := time.Now() // the Service has its IP
			seen, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(ip), all, 5*time.Millisecond)
			if err != nil {
				t.Fatal(withHerald(err, l))
			}
			ds = append(ds, seen.Sub(got))
		}
		report(t, "bgp_service_ip_to_kernel_route_ms", median(ds))
	})

	t.Run("bgp new peer to route", func(t *testing.T) {
		ds := measureNewPeer(t, ctx, l)
		report(t, "bgp_new_peer_to_route_ms", median(ds))
		report(t, "bgp_new_peer_to_route_max_ms", slices.Max(ds))
	})

	t.Run("bgp local endpoint move", func(t *testing.T) {
		ds := measureLocalMove(t, ctx, l)
		report(t, "bgp_local_endpoint_move_ms", median(ds))
		report(t, "bgp_local_endpoint_move_max_ms", slices.Max(ds))
	})

	t.Run("bgp withdraw", func(t *testing.T) {
		ns := newNamespace(t, l, "m-bgp")
		ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.BGPPoolName}, 1)[0]
		all := l.NodeAddrs(true)
		must(t, waitRoute(ctx, l, ip, all))
		victim := "n3"
		rest := l.NodeAddrs(true, "n1", "n2")
		for _, c := range []struct {
			name string
			sig  syscall.Signal
		}{{"sigterm", syscall.SIGTERM}} { // after kill -9 graceful restart keeps the route (bgp_kill_failed_requests)
			p := l.Proc("speaker-" + victim)
			start := time.Now()
			must(t, p.Signal(c.sig))
			seen, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(ip), rest, 5*time.Millisecond)
			must(t, err)
			report(t, "bgp_withdraw_"+c.name+"_ms", seen.Sub(start))
			p.Stop(syscall.SIGKILL, time.Second)
			must(t, l.StartSpeaker(victim))
			must(t, waitRoute(ctx, l, ip, all))
		}
	})
}

// failoverRuns is how many failovers each layer-2 figure is made of.
const failoverRuns = 10

// failoverProbeInterval is how often the client sends a request during a failover. The gap is
// measured between replies, so it overstates the outage by up to two intervals: 5 ms keeps that
// error small next to a ~50 ms graceful failover (about 200 requests a second, for a second or
// two, to the lab's own namespaces).
const failoverProbeInterval = 5 * time.Millisecond

// l2Failover stops owner's speaker with sig while l2client requests ip every 5 ms, returns the gap
// in successful replies, then restarts the speaker and waits until owner serves ip again (the
// election gives the IP back to it).
func l2Failover(t *testing.T, ctx context.Context, l *lab.Lab, ns string, ip netip.Addr, owner string, sig syscall.Signal) time.Duration {
	t.Helper()
	stream := l.StartStream("l2client", lab.URL(ip, 80), failoverProbeInterval, 200*time.Millisecond)
	_, err := stream.WaitSuccessAfter(ctx, time.Now(), func(b string) bool { return b == owner })
	must(t, err)
	at := time.Now()
	must(t, l.BlockTraffic(ctx, owner, ip))
	go l.Proc("speaker-"+owner).Stop(sig, 30*time.Second)
	after, err := stream.WaitSuccessAfter(ctx, at, func(b string) bool { return b != owner })
	if err != nil {
		stream.Stop()
		t.Fatal(withHerald(fmt.Errorf("no other node took over %s from %s: %w", ip, owner, err), l))
	}
	// A little more traffic after the takeover, so a late hiccup counts too.
	_, err = stream.WaitSuccessAfter(ctx, after.End.Add(200*time.Millisecond), nil)
	must(t, err)
	samples := stream.Stop()
	gap := lab.Gap(samples, at)
	if gap < 0 {
		t.Fatalf("stream to %s never recovered", ip)
	}
	<-l.Proc("speaker-" + owner).Done()
	must(t, l.UnblockTraffic(ctx, owner))
	must(t, l.StartSpeaker(owner))
	_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
	must(t, err)
	if _, err := waitL2Owner(ctx, l, ns, "web", ""); err != nil {
		t.Fatal(err)
	}
	return gap
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(t *testing.T, name string, d time.Duration) {
	t.Helper()
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, float64(d.Microseconds()) / 1000, "ms"})
	fmt.Printf("BENCHJSON %s\n", line)
	t.Logf("%s = %v", name, d)
}
