package agent

import (
	"context"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube"
)

// config reads the Herald objects and returns the usable configuration (config.ParseUsable with
// the configuration in force as the last good one): every valid object, the last valid version of
// an object that is invalid now (a peer whose password Secret was deleted keeps the password it
// had), and nothing of an invalid object this speaker never saw valid (at start-up, a peer with a
// missing Secret is skipped; layer 2 and the other peers work). Problems are logged when they
// change and counted in herald_speaker_config_valid and herald_speaker_config_invalid_objects; the
// controller puts them on the objects as events.
func (a *Agent) config(ctx context.Context) (*config.Config, error) {
	snap, err := kube.ReadSnapshot(ctx, a.opts.Cache, a.opts.Namespace, true)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, rep := config.ParseUsable(snap, a.cfg)
	a.cfg = cfg
	a.reportConfigLocked(rep)
	return cfg, nil
}

// reportConfigLocked sets the configuration metrics and logs the problems when they change.
// a.mu must be held.
func (a *Agent) reportConfigLocked(rep config.Report) {
	if len(rep.Errors) == 0 {
		a.metrics.configValid.Set(1)
	} else {
		a.metrics.configValid.Set(0)
	}
	for kind, n := range rep.InvalidObjects() {
		a.metrics.badObjects.WithLabelValues(kind).Set(float64(n))
	}
	msg := ""
	if len(rep.Errors) > 0 {
		msg = rep.Errors.Error()
	}
	if msg == a.lastConfig {
		return
	}
	a.lastConfig = msg
	if msg == "" {
		a.log.Info("configuration is valid again")
		return
	}
	for _, e := range rep.Errors {
		a.log.Error("invalid configuration object; the rest of the configuration is in force", "error", e.Error(), "consequence", rep.Fate(e).Consequence())
	}
}
