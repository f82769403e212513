package manifests_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/controller/service"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/cache"
	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/metrics/metricstest"
	"github.com/herald-lb/herald/speaker/agent"
	"github.com/herald-lb/herald/speaker/bgp"
	"github.com/herald-lb/herald/speaker/layer2"
)

// noMembers is a memberlist that is never asked anything: the agent is only constructed.
type noMembers struct{}

func (noMembers) Members() []string                   { return nil }
func (noMembers) MemberMeta() map[string][]byte       { return nil }
func (noMembers) SetMeta([]byte, time.Duration) error { return nil }
func (noMembers) Changes() <-chan struct{}            { return nil }
func (noMembers) Join([]string) (int, error)          { return 0, nil }
func (noMembers) Leave(time.Duration) error           { return nil }

// controllerRegistry returns a registry wired as controller/main.go wires Herald's own (the
// packages register their collectors when they are constructed; nothing is started).
func controllerRegistry(t *testing.T) *metricstest.Registry {
	t.Helper()
	reg := metricstest.NewRegistry()
	if _, err := service.New(service.Options{Namespace: "herald-system", Registry: reg}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// speakerRegistry returns a registry wired as speaker/main.go wires its own, with the Go and
// process collectors (internal/metrics.NewRegistry), and the BGP speaker it holds.
func speakerRegistry(t *testing.T) (*metricstest.Registry, *bgp.Speaker) {
	t.Helper()
	reg := metricstest.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l2, err := layer2.NewAnnouncer(layer2.Config{Registerer: reg, Conflicts: &layer2.ConflictConfig{Node: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	sp, err := bgp.New(bgp.Config{RouterID: netip.MustParseAddr("192.0.2.1"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Shutdown(context.Background()) })
	// A client and a cache that are never started: the agent only registers its metrics.
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kclient.New(&rest.Config{Host: "http://127.0.0.1:1"}, nil, scheme)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cache.New(c, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(agent.Options{NodeName: "n1", Namespace: "herald-system", Cache: ch,
		Client: c, Watcher: c, Members: noMembers{}, L2: l2, BGP: sp, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	return reg, sp
}

// binaryMetrics returns the name of every Herald metric each binary exports. Histograms also
// export name_bucket, name_sum and name_count.
func binaryMetrics(t *testing.T) map[string][]string {
	t.Helper()
	spk, _ := speakerRegistry(t)
	out := map[string][]string{}
	for bin, reg := range map[string]*metricstest.Registry{"herald-controller": controllerRegistry(t), "herald-speaker": spk} {
		names, err := reg.Described()
		if err != nil {
			t.Fatal(err)
		}
		out[bin] = slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, "herald_") })
	}
	return out
}

// TestSpeakerRegistryPassesPromlint lints every metric of the speaker's registry as main wires
// it (a BGP peer it refuses gives the session collector something to report, without traffic).
// The controller's own registry is linted in controller/metrics and confstatus, and its binary's
// /metrics in controller/webhook's tests.
func TestSpeakerRegistryPassesPromlint(t *testing.T) {
	reg, sp := speakerRegistry(t)
	refused := bgp.Peer{Name: "refused", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1"),
		HoldTime: 10 * time.Second, KeepaliveTime: 10 * time.Second / 3}
	// A passive BFD peer on loopback gives the BFD gauge a series; passive, it sends nothing, and
	// the test ends long before GoBGP's first connection attempt.
	withBFD := bgp.Peer{Name: "with-bfd", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1"),
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
		BFD: bgp.BFD{Enabled: true, ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3, Passive: true}}
	if err := sp.SetPeers(t.Context(), []bgp.Peer{refused, withBFD}); err == nil {
		t.Fatal("the BGP speaker accepted a fractional keepalive")
	}
	mfs, err := reg.Families()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := metricstest.Lint(mfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s", p)
	}
	if n := len(metricstest.Names(mfs)); n < 20 {
		t.Errorf("only %d metrics linted: %v", n, metricstest.Names(mfs))
	}
}

// knownMetric reports whether name is a metric of a Herald binary (or a histogram's series of
// one), or a metric Prometheus makes itself.
func knownMetric(bins map[string][]string, name string) bool {
	if name == "up" {
		return true
	}
	for _, names := range bins {
		if slices.Contains(names, name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, base) {
				return true
			}
		}
	}
	return false
}

// TestBinaryMetricsAreHeralds: every metric the binaries' own packages export is named herald_*
// (the Go and process collectors aside).
func TestBinaryMetricsAreHeralds(t *testing.T) {
	spk, _ := speakerRegistry(t)
	for bin, reg := range map[string]*metricstest.Registry{"herald-controller": controllerRegistry(t), "herald-speaker": spk} {
		names, err := reg.Described()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, name := range names {
			switch {
			case strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_"):
			case strings.HasPrefix(name, "herald_"):
				n++
			default:
				t.Errorf("%s exports %s, without the herald_ prefix", bin, name)
			}
		}
		if n < 5 {
			t.Errorf("%s exports only %v", bin, names)
		}
	}
}
