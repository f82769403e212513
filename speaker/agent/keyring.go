package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/memberlistkey"
)

// Keyring is what KeyWatcher needs of memberlist (package members implements it).
type Keyring interface {
	// SetKeys makes primary the key to send with and accepts primary and secondary; it reports
	// whether anything changed.
	SetKeys(primary []byte, secondary [][]byte) (bool, error)
}

// KeyWatcher keeps this speaker's memberlist keyring equal to the key Secret while it runs, so
// that an operator rotates the key by editing the Secret in three steps (package memberlistkey)
// without restarting any speaker. A Secret that is deleted or holds an unusable key changes
// nothing: the speaker keeps the keys it has, logs the error and sets
// herald_speaker_memberlist_secret_valid to 0.
type KeyWatcher struct {
	Cache             *cache.Cache
	Namespace, Secret string
	Keyring           Keyring
	Logger            *slog.Logger
	Registerer        prometheus.Registerer
}

// Start watches the Secret until ctx ends.
func (w *KeyWatcher) Start(ctx context.Context) error {
	if w.Cache == nil || w.Keyring == nil || w.Secret == "" {
		return errors.New("key watcher: cache, keyring and Secret name are required")
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	valid := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_speaker_memberlist_secret_valid",
		Help: "1 when the memberlist key Secret was read and applied to the keyring; 0 when it is missing or holds an unusable key (the keyring is kept as it was).",
	})
	valid.Set(1) // the keys were read from it at start
	if w.Registerer != nil {
		if err := w.Registerer.Register(valid); err != nil {
			return fmt.Errorf("registering the key watcher's metric: %w", err)
		}
	}
	inf, err := w.Cache.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("watching the memberlist key Secret: %w", err)
	}
	changed := make(chan struct{}, 1)
	poke := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, err := meta.Accessor(obj); err == nil && m.GetNamespace() == w.Namespace && m.GetName() == w.Secret {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { poke(obj) }, UpdateFunc: func(_, obj any) { poke(obj) }, DeleteFunc: poke,
	})
	if err != nil {
		return fmt.Errorf("watching the memberlist key Secret: %w", err)
	}
	defer func() { _ = inf.RemoveEventHandler(reg) }()
	key := client.ObjectKey{Namespace: w.Namespace, Name: w.Secret}
	// applied are the keys last applied (nil before the first): several events can find the Secret
	// as one state, since each reads the cache as it is when its turn comes; it is applied once.
	var applied *memberlistkey.Keys
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		var s corev1.Secret
		err := w.Cache.Get(ctx, key, &s)
		switch {
		case apierrors.IsNotFound(err):
			valid.Set(0)
			log.Error("the memberlist key Secret was deleted; keeping the keys in use (speakers that start now will fail until it is back)", "secret", key.String())
			continue
		case err != nil:
			log.Warn("reading the memberlist key Secret; keeping the keys in use", "secret", key.String(), "error", err)
			continue
		}
		keys, err := memberlistkey.KeysFromSecret(&s)
		if err != nil {
			valid.Set(0)
			log.Error("the memberlist key Secret is unusable; keeping the keys in use", "secret", key.String(), "error", err)
			continue
		}
		if applied != nil && applied.Equal(keys) {
			valid.Set(1)
			continue
		}
		if _, err := w.Keyring.SetKeys(keys.Primary, keys.Secondary); err != nil {
			valid.Set(0)
			log.Error("applying the memberlist keys; keeping the keys in use", "secret", key.String(), "error", err)
			continue
		}
		applied = &keys
		valid.Set(1)
	}
}
