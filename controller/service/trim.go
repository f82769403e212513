package service

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// heraldAnnotationPrefix starts every annotation the controller reads or writes.
const heraldAnnotationPrefix = "herald.dev/"

// TrimService is the cache transform of Services: it keeps only what the controller and the
// webhook read (the Service's identity, labels, Herald's annotations, the fields that describe the
// request to the allocator, and status.loadBalancer.ingress) and drops the rest, which on a real
// cluster is most of a Service (managedFields, kubectl's last-applied-configuration, cluster IPs,
// node ports, ...). At 10,000 Services the cache is the controller's largest memory.
//
// Every write the controller makes is a merge patch computed between two copies of the trimmed
// object, so the fields dropped here are never part of a write: nothing the controller does not
// read is ever overwritten. Code that Updates a Service from the cache would wipe them: never do that.
func TrimService(obj any) (any, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil // a tombstone or another kind: left as it is
	}
	out := &corev1.Service{
		TypeMeta: svc.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              svc.Name,
			Namespace:         svc.Namespace,
			UID:               svc.UID,
			ResourceVersion:   svc.ResourceVersion,
			Generation:        svc.Generation,
			DeletionTimestamp: svc.DeletionTimestamp,
			Labels:            svc.Labels,
			Annotations:       heraldAnnotations(svc.Annotations),
		},
		Spec: corev1.ServiceSpec{
			Type:                  svc.Spec.Type,
			LoadBalancerClass:     svc.Spec.LoadBalancerClass,
			Selector:              svc.Spec.Selector,
			ExternalTrafficPolicy: svc.Spec.ExternalTrafficPolicy,
			IPFamilies:            svc.Spec.IPFamilies,
			IPFamilyPolicy:        svc.Spec.IPFamilyPolicy,
			LoadBalancerIP:        svc.Spec.LoadBalancerIP,
		},
		Status: corev1.ServiceStatus{LoadBalancer: svc.Status.LoadBalancer},
	}
	if len(svc.Spec.Ports) > 0 {
		out.Spec.Ports = make([]corev1.ServicePort, len(svc.Spec.Ports))
		for i, p := range svc.Spec.Ports {
			out.Spec.Ports[i] = corev1.ServicePort{Port: p.Port, Protocol: p.Protocol}
		}
	}
	return out, nil
}

// heraldAnnotations returns the annotations with Herald's prefix, or nil when there are none.
func heraldAnnotations(in map[string]string) map[string]string {
	n := 0
	for k := range in {
		if strings.HasPrefix(k, heraldAnnotationPrefix) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if n == len(in) {
		return in
	}
	out := make(map[string]string, n)
	for k, v := range in {
		if strings.HasPrefix(k, heraldAnnotationPrefix) {
			out[k] = v
		}
	}
	return out
}
