package confstatus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/config"
)

// Kinds are the configuration kinds that carry a Valid condition, as config.FieldError names them.
var Kinds = []string{
	config.KindIPAddressPool, config.KindL2Advertisement, config.KindBGPAdvertisement,
	config.KindBGPPeer, config.KindBFDProfile, config.KindCommunity,
}

// metrics are the writer's collectors.
type metrics struct {
	invalid *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{invalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "herald",
		Name:      "config_objects_invalid",
		Help:      "Herald configuration objects whose Valid condition is False, by kind (kubectl get <kind> -n <namespace> shows which and why). Counted by the leader only.",
	}, []string{"kind"})}
	for _, k := range Kinds {
		m.invalid.WithLabelValues(k)
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.invalid); err != nil {
		return nil, fmt.Errorf("registering the configuration status metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) set(byKind map[string]int) {
	for k, n := range byKind {
		m.invalid.WithLabelValues(k).Set(float64(n))
	}
}
