package webhook

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// Operation is what a request does to the object under review.
type Operation string

// Operations, as in admission requests.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Apply returns the snapshot s after op is applied to obj, one of the six Herald configuration
// kinds (a pointer, such as *v1beta1.IPAddressPool): an object of the same kind and name is
// replaced (Create, Update) or removed (Delete). s itself is not modified.
func Apply(s config.Snapshot, op Operation, obj client.Object) (config.Snapshot, error) {
	del := op == Delete
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		s.Pools = replace(s.Pools, o, del)
	case *v1beta1.L2Advertisement:
		s.L2Advertisements = replace(s.L2Advertisements, o, del)
	case *v1beta1.BGPAdvertisement:
		s.BGPAdvertisements = replace(s.BGPAdvertisements, o, del)
	case *v1beta1.BGPPeer:
		s.Peers = replace(s.Peers, o, del)
	case *v1beta1.BFDProfile:
		s.BFDProfiles = replace(s.BFDProfiles, o, del)
	case *v1beta1.Community:
		s.Communities = replace(s.Communities, o, del)
	default:
		return s, fmt.Errorf("applying %s to the snapshot: %T is not a Herald configuration kind", op, obj)
	}
	return s, nil
}

// replace returns a new slice: items without the one named like obj, plus obj unless del.
func replace[T any, PT interface {
	*T
	client.Object
}](items []T, obj PT, del bool) []T {
	out := make([]T, 0, len(items)+1)
	for i := range items {
		if PT(&items[i]).GetName() != obj.GetName() {
			out = append(out, items[i])
		}
	}
	if !del {
		out = append(out, *obj)
	}
	return out
}

// Subject identifies the object under review.
type Subject struct {
	Kind, Namespace, Name string
}

func (s Subject) String() string { return s.Kind + " " + s.Namespace + "/" + s.Name }

// Verdict is what a change brings to the configuration: the errors that refuse it, and the
// warnings (references to pools or peers that do not exist) returned with it when it is allowed.
type Verdict struct {
	Errors   config.Errors
	Warnings config.Errors
}

// Check returns the problems a change brings: every error and warning of the configuration after
// the change about the object under review (unless it is being deleted), and every other one
// that before did not have. Problems that existed before the change and do not concern the object
// under review are not held against it, so that a broken configuration (made with the webhook
// off, or by a Secret the webhook does not see) can be repaired one object at a time. Problems
// are compared by kind, object, field and value, not by message, since messages list the names
// that exist.
//
// The configuration after the change is read with config.ParseUsable, the objects in force
// before the change as last good configuration: in a conflict between the object under review
// and objects that were in force, the error is the changed object's, as the controller and the
// speakers will see it. Dangling references are warnings, so that deleting a whole configuration
// in one command, or creating a pool and its advertisement in any order, passes.
//
// A delete is never refused for the configuration it leaves behind (a BFD profile that peers
// still use, say): what it breaks in the other objects comes back as warnings, and the controller
// reports it on their Valid condition. What a delete really breaks, addresses in use, is
// Released's.
func Check(before, after config.Snapshot, subject Subject, op Operation) Verdict {
	inForce, was := config.ParseUsable(before, nil)
	_, now := config.ParseUsable(after, inForce)
	v := Verdict{
		Errors:   newProblems(was.Errors, now.Errors, subject, op),
		Warnings: newProblems(was.Warnings, now.Warnings, subject, op),
	}
	if op == Delete {
		v.Warnings = append(v.Errors, v.Warnings...)
		v.Errors = nil
	}
	return v
}

// Review returns the errors of Check: the problems that refuse the change.
func Review(before, after config.Snapshot, subject Subject, op Operation) config.Errors {
	return Check(before, after, subject, op).Errors
}

// newProblems returns the problems of after about the subject (unless deleted) and those before
// did not have.
func newProblems(before, after config.Errors, subject Subject, op Operation) config.Errors {
	old := map[string]bool{}
	for _, e := range before {
		old[errorKey(e)] = true
	}
	var out config.Errors
	for _, e := range after {
		own := e.Kind == subject.Kind && e.Name == subject.Name && e.Namespace == subject.Namespace
		if (own && op != Delete) || !old[errorKey(e)] {
			out = append(out, e)
		}
	}
	return out
}

