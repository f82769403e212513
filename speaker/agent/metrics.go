package agent

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	configValid prometheus.Gauge
	badObjects  *prometheus.GaugeVec // herald_speaker_config_invalid_objects{kind}
	members     prometheus.Gauge
	routes      prometheus.Gauge
	syncSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_config_valid", Help: "1 when every Herald configuration object the speaker read was valid, 0 while any is invalid (see herald_speaker_config_invalid_objects)."}),
		badObjects:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_speaker_config_invalid_objects", Help: "Herald configuration objects with at least one error, by kind. Each is left out, or kept at its last valid version; the others work."}, []string{"kind"}),
		members:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_members", Help: "Speakers this one counts as alive in memberlist, itself included."}),
		routes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_speaker_bgp_routes", Help: "BGP routes this node advertises."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_speaker_sync_seconds", Help: "Time to recompute and apply the node's announcements.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.configValid, m.badObjects, m.members, m.routes, m.syncSeconds)
	}
	return m
}
