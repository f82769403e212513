package agent

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
)

// The trimmed objects give the speaker exactly what the whole ones give: the plan's view of a
// Service and its endpoints, and the views that decide whether an update matters.
func TestTrimKeepsWhatTheSpeakerReads(t *testing.T) {
	now := metav1.Now()
	meta := metav1.ObjectMeta{Name: "web", Namespace: "app", UID: "u1", ResourceVersion: "7", Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{"big": string(make([]byte, 4096))}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Finalizers: []string{"f"}, OwnerReferences: []metav1.OwnerReference{{Name: "o"}}}
	svc := &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To("c"), ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}, ClusterIP: "10.0.0.1", HealthCheckNodePort: 31000,
	}, Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
		{IP: "198.51.100.10", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP), Ports: []corev1.PortStatus{{Port: 80}}}, {IP: "2001:db8::10"},
	}}}}
	es := &discoveryv1.EndpointSlice{ObjectMeta: *meta.DeepCopy(), AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.1"}, NodeName: ptr.To("n1"), Zone: ptr.To("z"), TargetRef: &corev1.ObjectReference{Name: "pod"},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}},
			{Addresses: []string{"10.1.0.2"}, NodeName: ptr.To("n2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true)}},
		}, Ports: []discoveryv1.EndpointPort{{Port: ptr.To(int32(8080))}}}
	es.Name, es.Labels = "web-x", map[string]string{discoveryv1.LabelServiceName: "web"}
	node := &corev1.Node{ObjectMeta: *meta.DeepCopy(), Spec: corev1.NodeSpec{PodCIDR: "10.2.0.0/24"}, Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "ok", LastHeartbeatTime: now}},
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.11"}},
		Images:     []corev1.ContainerImage{{Names: []string{"image"}, SizeBytes: 1}},
		Capacity:   corev1.ResourceList{corev1.ResourceCPU: {}},
	}}
	node.Name = "n1"

	handles := func(*service) bool { return true }
	plannedBy := func(s *corev1.Service, slices ...*discoveryv1.EndpointSlice) any {
		m := newModel()
		m.setService("app/web", s)
		for _, e := range slices {
			m.setSlice("app/"+e.Name, e)
		}
		return m.planServices([]string{"app/web"}, handles)["app/web"]
	}
	tsvc, tes, tnode := svc.DeepCopy(), es.DeepCopy(), node.DeepCopy()
	TrimService(tsvc)
	TrimEndpointSlice(tes)
	TrimNode(tnode)
	if diff := cmp.Diff(plannedBy(svc, es), plannedBy(tsvc, tes), planCmp); diff != "" {
		t.Errorf("the plan's view of a trimmed Service (-whole +trimmed):\n%s", diff)
	}
	if diff := cmp.Diff(viewOfSlice(es), viewOfSlice(tes)); diff != "" {
		t.Errorf("the view of a trimmed EndpointSlice (-whole +trimmed):\n%s", diff)
	}
	if diff := cmp.Diff(viewOfNode(node), viewOfNode(tnode)); diff != "" {
		t.Errorf("the view of a trimmed Node (-whole +trimmed):\n%s", diff)
	}
	for name, o := range map[string]metav1.Object{"Service": tsvc, "EndpointSlice": tes, "Node": tnode} {
		if len(o.GetAnnotations())+len(o.GetManagedFields())+len(o.GetFinalizers())+len(o.GetOwnerReferences()) > 0 || o.GetUID() == "" || o.GetResourceVersion() == "" {
			t.Errorf("trimmed %s keeps metadata it does not need, or lost its identity: %+v", name, o)
		}
	}
	if len(tsvc.Spec.Ports)+len(tes.Ports)+len(tnode.Status.Images) > 0 || tes.Endpoints[0].Addresses != nil || tnode.Status.Conditions[0].Message != "" {
		t.Error("trimmed objects keep fields the speaker does not read")
	}
}

