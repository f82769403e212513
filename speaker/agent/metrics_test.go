package agent

import (
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herald-lb/herald/internal/metrics/metricstest"
	"github.com/herald-lb/herald/speaker/plan"
)

func TestTakeovers(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	eth0 := []string{"eth0"}
	tests := []struct {
		name   string
		prev   map[netip.Addr]string
		owners map[netip.Addr]string
		owned  map[netip.Addr][]string
		want   int
	}{
		{name: "first computation counts nothing", owners: map[netip.Addr]string{a: "n1"}, owned: map[netip.Addr][]string{a: eth0}},
		{name: "kept", prev: map[netip.Addr]string{a: "n1"}, owners: map[netip.Addr]string{a: "n1"}, owned: map[netip.Addr][]string{a: eth0}},
		{name: "new IP", prev: map[netip.Addr]string{}, owners: map[netip.Addr]string{a: "n1"}, owned: map[netip.Addr][]string{a: eth0}},
		{
			name:   "taken from n2, and another lost to n2",
			prev:   map[netip.Addr]string{a: "n2", b: "n1"},
			owners: map[netip.Addr]string{a: "n1", b: "n2"}, owned: map[netip.Addr][]string{a: eth0},
			want: 1,
		},
		{
			name: "owner without an interface does not answer", prev: map[netip.Addr]string{a: "n2"},
			owners: map[netip.Addr]string{a: "n1"}, owned: map[netip.Addr][]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := takeovers(tt.prev, tt.owners, tt.owned, "n1"); got != tt.want {
				t.Errorf("takeovers = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUnannouncedByCause(t *testing.T) {
	m := newMetrics(nil)
	m.setUnannounced(map[string]string{
		"ns/a 192.0.2.1": plan.NoEndpointsReason,
		"ns/b 192.0.2.2": `no L2Advertisement or BGPAdvertisement announces pool "dark" for this Service`,
		"ns/c 192.0.2.3": "an advertisement covers pool \"p\", but no node is eligible to announce 192.0.2.3",
	})
	for cause, want := range map[string]float64{causeNoEndpoints: 1, causeNoAnnouncer: 2} {
		if got := testutil.ToFloat64(m.unannounced.WithLabelValues(cause)); got != want {
			t.Errorf("cause %s = %v, want %v", cause, got, want)
		}
	}
	m.setUnannounced(nil)
	if got := testutil.ToFloat64(m.unannounced.WithLabelValues(causeNoAnnouncer)); got != 0 {
		t.Errorf("after every IP is announced, no_announcer = %v, want 0", got)
	}
}

func TestMetricsPassPromlint(t *testing.T) {
	reg := metricstest.NewRegistry()
	newMetrics(reg)
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
}
