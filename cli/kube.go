package cli

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli/inspect"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

// speakerSelector selects the speaker Pods of the manifests and the Helm chart.
const speakerSelector = "app.kubernetes.io/name=herald,app.kubernetes.io/component=speaker"

// clientConfig returns the kubeconfig the flags select, and the namespace of -n (or of the
// context when -n is not given; explicit tells which).
func (g *globals) clientConfig() (cfg *rest.Config, namespace string, explicit bool, err error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(g.loading, g.overrides)
	cfg, err = cc.ClientConfig()
	if err != nil {
		return nil, "", false, failure("loading the kubeconfig: %w", err)
	}
	namespace, explicit, err = cc.Namespace()
	if err != nil {
		return nil, "", false, failure("reading the namespace of the kubeconfig context: %w", err)
	}
	cfg.UserAgent = "kubectl-herald"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	return cfg, namespace, explicit || g.overrides.Context.Namespace != "", nil
}

func (g *globals) client() (client.Client, string, bool, error) {
	cfg, ns, explicit, err := g.clientConfig()
	if err != nil {
		return nil, "", false, err
	}
	scheme, err := crclient.Scheme()
	if err != nil {
		return nil, "", false, failure("%w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", false, failure("connecting to the API server %s: %w", cfg.Host, err)
	}
	return c, ns, explicit, nil
}

// readCluster reads what inspect needs. namespace limits the Services, EndpointSlices and
// events read when the whole cluster may not be listed ("" for all).
func (g *globals) readCluster(ctx context.Context, c client.Client, namespace string) (*inspect.Cluster, error) {
	cl := &inspect.Cluster{Namespace: g.herald, LBClass: g.lbClass, Now: time.Now()}
	fail := func(what string, err error) error {
		return failure("reading %s from the API server: %w", what, err)
	}

	snap, err := kube.ReadSnapshot(ctx, crclient.Reader(c), g.herald, false)
	if err != nil {
		return nil, fail("Herald's configuration in namespace "+g.herald, err)
	}
	cl.Snapshot = snap
	for _, name := range referencedSecrets(snap.Peers) {
		var sec corev1.Secret
		err := c.Get(ctx, types.NamespacedName{Namespace: g.herald, Name: name}, &sec)
		switch {
		case err == nil:
			cl.Snapshot.Secrets = append(cl.Snapshot.Secrets, sec)
		case apierrors.IsNotFound(err):
			// config.Parse reports the missing Secret.
		case apierrors.IsForbidden(err):
			cl.MissingSecrets = append(cl.MissingSecrets, name)
		default:
			return nil, fail("Secret "+g.herald+"/"+name, err)
		}
	}

	// Services and their EndpointSlices: the whole cluster, since IPs are shared across
	// namespaces; one namespace when that is all these credentials may list.
	scope := []client.ListOption{}
	var svcs corev1.ServiceList
	err = c.List(ctx, &svcs)
	if apierrors.IsForbidden(err) && namespace != "" {
		scope = append(scope, client.InNamespace(namespace))
		err = c.List(ctx, &svcs, scope...)
	}
	if err != nil {
		return nil, fail("Services", err)
	}
	cl.Services = svcs.Items
	var epSlices discoveryv1.EndpointSliceList
	if err := c.List(ctx, &epSlices, scope...); err != nil {
		return nil, fail("EndpointSlices", err)
	}
	cl.EndpointSlices = epSlices.Items
	var events corev1.EventList
	if err := c.List(ctx, &events, append(slices.Clone(scope), client.MatchingFields{"involvedObject.kind": "Service"})...); err != nil {
		return nil, fail("events", err)
	}
	cl.Events = events.Items

	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fail("Nodes", err)
	}
	cl.Nodes = nodes.Items

	var l2 v1beta1.ServiceL2StatusList
	var bgp v1beta1.ServiceBGPStatusList
	var sessions v1beta1.BGPSessionStatusList
	for what, l := range map[string]client.ObjectList{"ServiceL2Statuses": &l2, "ServiceBGPStatuses": &bgp, "BGPSessionStatuses": &sessions} {
		if err := c.List(ctx, l, client.InNamespace(g.herald)); err != nil {
			return nil, fail(what+" in namespace "+g.herald, err)
		}
	}
	cl.L2Statuses, cl.BGPStatuses, cl.Sessions = l2.Items, bgp.Items, sessions.Items

	var pods corev1.PodList
	sel, err := labels.Parse(speakerSelector)
	if err != nil {
		return nil, failure("parsing the speaker selector: %w", err)
	}
	switch err := c.List(ctx, &pods, client.InNamespace(g.herald), client.MatchingLabelsSelector{Selector: sel}); {
	case apierrors.IsForbidden(err):
		// Nothing known of the speakers' Pods.
	case err != nil:
		return nil, fail("the speaker Pods", err)
	case len(pods.Items) > 0:
		cl.SpeakerPods = map[string]inspect.SpeakerPod{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Spec.NodeName == "" {
				continue
			}
			sp := inspect.SpeakerPodFromKube(p)
			if cur, ok := cl.SpeakerPods[p.Spec.NodeName]; !ok || (!cur.Ready && sp.Ready) {
				cl.SpeakerPods[p.Spec.NodeName] = sp
			}
		}
	}
	return cl, nil
}

// referencedSecrets names the Secrets the peers reference, sorted, once each.
func referencedSecrets(peers []v1beta1.BGPPeer) []string {
	var out []string
	for _, p := range peers {
		if ref := p.Spec.PasswordSecret; ref != nil && ref.Name != "" {
			out = append(out, ref.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
