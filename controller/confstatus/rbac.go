package confstatus

// The RBAC rule the configuration status writer needs (see `make generate`): it patches the Valid
// condition of every configuration object, in Herald's namespace only.

// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools/status;l2advertisements/status;bgpadvertisements/status;bgppeers/status;bfdprofiles/status;communities/status,verbs=patch
