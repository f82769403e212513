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

// AllocatedFromPoolAnnotation is written by the controller on a Service: the pool its
// addresses come from.
const AllocatedFromPoolAnnotation = "herald.dev/ip-allocated-from-pool"

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
func Check(before, after config.Snapshot, subject Subject, op Operation) Verdict {
	inForce, was := config.ParseUsable(before, nil)
	_, now := config.ParseUsable(after, inForce)
	return Verdict{
		Errors:   newProblems(was.Errors, now.Errors, subject, op),
		Warnings: newProblems(was.Warnings, now.Warnings, subject, op),
	}
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
	// Why: the addresses of the pool it holds, or the allocation annotation.
	Why string
}

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Name + " (" + r.Why + ")" }

// PoolUsers returns the Services, sorted, that hold addresses of pool: those whose
// status.loadBalancer.ingress IPs fall in the pool's addresses (only Services that inCharge
// accepts, that is of Herald's load-balancer class), and those whose AllocatedFromPoolAnnotation
// names the pool. Addresses of the pool that do not parse are ignored.
func PoolUsers(pool *v1beta1.IPAddressPool, services []corev1.Service, inCharge func(*corev1.Service) bool) []ServiceRef {
	var ranges []config.Range
	for _, a := range pool.Spec.Addresses {
		if r, err := config.ParseAddresses(a); err == nil {
			ranges = append(ranges, r)
		}
	}
	var out []ServiceRef
	for i := range services {
		svc := &services[i]
		var held []string
		if inCharge == nil || inCharge(svc) {
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				ip, err := netip.ParseAddr(ing.IP)
				if err != nil {
					continue
				}
				if slices.ContainsFunc(ranges, func(r config.Range) bool { return r.Contains(ip.Unmap()) }) {
					held = append(held, ip.String())
				}
			}
		}
		switch {
		case len(held) > 0:
			out = append(out, ServiceRef{Namespace: svc.Namespace, Name: svc.Name, Why: "holds " + strings.Join(held, ", ")})
		case svc.Annotations[AllocatedFromPoolAnnotation] == pool.Name:
			out = append(out, ServiceRef{Namespace: svc.Namespace, Name: svc.Name, Why: AllocatedFromPoolAnnotation + "=" + pool.Name})
		}
	}
	slices.SortFunc(out, func(a, b ServiceRef) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
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
