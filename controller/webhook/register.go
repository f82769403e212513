package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Path is where the webhook is served; the ValidatingWebhookConfiguration points at it.
const Path = "/validate-herald-dev-v1beta1"

// IndexServiceIngress is the field index of Services that Register adds to the manager's cache:
// "true" for a Service whose status.loadBalancer.ingress holds an IP. A review of a pool change
// lists only those, from memory, never every Service of the cluster from the API server.
const IndexServiceIngress = "herald.dev/has-ingress-ip"

// Options configure Register.
type Options struct {
	// Namespace is the Herald namespace (--namespace); objects elsewhere are allowed with a warning.
	Namespace string
	// LBClass is the controller's --lb-class (empty for Services without a class).
	LBClass string
	// Reader reads the Herald configuration objects and the Secrets peers name, in Namespace only
	// (default: the manager's API reader, uncached, so that a review sees the objects admitted
	// just before it: kubectl apply -f creates a pool and the advertisement naming it
	// milliseconds apart).
	Reader client.Reader
	// Cache reads Services (through IndexServiceIngress) and Namespaces, cluster-wide (default:
	// the manager's cache, which the controller fills anyway).
	Cache client.Reader
	// Path overrides Path.
	Path string
}

// Register serves the validating webhook on the manager's webhook server and adds the Service
// index it reads through. It must be called before the manager starts.
func Register(mgr manager.Manager, o Options) error {
	if o.Namespace == "" {
		return ErrNoNamespace
	}
	if o.Reader == nil {
		o.Reader = mgr.GetAPIReader()
	}
	if o.Cache == nil {
		o.Cache = mgr.GetCache()
		if err := IndexServices(context.Background(), mgr.GetFieldIndexer()); err != nil {
			return err
		}
	}
	if o.Path == "" {
		o.Path = Path
	}
	v := NewValidator(o.Reader, o.Cache, mgr.GetScheme(), o.Namespace, o.LBClass)
	mgr.GetWebhookServer().Register(o.Path, &admission.Webhook{Handler: v})
	return nil
}

// IndexServices adds IndexServiceIngress to a cache's field indexer.
func IndexServices(ctx context.Context, fi client.FieldIndexer) error {
	if err := fi.IndexField(ctx, &corev1.Service{}, IndexServiceIngress, ServiceIngressIndex); err != nil {
		return fmt.Errorf("indexing Services by ingress IP for the webhook: %w", err)
	}
	return nil
}

// ServiceIngressIndex is the index function of IndexServiceIngress.
func ServiceIngressIndex(o client.Object) []string {
	if svc, ok := o.(*corev1.Service); ok && hasIngressIP(svc) {
		return []string{"true"}
	}
	return nil
}

func hasIngressIP(svc *corev1.Service) bool {
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			return true
		}
	}
	return false
}
