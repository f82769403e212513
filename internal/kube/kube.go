// Package kube holds the Kubernetes client setup both binaries share: the scheme with Herald's types
// and the built-in groups Herald reads, the sink of Events, the REST configuration from a kubeconfig path or the in-cluster environment, and
// the Gate that makes every client of a process wait for an unreachable API server and resume
// within a probe interval of it being ready again.
package kube

import (
	"fmt"
	"log/slog"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/api/v1beta1"
)

// Scheme returns a new scheme with Herald's types and the built-in groups Herald reads and
// writes: core, discovery, apps (the speaker's DaemonSet), authentication and authorization (the
// metrics server's reviews). Not client-go's kubernetes/scheme: that registers all of k8s.io/api's
// groups at start, 5 MiB of resident code in each speaker (see internal/kube/client). The
// controller and kubectl-herald use crclient.Scheme, which adds client-go's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, discoveryv1.AddToScheme, appsv1.AddToScheme, authnv1.AddToScheme, authzv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("adding Kubernetes types to the scheme: %w", err)
		}
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding Herald types to the scheme: %w", err)
	}
	return s, nil
}

// RESTConfig loads the kubeconfig at path, or the in-cluster configuration when path is empty,
// applies the client rate limits and puts every client made from it behind one Gate (see
// HoldWhileUnreachable), which logs to log.
func RESTConfig(path string, qps float32, burst int, userAgent string, log *slog.Logger) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if path == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration (pass --kubeconfig to run outside a cluster): %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
		}
	}
	cfg.QPS, cfg.Burst, cfg.UserAgent = qps, burst, userAgent
	if _, err := HoldWhileUnreachable(cfg, log); err != nil {
		return nil, err
	}
	return cfg, nil
}

// EventCacheSize is how many recent Events (by object, reason and message) a process's event
// recorder remembers to aggregate repeated ones and rate-limit spam per object. client-go's default
// is 4,096 in each of its three caches (aggregation, spam filter, counts), about 600 bytes per
// object across the three (measured in the speaker's heap): 2.5 MB once a speaker or the
// controller has reported on that many Services, held for good.
// Repeats come from one object at a time (a flapping Service, a conflicting IP), which a small cache
// keeps as well as a large one, since each repeat moves its entry to the front.
const EventCacheSize = 256

// EventBroadcaster returns the broadcaster of a process's Events, with caches of EventCacheSize.
// The caller shuts it down when the process stops.
func EventBroadcaster() record.EventBroadcaster {
	return record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: EventCacheSize}))
}
