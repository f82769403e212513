package layer2

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Announcer's collectors, registered on the Registerer it was given.
type metrics struct {
	requests   *prometheus.CounterVec
	replies    *prometheus.CounterVec
	gratuitous *prometheus.CounterVec
	errors     *prometheus.CounterVec
	owned      *prometheus.GaugeVec
}

var metricLabels = []string{"interface", "family"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "herald", Subsystem: "layer2", Name: name, Help: help}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_received_total",
			"ARP requests and neighbor solicitations received, for any address.")), metricLabels),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts(opts("replies_sent_total",
			"ARP replies and neighbor advertisements sent in answer to a request for an owned address.")), metricLabels),
		gratuitous: prometheus.NewCounterVec(prometheus.CounterOpts(opts("gratuitous_sent_total",
			"Gratuitous ARP frames (a request and a reply per announcement) and unsolicited neighbor advertisements sent.")), metricLabels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("errors_total",
			"Socket read and write errors.")), metricLabels),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("owned_ips",
			"Addresses this node currently answers for.")), metricLabels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.replies, m.gratuitous, m.errors, m.owned} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering layer2 metrics: %w", err)
		}
	}
	return m, nil
}
