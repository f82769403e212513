package service

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/allocator"
)

// requestError is a malformed field of a Service: its message names the field, the value and the
// fix, and it wraps allocator.ErrInvalidRequest like the allocator's own validation errors.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return allocator.ErrInvalidRequest }

func invalidf(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// ParseRequestedIPs merges a Service's spec.loadBalancerIP and its herald.dev/loadBalancerIPs
// annotation (comma-separated) into the addresses it asks for, at most one per family, in the
// order given. Setting both is an error, as is a malformed, zoned, IPv4-mapped IPv6,
// unspecified or multicast address. The error wraps allocator.ErrInvalidRequest.
func ParseRequestedIPs(loadBalancerIP, annotation string) ([]netip.Addr, error) {
	lb, an := strings.TrimSpace(loadBalancerIP), strings.TrimSpace(annotation)
	switch {
	case lb != "" && an != "":
		return nil, invalidf("spec.loadBalancerIP (%q) and annotation %s (%q) are both set: set only the annotation", lb, v1beta1.AnnotationLoadBalancerIPs, an)
	case lb != "":
		ip, err := parseRequestedIP("spec.loadBalancerIP", lb)
		if err != nil {
			return nil, err
		}
		return []netip.Addr{ip}, nil
	case an == "":
		return nil, nil
	}
	field := "annotation " + v1beta1.AnnotationLoadBalancerIPs
	var ips []netip.Addr
	for _, s := range strings.Split(an, ",") {
		ip, err := parseRequestedIP(field, strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		for _, prev := range ips {
			if allocator.FamilyOf(prev) == allocator.FamilyOf(ip) {
				return nil, invalidf("%s (%q) lists two %s addresses, %s and %s: at most one per family", field, an, allocator.FamilyOf(ip), prev, ip)
			}
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

func parseRequestedIP(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, invalidf("%s has an empty entry: want IP addresses separated by commas", field)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalidf("%s: %q is not an IP address", field, s)
	}
	if err := allocator.CheckAddr(ip); err != nil {
		return netip.Addr{}, invalidf("%s: %v", field, err)
	}
	return ip, nil
}

// parseFamily converts an entry of spec.ipFamilies.
func parseFamily(f corev1.IPFamily) (allocator.Family, error) {
	switch f {
	case corev1.IPv4Protocol:
		return allocator.IPv4, nil
	case corev1.IPv6Protocol:
		return allocator.IPv6, nil
	}
	return 0, invalidf("unknown IP family %q: want IPv4 or IPv6", f)
}

// fieldOrigins says, per field of the allocator's Service, which field of the Kubernetes Service
// it comes from and how to change it.
var fieldOrigins = map[allocator.Field]string{
	allocator.FieldPool:       "the Service's pool is its annotation " + v1beta1.AnnotationAddressPool,
	allocator.FieldSharingKey: "the Service's sharing key is its annotation " + v1beta1.AnnotationAllowSharedIP,
}

// AllocationError adds to an error of the allocator the Kubernetes field of the Service that
// each part of the Service's request it speaks of comes from. errors.Is still sees the
// allocator's sentinels.
func AllocationError(err error) error {
	fields := allocator.Fields(err)
	if len(fields) == 0 {
		return err
	}
	var origins []string
	for _, f := range fields {
		if o, ok := fieldOrigins[f]; ok {
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		return err
	}
	return &annotatedError{err: err, msg: err.Error() + " (" + strings.Join(origins, "; ") + ")"}
}

// annotatedError is an allocator error with the origin of its fields in the message.
type annotatedError struct {
	err error
	msg string
}

func (e *annotatedError) Error() string { return e.msg }
func (e *annotatedError) Unwrap() error { return e.err }
