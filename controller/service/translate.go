package service

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
)

// Key returns the allocator's key of a Service, "namespace/name".
func Key(namespace, name string) string { return namespace + "/" + name }

// ToAllocatorService describes svc to the allocator. nsLabels are the labels of the Service's
// namespace (for namespaceSelectors). The error wraps allocator.ErrInvalidRequest when the
// Service's requested addresses or families are malformed; the description is then still
// returned, without the malformed parts, so that the addresses the Service holds can be kept.
func ToAllocatorService(svc *corev1.Service, nsLabels map[string]string) (*allocator.Service, error) {
	out := &allocator.Service{
		Key:                        Key(svc.Namespace, svc.Name),
		Namespace:                  svc.Namespace,
		NamespaceLabels:            nsLabels,
		Labels:                     svc.Labels,
		Pool:                       strings.TrimSpace(svc.Annotations[v1beta1.AnnotationAddressPool]),
		SharingKey:                 strings.TrimSpace(svc.Annotations[v1beta1.AnnotationAllowSharedIP]),
		ExternalTrafficPolicyLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
		FamilyPolicy:               allocator.SingleStack,
	}
	if len(svc.Spec.Selector) > 0 {
		out.Selector = labels.SelectorFromSet(svc.Spec.Selector).String()
	}
	if p := svc.Spec.IPFamilyPolicy; p != nil {
		out.FamilyPolicy = allocator.FamilyPolicy(*p)
	}
	for _, p := range svc.Spec.Ports {
		out.Ports = append(out.Ports, allocator.Port{Port: p.Port, Protocol: string(p.Protocol)})
	}
	var errs []error
	for _, f := range svc.Spec.IPFamilies {
		fam, err := parseFamily(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.ipFamilies: %w", err))
			continue
		}
		out.Families = append(out.Families, fam)
	}
	ips, err := ParseRequestedIPs(svc.Spec.LoadBalancerIP, svc.Annotations[v1beta1.AnnotationLoadBalancerIPs])
	if err != nil {
		errs = append(errs, err)
	}
	out.RequestedIPs = ips
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("reading Service %s: %w", out.Key, err)
	}
	return out, nil
}

// ToAllocatorPool translates a validated pool. Its Match evaluates the serviceAllocation: the
// Service's namespace must be listed in namespaces or match one of namespaceSelectors (when either
// is set), and the Service must match one of serviceSelectors (when set). The pool's skipped
// addresses (the network and broadcast addresses of its CIDRs, unless allocateNetworkAndBroadcast)
// become the allocator's Skip: never handed out, but kept by a Service that holds one.
func ToAllocatorPool(p *config.Pool) allocator.Pool {
	out := allocator.Pool{
		Name:          p.Name,
		AutoAssign:    p.AutoAssign,
		AvoidBuggyIPs: p.AvoidBuggyIPs,
		Skip:          slices.Clone(p.Skip),
	}
	for _, r := range p.Ranges {
		out.Ranges = append(out.Ranges, allocator.Range{First: r.First, Last: r.Last})
	}
	if sa := p.Allocation; sa != nil {
		out.Restricted = true
		out.Priority = sa.Priority
		out.Match = matcher(sa)
	}
	return out
}

// ToAllocatorPools translates every pool of cfg, sorted by name.
func ToAllocatorPools(cfg *config.Config) []allocator.Pool {
	out := make([]allocator.Pool, 0, len(cfg.Pools))
	for _, name := range cfg.PoolNames() {
		out = append(out, ToAllocatorPool(cfg.Pools[name]))
	}
	return out
}

func matcher(sa *config.ServiceAllocation) func(*allocator.Service) bool {
	namespaces := slices.Clone(sa.Namespaces)
	nsSelectors := slices.Clone(sa.NamespaceSelectors)
	svcSelectors := slices.Clone(sa.ServiceSelectors)
	return func(svc *allocator.Service) bool {
		if len(namespaces) > 0 || len(nsSelectors) > 0 {
			ok := slices.Contains(namespaces, svc.Namespace) ||
				slices.ContainsFunc(nsSelectors, func(s labels.Selector) bool { return s.Matches(labels.Set(svc.NamespaceLabels)) })
			if !ok {
				return false
			}
		}
		if len(svcSelectors) > 0 {
			return slices.ContainsFunc(svcSelectors, func(s labels.Selector) bool { return s.Matches(labels.Set(svc.Labels)) })
		}
		return true
	}
}

