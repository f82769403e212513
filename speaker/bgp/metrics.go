package bgp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/speaker/bfd"
)

// collector exports the speaker's sessions as metrics, read from Status at scrape time so that
// the numbers are GoBGP's own and nothing is kept twice.
type collector struct {
	s                                 *Speaker
	up, prefixes, updateSent, refused *prometheus.Desc
	bfdUp                             *prometheus.Desc
}

func newCollector(s *Speaker) *collector {
	labels := []string{"peer"}
	return &collector{
		s:          s,
		up:         prometheus.NewDesc("herald_bgp_session_up", "1 when the BGP session to the peer is Established, else 0.", labels, nil),
		prefixes:   prometheus.NewDesc("herald_bgp_prefixes_advertised", "Prefixes in the Adj-RIB-Out of the session to the peer.", labels, nil),
		updateSent: prometheus.NewDesc("herald_bgp_updates_sent_total", "BGP UPDATE messages sent to the peer by the current session process.", labels, nil),
		bfdUp:      prometheus.NewDesc("herald_bgp_bfd_up", "1 when the BFD session to the peer is Up, else 0; only for peers with a BFD profile.", labels, nil),
		refused:    prometheus.NewDesc("herald_bgp_peer_refused", "1 when the speaker cannot use the peer's configuration (it has no session, or keeps the one of its previous configuration), else 0.", labels, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.prefixes
	ch <- c.updateSent
	ch <- c.refused
	ch <- c.bfdUp
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Status() {
		up := 0.0
		if st.State == StateEstablished {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, st.Name)
		ch <- prometheus.MustNewConstMetric(c.prefixes, prometheus.GaugeValue, float64(st.PrefixesAdvertised), st.Name)
		ch <- prometheus.MustNewConstMetric(c.updateSent, prometheus.CounterValue, float64(st.UpdatesSent), st.Name)
		refused := 0.0
		if st.ConfigError != "" {
			refused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.GaugeValue, refused, st.Name)
		if st.BFD != "" || st.BFDError != "" {
			bfdUp := 0.0
			if st.BFD == bfd.StateUp.String() {
				bfdUp = 1
			}
			ch <- prometheus.MustNewConstMetric(c.bfdUp, prometheus.GaugeValue, bfdUp, st.Name)
		}
	}
}
