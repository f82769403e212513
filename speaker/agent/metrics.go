package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/speaker/plan"
)

// Causes of herald_speaker_unannounced_ips.
const (
	// causeNoEndpoints: the Service has no ready endpoint; it is withdrawn on purpose.
	causeNoEndpoints = "no_endpoints"
	// causeNoAnnouncer: the Service could serve, but nobody answers for the IP: no advertisement
	// covers its pool, the IP is in no pool, or no node is eligible.
	causeNoAnnouncer = "no_announcer"
)

type metrics struct {
	configValid prometheus.Gauge
	badObjects  *prometheus.GaugeVec // herald_speaker_config_invalid_objects{kind}
	members     prometheus.Gauge
	routes      prometheus.Gauge
	syncSeconds prometheus.Histogram
	unannounced *prometheus.GaugeVec
	takeovers   prometheus.Counter
	// statusBuilds counts the desired states of this node's status objects built whole.
	statusBuilds prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_config_valid", Help: "1 when every Herald configuration object the speaker read was valid, 0 while any is invalid (see herald_speaker_config_invalid_objects)."}),
		badObjects:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_speaker_config_invalid_objects", Help: "Herald configuration objects with at least one error, by kind. Each is left out, or kept at its last valid version; the others work."}, []string{"kind"}),
		members:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_members", Help: "Speakers this one counts as alive in memberlist, itself included."}),
		routes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_bgp_routes", Help: "Prefixes this node advertises over BGP (to one peer or more)."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_speaker_sync_seconds", Help: "Time to recompute and apply the node's announcements.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		unannounced: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_speaker_unannounced_ips",
			Help: "Assigned IPs of Services (one per Service and IP) that no node announces, counted by the one speaker elected to report each (sum over the speakers), by cause: no_endpoints (withdrawn on purpose until an endpoint is ready), no_announcer (no advertisement covers the pool, the IP is in no pool, or no node is eligible; the NotAnnounced event on the Service says which)."},
			[]string{"cause"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_speaker_layer2_takeovers_total",
			Help: "Layer-2 IPs this node started answering for that another node owned in its previous computation (a failover, or the owner became ineligible)."}),
		statusBuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_speaker_status_builds_total",
			Help: "Full computations that built the desired state of all of this node's status objects anew: the first one, and those that changed a Service's announcements, the live speakers, or the MACs and address conflicts reported. A resync that changed none of these converges the last desired state again without building it."}),
	}
	for _, c := range []string{causeNoEndpoints, causeNoAnnouncer} {
		m.unannounced.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.configValid, m.badObjects, m.members, m.routes, m.syncSeconds, m.unannounced, m.takeovers, m.statusBuilds)
	}
	return m
}

// setUnannounced counts the unannounced IPs this speaker reports, given their reasons.
func (m *metrics) setUnannounced(reasons map[string]string) {
	n := map[string]int{causeNoEndpoints: 0, causeNoAnnouncer: 0}
	for _, r := range reasons {
		n[unannouncedCause(r)]++
	}
	for c, v := range n {
		m.unannounced.WithLabelValues(c).Set(float64(v))
	}
}

func unannouncedCause(reason string) string {
	if reason == plan.NoEndpointsReason {
		return causeNoEndpoints
	}
	return causeNoAnnouncer
}
