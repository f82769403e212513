package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations on Services. The first three are the user's requests; the controller writes the
// last.
const (
	// AnnotationAddressPool asks for a pool by name.
	AnnotationAddressPool = "herald.dev/address-pool"
	// AnnotationLoadBalancerIPs asks for addresses (comma-separated, at most one per family).
	AnnotationLoadBalancerIPs = "herald.dev/loadBalancerIPs"
	// AnnotationAllowSharedIP is the sharing key: Services with the same key may share an address.
	AnnotationAllowSharedIP = "herald.dev/allow-shared-ip"
	// AnnotationAllocatedFromPool is written by the controller: the pool of the Service's addresses.
	AnnotationAllocatedFromPool = "herald.dev/ip-allocated-from-pool"
)

// AnnotationAllowReleaseOfInUseIPs, set to "true" on an IPAddressPool, confirms a change that
// releases addresses Services hold: deleting the pool, shrinking its addresses under them, or
// narrowing its serviceAllocation so that a Service holding one of its addresses is no longer
// allowed it. Without it the validating webhook refuses such a change and names the Services.
const AnnotationAllowReleaseOfInUseIPs = "herald.dev/allow-release-of-in-use-ips"

// LabelSpeakerSecret, set to "true" on a Secret of Herald's namespace, lets the speakers read
// it: they cache only Secrets with this label. The controller puts it on the memberlist key
// Secret it creates; a Secret that a BGPPeer's passwordSecret names must carry it too, or the
// speakers cannot see the password (the peer's Valid condition then says so).
const LabelSpeakerSecret = "herald.dev/speaker-secret"

// LabelSpeakerSecretValue is the value of LabelSpeakerSecret that the speakers select.
const LabelSpeakerSecretValue = "true"

// ConditionValid is the condition the controller keeps on every configuration object
// (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community): True when
// the object has no problem, False with every problem (field, value, fix) in the message.
const ConditionValid = "Valid"

// Reasons of the Valid condition.
const (
	// ReasonValid: the object has no problem.
	ReasonValid = "Valid"
	// ReasonValidWithWarnings: the object is used, but something it refers to is missing or
	// ignored; the message says what.
	ReasonValidWithWarnings = "ValidWithWarnings"
	// ReasonInvalid: the object has errors; the message lists each one and its fix.
	ReasonInvalid = "Invalid"
)

// ConfigurationStatus is the status of the configuration kinds that have no other status: the
// Valid condition the controller writes.
type ConfigurationStatus struct {
	// Conditions: Valid says whether the object is valid and, when not, what to change.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GetConditions returns the pool's conditions.
func (p *IPAddressPool) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the pool's conditions.
func (p *IPAddressPool) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// GetConditions returns the advertisement's conditions.
func (a *L2Advertisement) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the advertisement's conditions.
func (a *L2Advertisement) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// GetConditions returns the advertisement's conditions.
func (a *BGPAdvertisement) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the advertisement's conditions.
func (a *BGPAdvertisement) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// GetConditions returns the peer's conditions.
func (p *BGPPeer) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the peer's conditions.
func (p *BGPPeer) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// GetConditions returns the profile's conditions.
func (p *BFDProfile) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the profile's conditions.
func (p *BFDProfile) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// GetConditions returns the Community's conditions.
func (c *Community) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the Community's conditions.
func (c *Community) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }
