package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPoolSpec declares a set of addresses that the controller may give to Services.
type IPAddressPoolSpec struct {
	// Addresses are the CIDRs ("192.0.2.0/24", "2001:db8::/64") and inclusive ranges
	// ("192.0.2.10-192.0.2.20") of the pool. IPv4 and IPv6 may be mixed.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=100
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim()) && ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family())",message="each address must be a CIDR such as 192.0.2.0/24 or 2001:db8::/64, or a range first-last of one family such as 192.0.2.10-192.0.2.20"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="a CIDR must not have host bits set: use its network address, for example 192.0.2.0/24 rather than 192.0.2.5/24"
	// +listType=atomic
	Addresses []string `json:"addresses"`

	// AutoAssign lets the controller pick this pool for Services that do not ask for a pool by name.
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255, which some old client stacks drop.
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// AllocateNetworkAndBroadcast lets the controller hand out the network and broadcast
	// addresses of the pool's IPv4 CIDRs and the first address (the subnet-router anycast
	// address, RFC 4291) of its IPv6 CIDRs. By default (false) they are skipped, as many networks
	// drop traffic to them; for example 192.0.2.0/30 gives 192.0.2.1 and 192.0.2.2 only.
	// IPv4 /31 and /32 and IPv6 /127 and /128 CIDRs and first-last ranges are never affected:
	// every address of them is handed out. Skipped addresses are neither assigned automatically
	// nor granted on request (spec.loadBalancerIP, herald.dev/loadBalancerIPs), but a Service
	// that already holds one (for example from before an upgrade) keeps it; so does turning this
	// back to false or turning avoidBuggyIPs on. Skipped addresses do not count in the pool's
	// available addresses.
	// +optional
	AllocateNetworkAndBroadcast bool `json:"allocateNetworkAndBroadcast,omitempty"`

	// ServiceAllocation limits which Services may get addresses from this pool and orders pools.
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts a pool to some Services and gives it a priority.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) || has(self.namespaceSelectors) || has(self.serviceSelectors) || has(self.priority)",message="serviceAllocation must set at least one of priority, namespaces, namespaceSelectors or serviceSelectors"
type ServiceAllocation struct {
	// Priority orders the pools a Service may use: lower numbers are tried first.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// Namespaces whose Services may use this pool.
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors select, by label, the namespaces whose Services may use this pool.
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors select, by label, the Services that may use this pool.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus reports how much of the pool is in use. Counts are decimal strings so that
// they stay exact for IPv6 pools (a /64 holds 2^64 addresses, more than an int64 can count).
type IPAddressPoolStatus struct {
	// AssignedIPv4 is the number of IPv4 addresses of the pool given to Services.
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +optional
	AssignedIPv4 string `json:"assignedIPv4,omitempty"`
	// AvailableIPv4 is the number of IPv4 addresses of the pool still free.
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +optional
	AvailableIPv4 string `json:"availableIPv4,omitempty"`
	// AssignedIPv6 is the number of IPv6 addresses of the pool given to Services.
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +optional
	AssignedIPv6 string `json:"assignedIPv6,omitempty"`
	// AvailableIPv6 is the number of IPv6 addresses of the pool still free.
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +optional
	AvailableIPv6 string `json:"availableIPv6,omitempty"`
	// Conditions say whether the pool is valid and report released addresses.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPAddressPool is a set of addresses that Herald gives to Services of type LoadBalancer.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ippool;ippools,categories=herald
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Assigned IPv4",type=string,JSONPath=`.status.assignedIPv4`
// +kubebuilder:printcolumn:name="Available IPv4",type=string,JSONPath=`.status.availableIPv4`
// +kubebuilder:printcolumn:name="Assigned IPv6",type=string,JSONPath=`.status.assignedIPv6`
// +kubebuilder:printcolumn:name="Available IPv6",type=string,JSONPath=`.status.availableIPv6`
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPAddressPoolSpec   `json:"spec"`
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPool.
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
