package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPPeerSpec describes one BGP session that the speakers on the selected nodes open to a router.
// +kubebuilder:validation:XValidation:rule="has(self.peerASN) != has(self.dynamicASN)",message="set exactly one of peerASN (the router's AS number, such as 64500) and dynamicASN (internal or external, when the router's AS number is not pinned)"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultiHop) || !self.ebgpMultiHop || (has(self.peerASN) ? self.myASN != self.peerASN : (!has(self.dynamicASN) || self.dynamicASN != 'internal'))",message="ebgpMultiHop applies only to eBGP sessions: myASN and peerASN are equal (or dynamicASN is internal), so this is iBGP; remove ebgpMultiHop"
// +kubebuilder:validation:XValidation:rule="!has(self.vrf) || size(self.vrf) == 0 || !has(self.bfdProfile) || size(self.bfdProfile) == 0",message="BFD on a session in a VRF is not supported: Herald's BFD sockets live in the default VRF; remove bfdProfile, or vrf"
// +kubebuilder:validation:XValidation:rule="!has(self.gracefulRestartTime) || !has(self.enableGracefulRestart) || self.enableGracefulRestart",message="gracefulRestartTime applies only with graceful restart: enableGracefulRestart is false; remove gracefulRestartTime, or enableGracefulRestart"
// +kubebuilder:validation:XValidation:rule="!has(self.gracefulShutdownTime) || (has(self.gracefulShutdown) && self.gracefulShutdown)",message="gracefulShutdownTime applies only with gracefulShutdown: true; set gracefulShutdown: true, or remove gracefulShutdownTime"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !has(self.peerAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",message="sourceAddress must be of the same IP family as peerAddress"
// +kubebuilder:validation:XValidation:rule="(has(self.peerAddress) && size(self.peerAddress) > 0) != (has(self.interface) && size(self.interface) > 0)",message="set exactly one of peerAddress (the router's address, such as 198.51.100.1) and interface (BGP unnumbered: the nodes' interface to the router, such as eth1)"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || size(self.interface) == 0 || !has(self.ebgpMultiHop) || !self.ebgpMultiHop",message="ebgpMultiHop does not apply to an unnumbered session (interface): it runs to the router's link-local address, one hop away; remove ebgpMultiHop"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || size(self.interface) == 0 || !has(self.sourceAddress) || size(self.sourceAddress) == 0",message="sourceAddress does not apply to an unnumbered session (interface): it runs from the interface's link-local address; remove sourceAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || size(self.interface) == 0 || !has(self.vrf) || size(self.vrf) == 0",message="an unnumbered session (interface) in a VRF is not supported; remove vrf, or use peerAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.interface) || size(self.interface) == 0 || !has(self.bfdProfile) || size(self.bfdProfile) == 0",message="BFD on an unnumbered session (interface) is not supported; remove bfdProfile, or use peerAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || duration(self.keepaliveTime) <= (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))",messageExpression="'keepaliveTime ' + self.keepaliveTime + ' must not be longer than holdTime ' + (has(self.holdTime) ? self.holdTime : '90s (the default)') + '; use at most holdTime (one third of it is usual)'"
type BGPPeerSpec struct {
	// MyASN is the autonomous system number the speaker uses for this session.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// PeerASN is the autonomous system number of the router. Equal to myASN means iBGP. Set
	// exactly one of peerASN and dynamicASN.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	// +optional
	PeerASN uint32 `json:"peerASN,omitempty"`

	// DynamicASN accepts the router's AS number without pinning it, for routers whose AS
	// number differs per rack or changes: "internal" accepts only myASN (iBGP), "external"
	// any AS number other than myASN (eBGP). A router answering with myASN on an external
	// session is closed again and reported. Set exactly one of peerASN and dynamicASN.
	// +kubebuilder:validation:Enum=internal;external
	// +optional
	DynamicASN DynamicASN `json:"dynamicASN,omitempty"`

	// PeerAddress is the IPv4 or IPv6 unicast address of the router. Unspecified, loopback,
	// link-local, multicast, broadcast, 0.0.0.0/8 and 240.0.0.0/4 addresses are refused. Set
	// exactly one of peerAddress and interface.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="peerAddress must be an IPv4 or IPv6 address such as 198.51.100.1 or 2001:db8::1"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || (ip(self).isGlobalUnicast() && (ip(self).family() == 6 || !(cidr('0.0.0.0/8').containsIP(self) || cidr('240.0.0.0/4').containsIP(self))))",messageExpression="'peerAddress ' + self + ' is not a unicast address a router can be reached at (unspecified, loopback, link-local, multicast, broadcast, 0.0.0.0/8 and 240.0.0.0/4 are refused); use the router address, such as 198.51.100.1 or 2001:db8::1'"
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`

	// Interface makes the session BGP unnumbered: it runs between the IPv6 link-local addresses
	// of this interface of the nodes and of the router at its other end (a point-to-point
	// link), as with FRR's `neighbor eth1 interface`. The speaker sends IPv6 Router
	// Advertisements on the interface (router lifetime 0) so the router learns the node, learns
	// the router's address from the router's own, and follows it when it changes. IPv4 routes
	// are sent with the node's IPv6 link-local next hop (extended next hop, RFC 8950); the router
	// must accept that (FRR does on interface neighbours). Set exactly one of peerAddress and
	// interface; not with ebgpMultiHop, sourceAddress, vrf or bfdProfile.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9_.-]*$')",messageExpression="'interface ' + self + ' is not a Linux device name: up to 15 letters, digits, underscores, dots and dashes, starting with a letter or digit, such as eth1'"
	// +optional
	Interface string `json:"interface,omitempty"`

	// PeerPort is the router's TCP port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=179
	// +optional
	PeerPort uint16 `json:"peerPort,omitempty"`

	// SourceAddress is the local address the session is opened from; chosen by the kernel when
	// empty. The same addresses as for peerAddress are refused.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="sourceAddress must be an IPv4 or IPv6 address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || (ip(self).isGlobalUnicast() && (ip(self).family() == 6 || !(cidr('0.0.0.0/8').containsIP(self) || cidr('240.0.0.0/4').containsIP(self))))",messageExpression="'sourceAddress ' + self + ' is not a unicast address a session can be opened from (unspecified, loopback, link-local, multicast, broadcast, 0.0.0.0/8 and 240.0.0.0/4 are refused); use an address of the nodes or leave it empty'"
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// HoldTime is the BGP hold time, a whole number of seconds from 3s to 65535s. Default 90s.
	// 0s (no keepalives) is refused: the embedded GoBGP would run the session with 90s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('3s') && duration(self) <= duration('65535s')",messageExpression="'holdTime ' + self + ' must be between 3s and 65535s (default 90s); 0s (no keepalives) is not supported'"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",messageExpression="'holdTime ' + self + ' must be a whole number of seconds, such as 90s (BGP counts it in seconds)'"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the interval between keepalives, a whole number of seconds from 1s to
	// holdTime; one third of holdTime rounded down to whole seconds when empty.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",messageExpression="'keepaliveTime ' + self + ' must be at least 1s; leave it empty for one third of holdTime'"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",messageExpression="'keepaliveTime ' + self + ' must be a whole number of seconds, such as 30s (BGP counts it in seconds)'"
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between attempts to open the session, a whole number of
	// seconds from 1s to 65535s. Default 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('65535s')",message="connectTime must be between 1s and 65535s"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",messageExpression="'connectTime ' + self + ' must be a whole number of seconds, such as 10s'"
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// RouterID is the BGP identifier, an IPv4 address other than 0.0.0.0 and outside
	// 224.0.0.0/3. Every node selected by this peer uses it; when empty each node uses its own:
	// its IPv4 address, or on a node without IPv4 one derived from its IPv6 address.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="routerID must be an IPv4 address such as 198.51.100.10"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || ip(self).family() != 4 || !(ip(self).isUnspecified() || cidr('224.0.0.0/3').containsIP(self))",messageExpression="'routerID ' + self + ' is not a usable BGP identifier (0.0.0.0 is invalid, and routers that follow RFC 4271 refuse 224.0.0.0/3); use an address such as 198.51.100.10'"
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// NodeSelectors limit the nodes that open this session; all nodes when empty.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// PasswordSecret references a Secret in the peer's namespace whose key holds the TCP MD5
	// password: 1 to 80 bytes (the kernel's limit for TCP MD5 keys).
	// +optional
	PasswordSecret *SecretKeyReference `json:"passwordSecret,omitempty"`

	// EBGPMultiHop allows the eBGP router to be more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// EnableGracefulRestart turns BGP graceful restart (RFC 4724) on or off for this session; on
	// when not set. With it, a speaker that restarts (the DaemonSet's rolling update, or a crash)
	// keeps the router forwarding to its node for gracefulRestartTime, until the new speaker has
	// sent its routes again (End-of-RIB); a speaker that does not come back has its routes removed
	// by the router when that time expires. A node that goes away (drained, deleted, the speaker
	// removed from it) withdraws its routes before closing the session either way.
	// +optional
	EnableGracefulRestart *bool `json:"enableGracefulRestart,omitempty"`

	// GracefulRestartTime is how long the router keeps this node's routes after the session ends
	// without a NOTIFICATION, a whole number of seconds from 1s to 4095s (the capability carries
	// 12 bits). Default 120s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('4095s')",messageExpression="'gracefulRestartTime ' + self + ' must be between 1s and 4095s (RFC 4724 carries it in 12 bits of seconds); default 120s'"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",messageExpression="'gracefulRestartTime ' + self + ' must be a whole number of seconds, such as 120s'"
	// +optional
	GracefulRestartTime *metav1.Duration `json:"gracefulRestartTime,omitempty"`

	// GracefulShutdown makes a speaker that stops for good (the node drained, deleted, or the
	// speaker removed from it; not a restart) first send its routes again with the
	// GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326), and LOCAL_PREF 0 on iBGP sessions, wait
	// gracefulShutdownTime so that the router moves traffic to other paths while this node still
	// forwards, and only then withdraw them and close the session. The router must lower the
	// preference of eBGP paths carrying 65535:0 (FRR does it by itself, setting local preference
	// 0; other routers may need a policy for it). Off when not set: routes are withdrawn at once.
	// +optional
	GracefulShutdown bool `json:"gracefulShutdown,omitempty"`

	// GracefulShutdownTime is how long a speaker stopping for good advertises its routes with the
	// GRACEFUL_SHUTDOWN community before withdrawing them, from 1s to 60s. Default 5s. The
	// speaker Pod's terminationGracePeriodSeconds must leave room for it (about 5s more).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('60s')",messageExpression="'gracefulShutdownTime ' + self + ' must be between 1s and 60s (default 5s)'"
	// +optional
	GracefulShutdownTime *metav1.Duration `json:"gracefulShutdownTime,omitempty"`

	// MaxPrefixes is the most prefixes the speaker accepts from the router per address family
	// (IPv4 and IPv6 unicast each) before it closes the session with a Cease NOTIFICATION
	// "Maximum Number of Prefixes Reached" (RFC 4486). The speaker imports nothing, but it holds
	// every received path until then, so this bounds its memory when a router sends a full
	// table. The session is opened again after a minute. Default 1000.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	// +optional
	MaxPrefixes *uint32 `json:"maxPrefixes,omitempty"`

	// BFDProfile names a BFDProfile in the same namespace to run BFD on this session: single-hop
	// BFD (RFC 5881, UDP port 3784, only TTL 255 accepted), or multi-hop BFD (RFC 5883, UDP port
	// 4784, the profile's minimumTtl) when ebgpMultiHop is true.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// VRF is the name of the Linux VRF device on the nodes that the session runs in: its TCP
	// connection is bound to that device (SO_BINDTODEVICE), so it uses the VRF's routing table
	// and addresses. The default VRF when empty. A node without this device reports the session
	// as not connecting and keeps its other sessions.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9_.-]*$')",messageExpression="'vrf ' + self + ' is not a Linux device name: up to 15 letters, digits, underscores, dots and dashes, starting with a letter or digit, such as red'"
	// +optional
	VRF string `json:"vrf,omitempty"`
}

// DynamicASN is how a BGPPeer without peerASN accepts the router's AS number.
type DynamicASN string

// DynamicASN values.
const (
	// DynamicASNInternal accepts the router when its AS number is myASN (iBGP).
	DynamicASNInternal DynamicASN = "internal"
	// DynamicASNExternal accepts the router when its AS number is not myASN (eBGP).
	DynamicASNExternal DynamicASN = "external"
)

// SecretKeyReference names a key of a Secret in the referring object's namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data; "password" when empty.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// BGPPeer is a router that speakers open BGP sessions to.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bgppeer,categories=herald
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="Interface",type=string,JSONPath=`.spec.interface`,priority=1
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=`.spec.myASN`
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="Dynamic ASN",type=string,JSONPath=`.spec.dynamicASN`,priority=1
// +kubebuilder:printcolumn:name="VRF",type=string,JSONPath=`.spec.vrf`,priority=1
// +kubebuilder:printcolumn:name="Valid",type=string,JSONPath=`.status.conditions[?(@.type=="Valid")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPPeerSpec `json:"spec"`
	// Status is written by the controller.
	// +optional
	Status ConfigurationStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
