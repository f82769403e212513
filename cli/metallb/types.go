package metallb

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The shapes of MetalLB's objects (metallb.io/v1beta1 and v1beta2, as of MetalLB v0.15), written
// from its API reference: only what the translation reads. BGPPeer holds the fields of both
// versions (v1beta2 added dynamicASN, interface, connectTime, passwordSecret, vrf, disableMP,
// dualStackAddressFamily and enableGracefulRestart; v1beta1's nodeSelectors have the shape of a
// label selector).

type poolSpec struct {
	Addresses         []string           `json:"addresses"`
	AutoAssign        *bool              `json:"autoAssign,omitempty"`
	AvoidBuggyIPs     bool               `json:"avoidBuggyIPs,omitempty"`
	ServiceAllocation *serviceAllocation `json:"serviceAllocation,omitempty"`
}

type serviceAllocation struct {
	Priority           int                    `json:"priority,omitempty"`
	Namespaces         []string               `json:"namespaces,omitempty"`
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	ServiceSelectors   []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

type l2AdvertisementSpec struct {
	IPAddressPools         []string               `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Interfaces             []string               `json:"interfaces,omitempty"`
}

type bgpAdvertisementSpec struct {
	AggregationLength      *int32                 `json:"aggregationLength,omitempty"`
	AggregationLengthV6    *int32                 `json:"aggregationLengthV6,omitempty"`
	LocalPref              uint32                 `json:"localPref,omitempty"`
	Communities            []string               `json:"communities,omitempty"`
	IPAddressPools         []string               `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Peers                  []string               `json:"peers,omitempty"`
}

type bgpPeerSpec struct {
	MyASN                  uint32                  `json:"myASN"`
	PeerASN                uint32                  `json:"peerASN,omitempty"`
	DynamicASN             string                  `json:"dynamicASN,omitempty"`
	PeerAddress            string                  `json:"peerAddress,omitempty"`
	Interface              string                  `json:"interface,omitempty"`
	SourceAddress          string                  `json:"sourceAddress,omitempty"`
	PeerPort               uint16                  `json:"peerPort,omitempty"`
	HoldTime               *metav1.Duration        `json:"holdTime,omitempty"`
	KeepaliveTime          *metav1.Duration        `json:"keepaliveTime,omitempty"`
	ConnectTime            *metav1.Duration        `json:"connectTime,omitempty"`
	RouterID               string                  `json:"routerID,omitempty"`
	NodeSelectors          []metav1.LabelSelector  `json:"nodeSelectors,omitempty"`
	Password               string                  `json:"password,omitempty"`
	PasswordSecret         *corev1.SecretReference `json:"passwordSecret,omitempty"`
	BFDProfile             string                  `json:"bfdProfile,omitempty"`
	EnableGracefulRestart  bool                    `json:"enableGracefulRestart,omitempty"`
	EBGPMultiHop           bool                    `json:"ebgpMultiHop,omitempty"`
	VRF                    string                  `json:"vrf,omitempty"`
	DisableMP              bool                    `json:"disableMP,omitempty"`
	DualStackAddressFamily bool                    `json:"dualStackAddressFamily,omitempty"`
}

type bfdProfileSpec struct {
	ReceiveInterval  *uint32 `json:"receiveInterval,omitempty"`
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`
	EchoInterval     *uint32 `json:"echoInterval,omitempty"`
	EchoMode         *bool   `json:"echoMode,omitempty"`
	PassiveMode      *bool   `json:"passiveMode,omitempty"`
	MinimumTTL       *uint32 `json:"minimumTtl,omitempty"`
}

type communitySpec struct {
	Communities []communityAlias `json:"communities,omitempty"`
}

type communityAlias struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
}

// knownFields are the spec fields of each kind; any other is reported as unknown (a newer MetalLB).
var knownFields = map[string][]string{
	KindIPAddressPool:    {"addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation"},
	KindL2Advertisement:  {"ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces"},
	KindBGPAdvertisement: {"aggregationLength", "aggregationLengthV6", "localPref", "communities", "ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "peers"},
	KindBGPPeer: {"myASN", "peerASN", "dynamicASN", "peerAddress", "interface", "sourceAddress", "peerPort", "holdTime", "keepaliveTime", "connectTime",
		"routerID", "nodeSelectors", "password", "passwordSecret", "bfdProfile", "enableGracefulRestart", "ebgpMultiHop", "vrf", "disableMP", "dualStackAddressFamily"},
	KindBFDProfile: {"receiveInterval", "transmitInterval", "detectMultiplier", "echoInterval", "echoMode", "passiveMode", "minimumTtl"},
	KindCommunity:  {"communities"},
}