// poolFingerprint is a canonical text of everything in a pool that the allocator sees, so that
// the controller calls SetPools only when the pools really change.
func poolFingerprint(cfg *config.Config) string {
	var b strings.Builder
	for _, name := range cfg.PoolNames() {
		p := cfg.Pools[name]
		fmt.Fprintf(&b, "%s auto=%t buggy=%t", p.Name, p.AutoAssign, p.AvoidBuggyIPs)
		for _, r := range p.Ranges {
			fmt.Fprintf(&b, " %s", r)
		}
		// Skip depends on how the entries are written ("192.0.2.0/24" or "192.0.2.0-192.0.2.255",
		// which print alike above) and on allocateNetworkAndBroadcast.
		for _, a := range p.Skip {
			fmt.Fprintf(&b, " skip=%s", a)
		}
		if sa := p.Allocation; sa != nil {
			fmt.Fprintf(&b, " prio=%d ns=%q", sa.Priority, sa.Namespaces)
			for _, s := range sa.NamespaceSelectors {
				fmt.Fprintf(&b, " nssel=%q", s.String())
			}
			for _, s := range sa.ServiceSelectors {
				fmt.Fprintf(&b, " svcsel=%q", s.String())
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Ingress is the status.loadBalancer.ingress the controller writes for the given assignments:
// one entry per address, in order, with ipMode VIP.
func Ingress(as []allocator.Assignment) []corev1.LoadBalancerIngress {
	if len(as) == 0 {
		return nil
	}
	out := make([]corev1.LoadBalancerIngress, 0, len(as))
	vip := corev1.LoadBalancerIPModeVIP
	for _, a := range as {
		mode := vip
		out = append(out, corev1.LoadBalancerIngress{IP: a.IP.String(), IPMode: &mode})
	}
	return out
}

// IngressEqual reports whether two ingress lists mean the same: the same addresses in the same
// order, an unset ipMode counting as VIP (the API server stores VIP for it), and no hostnames
// or ports.
func IngressEqual(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	mode := func(in corev1.LoadBalancerIngress) corev1.LoadBalancerIPMode {
		if in.IPMode == nil {
			return corev1.LoadBalancerIPModeVIP
		}
		return *in.IPMode
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname || mode(a[i]) != mode(b[i]) ||
			len(a[i].Ports) != 0 || len(b[i].Ports) != 0 {
			return false
		}
	}
	return true
}

// PoolOf returns the pool the assignments come from (the first one's), or "".
func PoolOf(as []allocator.Assignment) string {
	if len(as) == 0 {
		return ""
	}
	return as[0].Pool
}

// errorReasons are the herald_allocation_errors_total reason labels of the allocator's errors.
var errorReasons = []struct {
	err    error
	reason string
}{
	{allocator.ErrPoolFull, "pool_full"},
	{allocator.ErrNotInPool, "not_in_pool"},
	{allocator.ErrSharingConflict, "sharing_conflict"},
	{allocator.ErrInUse, "in_use"},
	{allocator.ErrPoolNotAllowed, "pool_not_allowed"},
	{allocator.ErrNoPool, "no_pool"},
	{allocator.ErrInvalidRequest, "invalid_request"},
}

// otherReason is the reason label of an error that is none of the allocator's.
const otherReason = "other"

// ErrorReason is the herald_allocation_errors_total reason label for an allocator error.
func ErrorReason(err error) string {
	for _, r := range errorReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return otherReason
}

// ErrorReasons lists every label ErrorReason returns.
func ErrorReasons() []string {
	out := make([]string, 0, len(errorReasons)+1)
	for _, r := range errorReasons {
		out = append(out, r.reason)
	}
	return append(out, otherReason)
}
