package agent

// The RBAC rules the speaker needs (see `make generate`). Cluster-wide it reads what decides the
// announcements (Services, Nodes, EndpointSlices) and emits events on Services; it cannot write
// Services. In Herald's namespace only it reads the configuration, writes its status objects
// (ServiceL2Status, ServiceBGPStatus, BGPSessionStatus; the first live speaker deletes dead speakers'
// BGP status objects by label) and reads Secrets. Its cache holds only
// the Secrets labelled herald.dev/speaker-secret=true (the memberlist key, BGP passwords); RBAC
// cannot select by label, so keep Secrets the speaker must not see out of Herald's namespace. When
// it stops it gets its own Pod and DaemonSet to tell a restart from a stop for good (leave.go).

// +kubebuilder:rbac:groups="",resources=services;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools;l2advertisements;bgpadvertisements;bgppeers;bfdprofiles;communities,verbs=get;list;watch
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=servicel2statuses;servicebgpstatuses;bgpsessionstatuses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=servicebgpstatuses;bgpsessionstatuses,verbs=deletecollection
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=servicel2statuses/status;servicebgpstatuses/status;bgpsessionstatuses/status,verbs=update;patch
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=pods,verbs=get
// +kubebuilder:rbac:groups=apps,namespace=herald-system,resources=daemonsets,verbs=get
