package main

// The RBAC rules of what main wires itself (see `make generate`): the memberlist key Secret that
// memberlistkey.EnsureSecret creates when it is missing (and may relabel), and the leader election
// lease (--leader-elect).

// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,resourceNames=herald-memberlist,verbs=update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=herald-system,resources=leases,verbs=get;list;watch;create;update;patch
