package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube/client"
)

// ReadSnapshot lists every Herald configuration object of namespace, and its Secrets when
// withSecrets is set, into the snapshot config.Parse takes. The controller, the speaker and the
// webhook all read their configuration through it.
func ReadSnapshot(ctx context.Context, r client.Reader, namespace string, withSecrets bool) (config.Snapshot, error) {
	var (
		s       config.Snapshot
		pools   v1beta1.IPAddressPoolList
		l2s     v1beta1.L2AdvertisementList
		bgps    v1beta1.BGPAdvertisementList
		peers   v1beta1.BGPPeerList
		bfds    v1beta1.BFDProfileList
		comms   v1beta1.CommunityList
		secrets corev1.SecretList
	)
	lists := []client.ObjectList{&pools, &l2s, &bgps, &peers, &bfds, &comms}
	if withSecrets {
		lists = append(lists, &secrets)
	}
	for _, l := range lists {
		if err := r.List(ctx, l, client.InNamespace(namespace)); err != nil {
			return s, fmt.Errorf("listing %T in %s: %w", l, namespace, err)
		}
	}
	s.Pools, s.L2Advertisements, s.BGPAdvertisements = pools.Items, l2s.Items, bgps.Items
	s.Peers, s.BFDProfiles, s.Communities, s.Secrets = peers.Items, bfds.Items, comms.Items, secrets.Items
	return s, nil
}