// Another node's BGP status objects keep their identity and labels; this node's stay whole, for its
// status writer to compare with what it wants.
func TestTrimPeerStatus(t *testing.T) {
	meta := func(node string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "s-" + node, Namespace: "herald", UID: "u", ResourceVersion: "3",
			Labels:      map[string]string{LabelNode: node, LabelServiceName: "web", LabelServiceNamespace: "app"},
			Annotations: map[string]string{"a": "b"}, Finalizers: []string{"f"}}
	}
	bgp := func(node string) *v1beta1.ServiceBGPStatus {
		return &v1beta1.ServiceBGPStatus{ObjectMeta: meta(node), Status: v1beta1.ServiceBGPStatusStatus{
			Node: node, ServiceName: "web", ServiceNamespace: "app", Peers: []string{"tor"}}}
	}
	sess := func(node string) *v1beta1.BGPSessionStatus {
		return &v1beta1.BGPSessionStatus{ObjectMeta: meta(node), Status: v1beta1.BGPSessionStatusStatus{Node: node, Peer: "tor"}}
	}
	trimmedMeta := metav1.ObjectMeta{Name: "s-n2", Namespace: "herald", UID: "u", ResourceVersion: "3",
		Labels: map[string]string{LabelNode: "n2", LabelServiceName: "web", LabelServiceNamespace: "app"}}
	// As the API server gives them: with managedFields, which only the own objects' want lacks.
	managed := func(o client.Object) client.Object {
		o.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "herald-speaker", Operation: metav1.ManagedFieldsOperationUpdate,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:node":{}}}`)}}})
		return o
	}
	tests := []struct {
		name      string
		obj, want client.Object
	}{
		{name: "own ServiceBGPStatus keeps all but managedFields", obj: managed(bgp("n1")), want: bgp("n1")},
		{name: "own BGPSessionStatus keeps all but managedFields", obj: managed(sess("n1")), want: sess("n1")},
		{name: "peer ServiceBGPStatus keeps its identity", obj: bgp("n2"), want: &v1beta1.ServiceBGPStatus{ObjectMeta: trimmedMeta}},
		{name: "peer BGPSessionStatus keeps its identity", obj: sess("n2"), want: &v1beta1.BGPSessionStatus{ObjectMeta: trimmedMeta}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			TrimPeerStatus(tc.obj, "n1")
			if diff := cmp.Diff(tc.want, tc.obj); diff != "" {
				t.Errorf("trimmed object (-want +got):\n%s", diff)
			}
		})
	}
}

