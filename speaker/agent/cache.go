package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
)

// SecretSelector selects the Secrets the speaker reads: those labelled
// v1beta1.LabelSpeakerSecret=true (the memberlist key, BGP passwords). Every other Secret of
// Herald's namespace, such as the webhook's CA key, stays out of the speaker's memory.
func SecretSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue})
}

// CacheOptions are the speaker's cache options: Herald's configuration and status objects of
// namespace only, and of its Secrets only those SecretSelector selects. Services, EndpointSlices
// and Nodes are cached cluster-wide.
func CacheOptions(namespace string) cache.Options {
	inNS := cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}:         {Namespaces: map[string]cache.Config{namespace: {}}, Label: SecretSelector()},
		&v1beta1.IPAddressPool{}: inNS, &v1beta1.L2Advertisement{}: inNS, &v1beta1.BGPAdvertisement{}: inNS,
		&v1beta1.BGPPeer{}: inNS, &v1beta1.BFDProfile{}: inNS, &v1beta1.Community{}: inNS,
		&v1beta1.ServiceL2Status{}: inNS, &v1beta1.ServiceBGPStatus{}: inNS, &v1beta1.BGPSessionStatus{}: inNS,
	}}
}
