package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec holds the BFD timers used on the BGP sessions that name the profile. Herald runs
// BFD itself (RFC 5880 asynchronous mode, single hop as RFC 5881): it honours the intervals, the
// detect multiplier and passive mode, and refuses echo mode and a minimum TTL (multi-hop), which
// it cannot honour.
// +kubebuilder:validation:XValidation:rule="!has(self.echoMode) || !self.echoMode",message="the BFD echo function is not supported: Herald runs BFD in asynchronous mode only; remove echoMode (or set it to false)"
// +kubebuilder:validation:XValidation:rule="!has(self.minimumTtl)",message="multi-hop BFD is not supported, so there is no minimum TTL to set: Herald runs single-hop BFD (RFC 5881), which accepts only packets sent with TTL 255; remove minimumTtl"
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
	// MinimumTTL would be the lowest TTL accepted on incoming packets of multi-hop sessions; not
	// supported (BFD runs single hop only, accepting only TTL 255): setting it is refused.
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
