package manifests_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/controller/confstatus"
	"github.com/herald-lb/herald/controller/service"
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

// binaryMetrics returns the name of every metric each binary exports, from registries wired as
// controller/main.go and speaker/main.go wire theirs (the packages register their collectors
// when they are constructed; nothing is started). Histograms also export name_bucket, name_sum
// and name_count.
func binaryMetrics(t *testing.T) map[string][]string {
	t.Helper()
	ctrl := metricstest.NewRegistry()
	if _, err := service.New(service.Options{Namespace: "herald-system", Registry: ctrl}, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if _, err := confstatus.New(confstatus.Options{Namespace: "herald-system", Registry: ctrl}, logr.Discard()); err != nil {
		t.Fatal(err)
	}

	spk := metricstest.NewRegistry()
	l2, err := layer2.NewAnnouncer(layer2.Config{Registerer: spk, Conflicts: &layer2.ConflictConfig{Node: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	sp, err := bgp.New(bgp.Config{RouterID: netip.MustParseAddr("192.0.2.1"), Registerer: spk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Shutdown(context.Background()) })
	if _, err := agent.New(agent.Options{NodeName: "n1", Namespace: "herald-system", Cache: &informertest.FakeInformers{},
		Client: fake.NewClientBuilder().Build(), Members: noMembers{}, L2: l2, BGP: sp, Registerer: spk}); err != nil {
		t.Fatal(err)
	}

	out := map[string][]string{}
	for bin, reg := range map[string]*metricstest.Registry{"herald-controller": ctrl, "herald-speaker": spk} {
		names, err := reg.Described()
		if err != nil {
			t.Fatal(err)
		}
		out[bin] = names
	}
	return out
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

func TestBinaryMetricsAreHeralds(t *testing.T) {
	for bin, names := range binaryMetrics(t) {
		if len(names) < 5 {
			t.Errorf("%s exports only %v", bin, names)
		}
		for _, n := range names {
			if !strings.HasPrefix(n, "herald_") {
				t.Errorf("%s exports %s, without the herald_ prefix", bin, n)
			}
		}
	}
}
