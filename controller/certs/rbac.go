package certs

// The RBAC rules the certificate manager needs (see `make generate`): it keeps the CA bundle of
// its own ValidatingWebhookConfiguration, and creates and renews the Secret holding the webhook's
// CA and serving certificate (create cannot be limited by name; update and patch are). It watches
// both by name (list and watch with a metadata.name field selector), to repair them at once.

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=herald-validating-webhook,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,resourceNames=herald-webhook-cert,verbs=update;patch