// The cached ServiceBGPStatus objects of one node share one label map, which
// the cache's selections by node still match; the Service they name is in their status, also
// when the writer has just created one with its status still empty. Other objects keep theirs.
func TestStatusObjectsShareTheirNodesLabels(t *testing.T) {
	labelsOf := func(node, svc string) map[string]string {
		return map[string]string{LabelNode: node, LabelServiceName: svc, LabelServiceNamespace: "app"}
	}
	written := func(node, svc string) *v1beta1.ServiceBGPStatus {
		return &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: node + "-" + svc, Namespace: "herald", Labels: labelsOf(node, svc)},
			Status: v1beta1.ServiceBGPStatusStatus{Node: node, ServiceName: svc, ServiceNamespace: "app"}}
	}
	justCreated := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "n1-db", Namespace: "herald", Labels: labelsOf("n1", "db")}}
	session := &v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: "n1-tor", Namespace: "herald",
		Labels: map[string]string{LabelNode: "n1", LabelPeer: "tor"}}}
	foreign := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "by-hand", Namespace: "herald", Labels: map[string]string{"team": "net"}}}
	// Not cached: a ServiceL2Status keeps its labels.
	l2 := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "n1-web-l2", Namespace: "herald", Labels: labelsOf("n1", "web")}}
	n1web, n1api, n2web := written("n1", "web"), written("n1", "api"), written("n2", "web")

	var shared nodeLabels
	for _, o := range []client.Object{n1web, n1api, n2web, justCreated, session, foreign, l2} {
		shared.share(o)
	}
	mapOf := func(o client.Object) uintptr { return reflect.ValueOf(o.GetLabels()).Pointer() }
	for _, o := range []client.Object{n1api, justCreated} {
		if mapOf(o) != mapOf(n1web) {
			t.Errorf("%s has a label map of its own, want n1's shared one", o.GetName())
		}
	}
	if mapOf(n2web) == mapOf(n1web) {
		t.Errorf("n2's object shares n1's label map")
	}
	mine := labels.SelectorFromSet(labels.Set{LabelNode: "n1"})
	for o, want := range map[client.Object]bool{n1web: true, justCreated: true, n2web: false} {
		if got := mine.Matches(labels.Set(o.GetLabels())); got != want {
			t.Errorf("selector %s matches %s: %v, want %v", mine, o.GetName(), got, want)
		}
	}
	if diff := cmp.Diff(v1beta1.ServiceBGPStatusStatus{ServiceName: "db", ServiceNamespace: "app"}, justCreated.Status); diff != "" {
		t.Errorf("status of an object created a moment ago (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(labelsOf("n1", "web"), l2.Labels); diff != "" {
		t.Errorf("a ServiceL2Status's labels changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(v1beta1.ServiceBGPStatusStatus{Node: "n1", ServiceName: "api", ServiceNamespace: "app"}, n1api.Status); diff != "" {
		t.Errorf("status of a written object changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{LabelNode: "n1", LabelPeer: "tor"}, session.Labels); diff != "" {
		t.Errorf("a BGPSessionStatus's labels changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"team": "net"}, foreign.Labels); diff != "" {
		t.Errorf("the labels of an object no speaker wrote changed (-want +got):\n%s", diff)
	}
}

// Trimmed objects share one copy of the strings that repeat from object to object (namespace,
// label keys, node names), and keep their content.
func TestTrimInternsRepeatedStrings(t *testing.T) {
	slice := func() *discoveryv1.EndpointSlice {
		// Strings built at run time, as the decoder builds them: each object has its own copy.
		ns, key, node := string([]byte("app")), string([]byte(discoveryv1.LabelServiceName)), string([]byte("n1"))
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-x", Namespace: ns, Labels: map[string]string{key: "web"}},
			AddressType: discoveryv1.AddressType(string([]byte("IPv4"))),
			Endpoints:   []discoveryv1.Endpoint{{NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}}}
	}
	bgp := func() *v1beta1.ServiceBGPStatus {
		node, ns := string([]byte("n1")), string([]byte("app"))
		return &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: string([]byte("herald")),
			Labels: map[string]string{string([]byte(LabelNode)): node, LabelServiceName: "web", LabelServiceNamespace: ns}},
			Status: v1beta1.ServiceBGPStatusStatus{Node: string([]byte("n1")), ServiceName: string([]byte("web")), ServiceNamespace: string([]byte("app"))}}
	}
	a, b := slice(), slice()
	want := slice()
	TrimEndpointSlice(a)
	TrimEndpointSlice(b)
	if diff := cmp.Diff(viewOfSlice(want), viewOfSlice(a)); diff != "" {
		t.Errorf("the view of an interned slice (-want +got):\n%s", diff)
	}
	same := func(what, x, y string) {
		t.Helper()
		if unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: two copies of %q, want one shared", what, x)
		}
	}
	same("namespace", a.Namespace, b.Namespace)
	same("address type", string(a.AddressType), string(b.AddressType))
	same("endpoint node", *a.Endpoints[0].NodeName, *b.Endpoints[0].NodeName)
	for k := range a.Labels {
		for k2 := range b.Labels {
			same("label key", k, k2)
		}
	}
	svc := func() *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "app"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceType(string([]byte("LoadBalancer"))), LoadBalancerClass: ptr.To(string([]byte("herald.dev/c"))),
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicy(string([]byte("Cluster")))}}
	}
	s1, s2, wantSvc := svc(), svc(), svc()
	TrimService(s1)
	TrimService(s2)
	if diff := cmp.Diff(wantSvc.Spec, s1.Spec); diff != "" {
		t.Errorf("interned Service spec (-want +got):\n%s", diff)
	}
	same("Service type", string(s1.Spec.Type), string(s2.Spec.Type))
	same("load-balancer class", *s1.Spec.LoadBalancerClass, *s2.Spec.LoadBalancerClass)
	same("traffic policy", string(s1.Spec.ExternalTrafficPolicy), string(s2.Spec.ExternalTrafficPolicy))
	x, y, wantBGP := bgp(), bgp(), bgp()
	TrimPeerStatus(x, "n1") // this node's own: whole, interned
	TrimPeerStatus(y, "n1")
	if diff := cmp.Diff(wantBGP, x); diff != "" {
		t.Errorf("own ServiceBGPStatus changed (-want +got):\n%s", diff)
	}
	same("status node", x.Status.Node, y.Status.Node)
	same("status node and label", x.Status.Node, x.Labels[LabelNode])
	same("Service namespace", x.Status.ServiceNamespace, y.Status.ServiceNamespace)
	same("Service name in status and label", x.Status.ServiceName, x.Labels[LabelServiceName])
}

