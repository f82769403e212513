package webhook

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Path is where the webhook is served; the ValidatingWebhookConfiguration points at it.
const Path = "/validate-herald-dev-v1beta1"

// Options configure Register.
type Options struct {
	// Namespace is the Herald namespace (--namespace); objects elsewhere are allowed with a warning.
	Namespace string
	// LBClass is the controller's --lb-class (empty for Services without a class).
	LBClass string
	// Reader reads the objects a review needs (default: the manager's API reader, uncached, so a
	// review always sees the objects admitted just before it).
	Reader client.Reader
	// Path overrides Path.
	Path string
}

// Register serves the validating webhook on the manager's webhook server.
func Register(mgr manager.Manager, o Options) error {
	if o.Namespace == "" {
		return ErrNoNamespace
	}
	if o.Reader == nil {
		o.Reader = mgr.GetAPIReader()
	}
	if o.Path == "" {
		o.Path = Path
	}
	mgr.GetWebhookServer().Register(o.Path, &admission.Webhook{Handler: NewValidator(o.Reader, o.Namespace, o.LBClass)})
	return nil
}
