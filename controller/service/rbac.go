package service

// The RBAC rules the Service reconciler needs (controller-gen generates manifests/rbac from
// these markers; see `make generate`). It reads Services and patches only their status (the
// external IP) and their metadata (the herald.dev/ip-allocated-from-pool annotation): it cannot
// create, update or delete a Service. It reads Namespaces (serviceAllocation selectors), emits
// events, and, in Herald's namespace only, reads the configuration and its Secrets (BGP password
// Secrets that the webhook checks peers against) and writes the pools' status.

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools;l2advertisements;bgpadvertisements;bgppeers;bfdprofiles;communities,verbs=get;list;watch
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools/status,verbs=patch
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=get;list;watch
