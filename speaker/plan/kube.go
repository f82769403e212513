package plan

import (
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/election"
)

// This file turns Kubernetes objects into the plan's and the election's inputs, the same way for
// the speaker and for clients that explain its decisions (kubectl herald).

// Endpoints is what the plan needs of a Service's EndpointSlices.
type Endpoints struct {
	// ReadyNodes are the sorted nodes with a ready endpoint.
	ReadyNodes []string
	// Usable is true when some endpoint, with or without a node, is ready, or serving while it
	// terminates (kube-proxy falls back to those when no endpoint is ready).
	Usable bool
}

// EndpointsByService maps "namespace/service" to the endpoints of its EndpointSlices.
func EndpointsByService(items []discoveryv1.EndpointSlice) map[string]*Endpoints {
	sets := map[string]map[string]bool{}
	out := map[string]*Endpoints{}
	for _, es := range items {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := es.Namespace + "/" + svc
		e := out[key]
		if e == nil {
			e = &Endpoints{}
			out[key] = e
			sets[key] = map[string]bool{}
		}
		for _, ep := range es.Endpoints {
			c := ep.Conditions
			ready := c.Ready == nil || *c.Ready
			if ready || (c.Serving != nil && *c.Serving) {
				e.Usable = true
			}
			if !ready || ep.NodeName == nil || *ep.NodeName == "" {
				continue
			}
			sets[key][*ep.NodeName] = true
		}
	}
	for k, set := range sets {
		out[k].ReadyNodes = slices.Sorted(maps.Keys(set))
	}
	return out
}

// ServiceFromKube describes a Service of type LoadBalancer to the plan, with its endpoints from
// EndpointsByService. It reports false when the Service has no IP in its status (nothing to
// announce). Which Services a speaker handles (type, load-balancer class) is the caller's choice.
func ServiceFromKube(s *corev1.Service, eps map[string]*Endpoints) (Service, bool) {
	key := s.Namespace + "/" + s.Name
	ips, _ := v1beta1.IngressIPs(s) // an entry that is no address is skipped; the controller reports it
	return ServiceOf(key, s.Labels, s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal, ips, eps[key])
}

// ServiceOf describes the Service key to the plan from what the plan reads of it: its labels,
// whether its external traffic policy is Local, the IPs in its status and its endpoints (nil:
// it has no EndpointSlice). It reports false when the Service has no IP.
func ServiceOf(key string, labels map[string]string, local bool, ips []netip.Addr, e *Endpoints) (Service, bool) {
	if len(ips) == 0 {
		return Service{Key: key, Labels: labels, LocalTraffic: local}, false
	}
	ps := Service{Key: key, Labels: labels, LocalTraffic: local, IPs: ips}
	if e != nil {
		ps.ReadyEndpointNodes, ps.NoEndpoints = e.ReadyNodes, !e.Usable
	} else {
		ps.NoEndpoints = true
	}
	return ps, true
}

// NodeFromKube returns the election's facts about a Node that the API server holds: name,
// labels, Ready and NetworkUnavailable. The speaker-only facts (Alive, Interfaces) are left for
// the caller.
func NodeFromKube(n *corev1.Node) election.Node {
	en := election.Node{Name: n.Name, Labels: n.Labels}
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			en.Ready = c.Status == corev1.ConditionTrue
		case corev1.NodeNetworkUnavailable:
			en.NetworkUnavailable = c.Status == corev1.ConditionTrue
		}
	}
	return en
}