// A slice of many endpoints on a few nodes keeps one endpoint for each node and conditions: the
// same view and the same plan as the whole slice, at a fraction of its size.
func TestTrimEndpointSliceKeepsOneEndpointPerNodeAndConditions(t *testing.T) {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-x", Namespace: "app", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}}
	for i := range 100 {
		node := []string{"n1", "n2", "n3"}[i%3]
		c := discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}
		switch {
		case i%10 == 0: // terminating and still serving
			c = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
		case i == 7: // no node
			c.Ready = ptr.To(false)
		}
		ep := discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.1.0.%d", i)}, Conditions: c}
		if i != 7 {
			ep.NodeName = ptr.To(node)
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	trimmed := es.DeepCopy()
	TrimEndpointSlice(trimmed)
	if diff := cmp.Diff(viewOfSlice(es), viewOfSlice(trimmed)); diff != "" {
		t.Errorf("the view of the trimmed slice (-whole +trimmed):\n%s", diff)
	}
	if diff := cmp.Diff(summarize(es), summarize(trimmed), cmp.AllowUnexported(sliceSummary{})); diff != "" {
		t.Errorf("the plan's summary of the trimmed slice (-whole +trimmed):\n%s", diff)
	}
	// n1, n2, n3 ready; n1, n2, n3 terminating; the endpoint without a node.
	if got := len(trimmed.Endpoints); got != 7 {
		t.Errorf("the trimmed slice keeps %d endpoints, want 7: %+v", got, trimmed.Endpoints)
	}
}

// sliceView is what the speaker reads of an EndpointSlice (TrimEndpointSlice keeps it): which
// Service it belongs to, and which nodes hold endpoints in which state (addresses, ports and
// targets are not read). The tests compare the views of trimmed and whole slices.
type sliceView struct {
	Labels    map[string]string
	Deleting  bool
	Endpoints map[endpointView]bool
}

func viewOfSlice(es *discoveryv1.EndpointSlice) sliceView {
	v := sliceView{Labels: es.Labels, Deleting: es.DeletionTimestamp != nil, Endpoints: map[endpointView]bool{}}
	for _, ep := range es.Endpoints {
		ev := endpointView{Ready: tri(ep.Conditions.Ready), Serving: tri(ep.Conditions.Serving), Terminating: tri(ep.Conditions.Terminating)}
		if ep.NodeName != nil {
			ev.Node = *ep.NodeName
		}
		v.Endpoints[ev] = true
	}
	return v
}
