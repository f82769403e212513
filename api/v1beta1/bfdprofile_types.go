package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec holds the BFD timers used on the BGP sessions that name the profile. Herald runs
// BFD itself (RFC 5880 asynchronous mode; single hop as RFC 5881, multi-hop as RFC 5883 on
// sessions with ebgpMultiHop): it honours the intervals, the detect multiplier, passive mode and
// the minimum TTL (multi-hop), and refuses echo mode, which it cannot honour.
// +kubebuilder:validation:XValidation:rule="!has(self.echoMode) || !self.echoMode",message="the BFD echo function is not supported: Herald runs BFD in asynchronous mode only; remove echoMode (or set it to false)"
type BFDProfileSpec struct {
	// ReceiveInterval is the minimum interval, in milliseconds, at which this node can receive
	// packets (default 300).
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +optional
	ReceiveInterval *uint32 `json:"receiveInterval,omitempty"`
	// TransmitInterval is the minimum interval, in milliseconds, at which this node sends packets
	// once the session is Up (at most one a second before; default 300).
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +optional
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`
	// DetectMultiplier is how many packets may be lost before the session is declared down
	// (default 3).
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	// +optional
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`
	// EchoMode would turn on BFD echo packets; not supported: true is refused.
	// +optional
	EchoMode bool `json:"echoMode,omitempty"`
	// PassiveMode waits for the peer to start the session: the node sends no BFD packet until the
	// router has sent one.
	// +optional
	PassiveMode bool `json:"passiveMode,omitempty"`
	// MinimumTTL is the lowest TTL accepted on incoming packets of multi-hop sessions (BGPPeers
	// with ebgpMultiHop), default 254 (as FRR's bfdd: at most one router in between; 255 minus the
	// number of routers between the node and the peer). Herald sends with TTL 255. Single-hop
	// sessions ignore it: they accept only TTL 255 (RFC 5881).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	// +optional
	MinimumTTL *uint32 `json:"minimumTtl,omitempty"`
}

// BFDProfile is a named set of BFD timers for BGP sessions.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bfdprofile,categories=herald
// +kubebuilder:printcolumn:name="Receive",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Transmit",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BFDProfileSpec `json:"spec,omitempty"`
	// Status is written by the controller.
	// +optional
	Status ConfigurationStatus `json:"status,omitempty"`
}

// BFDProfileList is a list of BFDProfile.
// +kubebuilder:object:root=true
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}
