// Package v1beta1 holds the Herald custom resources of the API group herald.dev, version v1beta1:
// address pools, layer-2 and BGP advertisements, BGP peers, BFD profiles, community aliases, and the
// status-only kinds the speaker writes. Validation that the API server can do on its own (formats,
// ranges, enums, CEL rules) is declared here with kubebuilder markers; cross-object rules live in
// package config and run in the controller, the speaker and the validating webhook.
//
// +kubebuilder:object:generate=true
// +groupName=herald.dev
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the Herald resources.
var GroupVersion = schema.GroupVersion{Group: "herald.dev", Version: "v1beta1"}

// AddToScheme adds the Herald types to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&IPAddressPool{}, &IPAddressPoolList{},
		&L2Advertisement{}, &L2AdvertisementList{},
		&BGPAdvertisement{}, &BGPAdvertisementList{},
		&BGPPeer{}, &BGPPeerList{},
		&BFDProfile{}, &BFDProfileList{},
		&Community{}, &CommunityList{},
		&ServiceL2Status{}, &ServiceL2StatusList{},
		&ServiceBGPStatus{}, &ServiceBGPStatusList{},
		&BGPSessionStatus{}, &BGPSessionStatusList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
