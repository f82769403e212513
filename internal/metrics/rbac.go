package metrics

// The RBAC rules of the metrics endpoint (see `make generate`). herald-metrics-auth lets both
// binaries check their clients with the API server (TokenReview, SubjectAccessReview);
// herald-metrics-reader is what a client needs to be let in: bind it to Prometheus'
// ServiceAccount.

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create,roleName=herald-metrics-auth
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create,roleName=herald-metrics-auth
// +kubebuilder:rbac:urls=/metrics,verbs=get,roleName=herald-metrics-reader
