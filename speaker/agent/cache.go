package agent

import (
	"slices"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/kube/client"
)

// SecretSelector selects the Secrets the speaker reads: those labelled
// v1beta1.LabelSpeakerSecret=true (the memberlist key, BGP passwords). Every other Secret of
// Herald's namespace, such as the webhook's CA key, stays out of the speaker's memory.
func SecretSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue})
}

// CacheOptions are the cache options of the speaker of node: Herald's configuration and status
// objects of namespace only, and of its Secrets only those SecretSelector selects. Nodes are
// cached cluster-wide, trimmed to what the speaker reads (TrimNode). Of ServiceBGPStatus and
// BGPSessionStatus only node's own are cached (LabelNode=node): every node writes one
// ServiceBGPStatus per BGP Service, so caching all of them would grow with nodes times Services;
// the sweep of dead speakers' objects deletes them by label on the API server instead. The
// ServiceBGPStatus objects share one label map (nodeLabels). Every object loses its managedFields.
// Services and EndpointSlices are not cached: reflectors put them into the agent's model
// (store.go); nor are the ServiceL2Status objects, which a reflector puts into the agent's compact
// store (l2store.go).
func CacheOptions(namespace, node string) cache.Options {
	inNS := func(tf toolscache.TransformFunc) cache.ByObject {
		return cache.ByObject{Namespace: namespace, Transform: tf}
	}
	mine := func(tf toolscache.TransformFunc) cache.ByObject {
		b := inNS(tf)
		b.Label = labels.SelectorFromSet(labels.Set{LabelNode: node})
		return b
	}
	shared := &nodeLabels{}
	peer := func(in any) (any, error) {
		if o, ok := in.(client.Object); ok {
			TrimPeerStatus(o, node)
			shared.share(o)
		}
		return in, nil
	}
	by := map[client.Object]cache.ByObject{
		&corev1.Node{}:              {Transform: trim(TrimNode)},
		&corev1.Secret{}:            {Namespace: namespace, Label: SecretSelector()},
		&v1beta1.ServiceBGPStatus{}: mine(peer), &v1beta1.BGPSessionStatus{}: mine(peer),
	}
	for _, o := range kube.ConfigKinds() {
		by[o] = inNS(nil)
	}
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: by}
}

// What the speaker keeps of the objects it reads cluster-wide. A speaker runs on every node and
// reads every Service, EndpointSlice and Node of the cluster: with 10,000 Services, the fields it
// never reads (ports, selectors, cluster IPs, endpoint addresses, node images and capacity,
// annotations and managedFields) would be most of its memory. Nodes are cached trimmed; the
// trimmed Services and EndpointSlices are only what a reflector's temporary store holds while it
// streams the first list (store.go), before the model keeps its records of them.

// trim makes a cache transform of a function that trims one kind in place. Objects of other
// types (a DeletedFinalStateUnknown tombstone) pass unchanged.
func trim[T any](f func(*T)) toolscache.TransformFunc {
	return func(in any) (any, error) {
		if o, ok := in.(*T); ok {
			f(o)
		}
		return in, nil
	}
}

// trimMeta keeps the identity of an object (for events and cache keys), its labels and whether it
// is being deleted. Its namespace and label keys are interned (see internMeta).
func trimMeta(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp,
	}
	internMeta(m)
}

// intern returns the one copy of s that every cached object shares. The decoder gives each object
// its own copy of every string; a namespace, a label key or a node name is the same in thousands
// of objects. Only strings that repeat are interned (names and UIDs would only add to the table).
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// internMeta interns an object's namespace and label keys, and the values of the labels that
// name a node or a namespace.
func internMeta(m *metav1.ObjectMeta) {
	m.Namespace = intern(m.Namespace)
	if len(m.Labels) == 0 {
		return
	}
	labels := make(map[string]string, len(m.Labels))
	for k, v := range m.Labels {
		if k == LabelNode || k == LabelServiceNamespace {
			v = intern(v)
		}
		labels[intern(k)] = v
	}
	m.Labels = labels
}

// TrimService keeps what the speaker reads of a Service: its type and class, its traffic policy
// and the IPs in its status.
func TrimService(s *corev1.Service) {
	trimMeta(&s.ObjectMeta)
	if c := s.Spec.LoadBalancerClass; c != nil {
		*c = intern(*c)
	}
	s.Spec = corev1.ServiceSpec{Type: corev1.ServiceType(intern(string(s.Spec.Type))), LoadBalancerClass: s.Spec.LoadBalancerClass,
		ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicy(intern(string(s.Spec.ExternalTrafficPolicy)))}
	ingress := make([]corev1.LoadBalancerIngress, 0, len(s.Status.LoadBalancer.Ingress))
	for _, ing := range s.Status.LoadBalancer.Ingress {
		ingress = append(ingress, corev1.LoadBalancerIngress{IP: ing.IP})
	}
	s.Status = corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}}
}