func errorKey(e *config.FieldError) string {
	return strings.Join([]string{e.Kind, e.Namespace, e.Name, e.Field, e.Value}, "\x00")
}

// ServiceRef names a Service that holds addresses of a pool.
type ServiceRef struct {
	Namespace, Name string
	// Why: the addresses it holds and why they would be released.
	Why string
}

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Name + " (" + r.Why + ")" }

// Released returns the Services, sorted, whose addresses changing pool from old to updated
// releases; updated is nil when the pool is deleted. An address is released when old's ranges
// hold it and updated's do not, when updated skips it (avoidBuggyIPs: IPv4 addresses ending in .0
// or .255), or when updated's serviceAllocation no longer selects the Service that holds it, as
// the controller's allocator decides. Only Services that inCharge accepts (Herald's
// load-balancer class) count; nsLabels returns the labels of a namespace. Addresses of old that
// do not parse are ignored, and an updated pool that is itself invalid releases nothing here
// (Review refuses it).
func Released(old, updated *v1beta1.IPAddressPool, services []corev1.Service, nsLabels func(string) map[string]string,
	inCharge func(*corev1.Service) bool) []ServiceRef {
	oldRanges := parseRanges(old.Spec.Addresses)
	var next *config.Pool
	if updated != nil {
		cfg, err := config.Parse(config.Snapshot{Pools: []v1beta1.IPAddressPool{*updated}})
		if err != nil {
			return nil
		}
		next = cfg.Pools[updated.Name]
	}
	var out []ServiceRef
	for i := range services {
		svc := &services[i]
		if inCharge != nil && !inCharge(svc) {
			continue
		}
		var held, why []string
		addrs, _ := v1beta1.IngressIPs(svc) // an entry that is no address holds nothing
		for _, ip := range addrs {
			ip = ip.Unmap()
			if !slices.ContainsFunc(oldRanges, func(r config.Range) bool { return r.Contains(ip) }) {
				continue
			}
			reason := releaseReason(next, updated == nil, ip, svc, nsLabels)
			if reason == "" {
				continue
			}
			held = append(held, ip.String())
			if !slices.Contains(why, reason) {
				why = append(why, reason)
			}
		}
		if len(held) > 0 {
			out = append(out, ServiceRef{Namespace: svc.Namespace, Name: svc.Name,
				Why: "holds " + strings.Join(held, ", ") + ": " + strings.Join(why, "; ")})
		}
	}
	slices.SortFunc(out, func(a, b ServiceRef) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// releaseReason says why the pool next (deleted when gone) no longer lets svc keep ip, an address
// of the pool before the change; empty when it does.
func releaseReason(next *config.Pool, gone bool, ip netip.Addr, svc *corev1.Service, nsLabels func(string) map[string]string) string {
	switch {
	case gone:
		return "the pool is deleted"
	case next == nil:
		return ""
	case !slices.ContainsFunc(next.Ranges, func(r config.Range) bool { return r.Contains(ip) }):
		return "no longer in spec.addresses"
	case next.AvoidBuggyIPs && ip.Is4() && (ip.As4()[3] == 0 || ip.As4()[3] == 255):
		return "skipped by spec.avoidBuggyIPs"
	}
	var ns map[string]string
	if nsLabels != nil {
		ns = nsLabels(svc.Namespace)
	}
	if !next.Allocation.Selects(svc.Namespace, ns, svc.Labels) {
		return "spec.serviceAllocation no longer selects the Service"
	}
	return ""
}

// parseRanges returns the ranges of the addresses that parse.
func parseRanges(addrs []string) []config.Range {
	var out []config.Range
	for _, a := range addrs {
		if r, err := config.ParseAddresses(a); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// ReferencedSecrets returns the names of the Secrets the peers of s reference, sorted, without
// duplicates.
func ReferencedSecrets(s config.Snapshot) []string {
	var out []string
	for i := range s.Peers {
		if ref := s.Peers[i].Spec.PasswordSecret; ref != nil && ref.Name != "" {
			out = append(out, ref.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// DeleteWarnings returns what deleting subject breaks or leaves dangling in the other objects of
// the configuration (a pool that advertisements still name, a BFD profile that peers still use),
// to be returned as admission warnings.
func DeleteWarnings(before, after config.Snapshot, subject Subject) config.Errors {
	return Check(before, after, subject, Delete).Warnings
}
