package members

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the members' Prometheus metrics; nil fields when no Registerer was given.
type metrics struct {
	mu         sync.Mutex
	primaryKey *prometheus.GaugeVec
}

// register adds the members' metrics to reg. The counters read the transport's counters, so
// nothing is counted twice and nothing is counted on the hot path but an atomic add.
func (m *Members) register(reg prometheus.Registerer) error {
	traffic := func(f func(Traffic) uint64) func() float64 {
		return func() float64 { return float64(f(m.Traffic())) }
	}
	m.metrics.primaryKey = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "herald_speaker_memberlist_primary_key",
		Help: "1 for the fingerprint (first 8 bytes of the SHA-256, hex) of the key this speaker encrypts memberlist gossip with.",
	}, []string{"fingerprint"})
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "herald_speaker_memberlist_sent_packets_total",
			Help: "UDP datagrams memberlist sent (probes, acks, gossip).",
		}, traffic(func(t Traffic) uint64 { return t.UDPPackets })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "herald_speaker_memberlist_sent_bytes_total", ConstLabels: prometheus.Labels{"transport": "udp"},
			Help: "Bytes memberlist sent, by transport.",
		}, traffic(func(t Traffic) uint64 { return t.UDPBytes })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "herald_speaker_memberlist_sent_bytes_total", ConstLabels: prometheus.Labels{"transport": "tcp"},
			Help: "Bytes memberlist sent, by transport.",
		}, traffic(func(t Traffic) uint64 { return t.TCPBytes })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "herald_speaker_memberlist_streams_total",
			Help: "TCP connections memberlist opened (joins, push/pull, fallback pings).",
		}, traffic(func(t Traffic) uint64 { return t.TCPStreams })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_speaker_memberlist_keys",
			Help: "Keys in the memberlist keyring (primary included); 0 when gossip is unencrypted.",
		}, func() float64 { return float64(len(m.KeyFingerprints())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_speaker_memberlist_health_score",
			Help: "Lifeguard local health of this speaker's memberlist (0 is healthy; it grows when this speaker misses its own deadlines, and stretches its probe timers).",
		}, func() float64 { return float64(m.healthScore()) }),
		m.metrics.primaryKey,
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	m.setKeyMetrics()
	return nil
}

// setKeyMetrics publishes the primary key's fingerprint.
func (m *Members) setKeyMetrics() {
	if m.metrics.primaryKey == nil {
		return
	}
	m.metrics.mu.Lock()
	defer m.metrics.mu.Unlock()
	m.metrics.primaryKey.Reset()
	if fps := m.KeyFingerprints(); len(fps) > 0 {
		m.metrics.primaryKey.WithLabelValues(fps[0]).Set(1)
	}
}

func (m *Members) healthScore() int {
	m.mu.Lock()
	ml, stopped := m.ml, m.stopped
	m.mu.Unlock()
	if ml == nil || stopped {
		return 0
	}
	return ml.GetHealthScore()
}