// TrimEndpointSlice keeps what the speaker reads of an EndpointSlice: the Service it belongs to
// (a label) and, of each endpoint, its node and conditions, once for each different node and
// conditions (a slice of 100 endpoints on 10 nodes keeps about 10).
func TrimEndpointSlice(es *discoveryv1.EndpointSlice) {
	trimMeta(&es.ObjectMeta)
	es.AddressType = discoveryv1.AddressType(intern(string(es.AddressType)))
	es.Ports = nil
	seen := make(map[endpointView]bool, len(es.Endpoints))
	kept := make([]discoveryv1.Endpoint, 0, len(es.Endpoints))
	for _, ep := range es.Endpoints {
		v := endpointView{Ready: tri(ep.Conditions.Ready), Serving: tri(ep.Conditions.Serving), Terminating: tri(ep.Conditions.Terminating)}
		if ep.NodeName != nil {
			*ep.NodeName = intern(*ep.NodeName)
			v.Node = *ep.NodeName
		}
		if seen[v] {
			continue
		}
		seen[v] = true
		kept = append(kept, discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: ep.Conditions})
	}
	if len(kept) == 0 {
		kept = nil
	}
	es.Endpoints = slices.Clip(kept)
}

// TrimPeerStatus trims a status object (ServiceBGPStatus, BGPSessionStatus) that another node's
// speaker wrote to its identity and labels. The objects of node itself keep their status, their
// repeated strings interned: its status writer compares them with what it wants. Other nodes' BGP
// status objects are not cached at all (see CacheOptions); the trim is there in case a cache is
// made without the selector.
func TrimPeerStatus(o client.Object, node string) {
	if o.GetLabels()[LabelNode] == node {
		// The status writer compares their status, never their managedFields (which the
		// object-specific transform would otherwise keep: about 0.5 KB an object).
		o.SetManagedFields(nil)
		internStatus(o)
		return
	}
	switch st := o.(type) {
	case *v1beta1.ServiceBGPStatus:
		trimMeta(&st.ObjectMeta)
		st.Status = v1beta1.ServiceBGPStatusStatus{}
	case *v1beta1.BGPSessionStatus:
		trimMeta(&st.ObjectMeta)
		st.Status = v1beta1.BGPSessionStatusStatus{}
	}
}

// nodeLabels holds one label map per node, {LabelNode: node}, that the cached ServiceBGPStatus
// objects of that node share. Every such object carries three labels (node, Service name and
// namespace), and a Go map of three strings costs some 300 bytes: 3 MB per 10,000 objects. The
// cache's readers get copies, or read without writing (UnsafeDisableDeepCopy lists, event
// handlers), so the shared map is never changed.
type nodeLabels struct {
	mu     sync.Mutex
	byNode map[string]map[string]string
}

// share gives a ServiceBGPStatus that a speaker wrote (it has LabelNode) the
// label map of its node, in place of its own: the cache's selections by node (the status writer's
// list of this node's objects, the sweep's) still match, and of the other labels only the Service
// was read, which the status names too. The status is still empty just after the writer created
// the object; the Service is then copied into it from the labels (the writer's comparison still
// differs, the node and interfaces being unset). Other objects are left as they are.
func (n *nodeLabels) share(o client.Object) {
	st, ok := o.(*v1beta1.ServiceBGPStatus)
	if !ok {
		return
	}
	name, ns := &st.Status.ServiceName, &st.Status.ServiceNamespace
	l := o.GetLabels()
	node, ok := l[LabelNode]
	if !ok {
		return
	}
	if *name == "" && *ns == "" {
		*name, *ns = l[LabelServiceName], intern(l[LabelServiceNamespace])
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.byNode[node]
	if !ok {
		if n.byNode == nil {
			n.byNode = map[string]map[string]string{}
		}
		node = intern(node)
		m = map[string]string{intern(LabelNode): node}
		n.byNode[node] = m
	}
	o.SetLabels(m)
}

// internStatus interns the strings of one of this node's status objects that repeat from object
// to object (namespace, label keys, node, the Service's namespace); the Service's name in its
// status shares the label's. The content does not change.
func internStatus(o client.Object) {
	switch st := o.(type) {
	case *v1beta1.ServiceBGPStatus:
		internMeta(&st.ObjectMeta)
		st.Status.Node, st.Status.ServiceNamespace = intern(st.Status.Node), intern(st.Status.ServiceNamespace)
		if name := st.Labels[LabelServiceName]; name == st.Status.ServiceName {
			st.Status.ServiceName = name
		}
		for i := range st.Status.Peers {
			st.Status.Peers[i] = intern(st.Status.Peers[i])
		}
	case *v1beta1.BGPSessionStatus:
		internMeta(&st.ObjectMeta)
	}
}

// TrimNode keeps what the speaker reads of a Node: labels, spec, addresses and the conditions'
// types and states.
func TrimNode(n *corev1.Node) {
	trimMeta(&n.ObjectMeta)
	conds := make([]corev1.NodeCondition, 0, len(n.Status.Conditions))
	for _, c := range n.Status.Conditions {
		conds = append(conds, corev1.NodeCondition{Type: c.Type, Status: c.Status})
	}
	n.Status = corev1.NodeStatus{Addresses: n.Status.Addresses, Conditions: conds}
}
