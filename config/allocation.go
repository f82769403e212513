package config

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// Selects reports whether a pool with this serviceAllocation may serve a Service of namespace
// (whose labels are nsLabels) with the labels svcLabels: its namespace must be listed in
// Namespaces or match one of NamespaceSelectors (when either is set), and the Service must match
// one of ServiceSelectors (when set). A nil allocation selects every Service. Priority plays no
// part.
func (sa *ServiceAllocation) Selects(namespace string, nsLabels, svcLabels map[string]string) bool {
	if sa == nil {
		return true
	}
	if len(sa.Namespaces) > 0 || len(sa.NamespaceSelectors) > 0 {
		ok := slices.Contains(sa.Namespaces, namespace) ||
			slices.ContainsFunc(sa.NamespaceSelectors, func(s labels.Selector) bool { return s.Matches(labels.Set(nsLabels)) })
		if !ok {
			return false
		}
	}
	if len(sa.ServiceSelectors) > 0 {
		return slices.ContainsFunc(sa.ServiceSelectors, func(s labels.Selector) bool { return s.Matches(labels.Set(svcLabels)) })
	}
	return true
}
