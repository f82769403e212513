package v1beta1

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// How Herald reads a Service, shared by the controller, the speaker, the webhook and
// kubectl-herald (pure functions of the object, so the pure packages use them too).

// ManagedService reports whether Herald handles svc: a Service of type LoadBalancer whose
// spec.loadBalancerClass is unset when lbClass is empty, or equal to lbClass otherwise. The
// controller, the speaker, the webhook and kubectl-herald all decide through it.
func ManagedService(svc *corev1.Service, lbClass string) bool {
	return ManagedSpec(svc.Spec.Type, svc.Spec.LoadBalancerClass, lbClass)
}

// ManagedSpec is ManagedService for a Service's spec.type and spec.loadBalancerClass alone (the
// speaker keeps only those of a Service).
func ManagedSpec(typ corev1.ServiceType, class *string, lbClass string) bool {
	if typ != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if class == nil {
		return lbClass == ""
	}
	return *class == lbClass
}

// IngressIPs returns the addresses in svc's status.loadBalancer.ingress, in order and without
// duplicates, and an error for every entry that is not an IP address (hostnames
// included); the valid entries are returned beside the error.
func IngressIPs(svc *corev1.Service) ([]netip.Addr, error) {
	var ips []netip.Addr
	var errs []error
	for i, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == "" {
			errs = append(errs, fmt.Errorf("status.loadBalancer.ingress[%d] has no ip (hostname %q)", i, in.Hostname))
			continue
		}
		ip, err := netip.ParseAddr(in.IP)
		if err != nil {
			errs = append(errs, fmt.Errorf("status.loadBalancer.ingress[%d].ip %q: %w", i, in.IP, err))
			continue
		}
		if !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips, errors.Join(errs...)
}
