package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
)

// RouterAddrs returns the router's segment addresses (IPv4 first).
func (l *Lab) RouterAddrs() []netip.Addr {
	var out []netip.Addr
	rt := l.Topo.NodesWithRole(RoleRouter)[0]
	for _, want4 := range []bool{true, false} {
		if p, ok := l.Topo.Addr(rt, l.Plan.SegmentIface, want4); ok {
			out = append(out, p.Addr())
		}
	}
	return out
}

// ConfigObjects returns Herald's lab configuration: the two pools, an L2Advertisement for the
// layer-2 pool, a BGPAdvertisement for the BGP pool, and one BGPPeer per router address.
func (l *Lab) ConfigObjects() []client.Object {
	ns := HeraldNamespace
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }
	objs := []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: meta(L2PoolName), Spec: v1beta1.IPAddressPoolSpec{Addresses: slices.Clone(l.Plan.L2Pool)}},
		&v1beta1.IPAddressPool{ObjectMeta: meta(BGPPoolName), Spec: v1beta1.IPAddressPoolSpec{Addresses: slices.Clone(l.Plan.BGPPool)}},
		&v1beta1.L2Advertisement{ObjectMeta: meta(L2AdvName), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{L2PoolName}}},
		&v1beta1.BGPAdvertisement{ObjectMeta: meta(BGPAdvName), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{BGPPoolName}}},
	}
	for _, a := range l.RouterAddrs() {
		name := PeerV4Name
		if a.Is6() {
			name = PeerV6Name
		}
		objs = append(objs, &v1beta1.BGPPeer{ObjectMeta: meta(name), Spec: v1beta1.BGPPeerSpec{
			MyASN:         l.Plan.NodeASN,
			PeerASN:       l.Plan.RouterASN,
			PeerAddress:   a.String(),
			HoldTime:      &metav1.Duration{Duration: l.Plan.Hold},
			KeepaliveTime: &metav1.Duration{Duration: l.Plan.Keepalive},
			ConnectTime:   &metav1.Duration{Duration: 2 * time.Second},
		}})
	}
	return objs
}

// ApplyConfig creates Herald's lab configuration (ConfigObjects).
func (l *Lab) ApplyConfig(ctx context.Context) error {
	for _, o := range l.ConfigObjects() {
		if err := l.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// WaitBGPSessions waits until the router has n established sessions (two per node when the
// router has an IPv4 and an IPv6 address).
func (l *Lab) WaitBGPSessions(ctx context.Context, n int) error {
	_, err := l.Router.WaitEstablished(ctx, n)
	return err
}

// ServiceSpec describes a lab Service: type LoadBalancer, TCP, backed by the node backends.
type ServiceSpec struct {
	Namespace, Name string
	// Pool is the herald.dev/address-pool annotation ("": none).
	Pool string
	// Families of the Service: [IPv4] when empty; two families make it RequireDualStack.
	Families []corev1.IPFamily
	// Port of the Service (80 when 0).
	Port int32
	// Local sets externalTrafficPolicy Local.
	Local bool
	// EndpointNodes carry the Service's endpoints (every node when nil).
	EndpointNodes []string
	// Annotations are added to the Service.
	Annotations map[string]string
	// Labels are added to the Service.
	Labels map[string]string
	// LoadBalancerClass, when set, is the Service's spec.loadBalancerClass.
	LoadBalancerClass string
}

// FamilyPolicy returns the IP families of a Service (IPv4 when fams is empty) and its IP family
// policy: SingleStack for one family, RequireDualStack for two.
func FamilyPolicy(fams []corev1.IPFamily) ([]corev1.IPFamily, corev1.IPFamilyPolicy) {
	if len(fams) == 0 {
		fams = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	policy := corev1.IPFamilyPolicySingleStack
	if len(fams) > 1 {
		policy = corev1.IPFamilyPolicyRequireDualStack
	}
	return fams, policy
}

// CreateService creates the Service and its EndpointSlices.
func (l *Lab) CreateService(ctx context.Context, s ServiceSpec) (*corev1.Service, error) {
	fams, policy := FamilyPolicy(s.Families)
	port := s.Port
	if port == 0 {
		port = 80
	}
	ann := map[string]string{}
	for k, v := range s.Annotations {
		ann[k] = v
	}
	if s.Pool != "" {
		ann[v1beta1.AnnotationAddressPool] = s.Pool
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Annotations: ann, Labels: s.Labels},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			IPFamilies:     fams,
			IPFamilyPolicy: &policy,
			Selector:       map[string]string{"app": s.Name},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(l.Plan.BackendPort),
			}},
		},
	}
	if s.LoadBalancerClass != "" {
		svc.Spec.LoadBalancerClass = &s.LoadBalancerClass
	}
	if s.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if err := l.Client.Create(ctx, svc); err != nil {
		return nil, fmt.Errorf("creating service %s/%s: %w", s.Namespace, s.Name, err)
	}
	nodes := s.EndpointNodes
	if nodes == nil {
		for _, n := range l.Nodes {
			nodes = append(nodes, n.Name)
		}
	}
	if err := l.SetEndpoints(ctx, svc, nodes); err != nil {
		return nil, err
	}
	return svc, nil
}

// SetEndpoints creates or replaces the Service's EndpointSlices (one per family) so that its
// ready endpoints are the backends of the given nodes.
func (l *Lab) SetEndpoints(ctx context.Context, svc *corev1.Service, nodes []string) error {
	for _, fam := range svc.Spec.IPFamilies {
		at := discoveryv1.AddressTypeIPv4
		if fam == corev1.IPv6Protocol {
			at = discoveryv1.AddressTypeIPv6
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: svc.Namespace,
				Name:      fmt.Sprintf("%s-%s", svc.Name, strings.ToLower(string(fam))),
				Labels: map[string]string{
					discoveryv1.LabelServiceName: svc.Name,
					discoveryv1.LabelManagedBy:   "herald-lab",
				},
			},
			AddressType: at,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(l.Plan.BackendPort)}},
		}
		for _, name := range nodes {
			n, ok := l.Node(name)
			if !ok {
				return fmt.Errorf("no lab node %q", name)
			}
			a := n.V4
			if fam == corev1.IPv6Protocol {
				a = n.V6
			}
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{a.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				NodeName:   ptr.To(name),
			})
		}
		err := l.Client.Create(ctx, es)
		if apierrors.IsAlreadyExists(err) {
			var cur discoveryv1.EndpointSlice
			if err = l.Client.Get(ctx, client.ObjectKeyFromObject(es), &cur); err == nil {
				cur.Endpoints, cur.Ports = es.Endpoints, es.Ports
				err = l.Client.Update(ctx, &cur)
			}
		}
		if err != nil {
			return fmt.Errorf("writing endpoint slice %s/%s: %w", es.Namespace, es.Name, err)
		}
	}
	return nil
}

// NewNamespace creates a Kubernetes namespace with a generated name.
func (l *Lab) NewNamespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := l.Client.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("creating namespace: %w", err)
	}
	return ns.Name, nil
}

// IngressIPs returns the Service's load-balancer IPs.
func IngressIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// WaitIngress waits until the Service has n load-balancer IPs and returns them (IPv4 first).
func (l *Lab) WaitIngress(ctx context.Context, namespace, name string, n int) ([]netip.Addr, error) {
	var last []netip.Addr
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		var svc corev1.Service
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &svc); err != nil {
			return false, nil //nolint:nilerr // keep polling until the deadline
		}
		last = IngressIPs(&svc)
		return len(last) >= n, nil
	})
	if err != nil {
		return nil, l.withHerald(fmt.Errorf("waiting for %d load-balancer IPs on %s/%s (have %v): %w", n, namespace, name, last, err))
	}
	slices.SortFunc(last, func(a, b netip.Addr) int {
		if a.Is4() != b.Is4() {
			if a.Is4() {
				return -1
			}
			return 1
		}
		return a.Compare(b)
	})
	return last, nil
}

// L2Owners returns the nodes named by the ServiceL2Status objects of a Service.
func (l *Lab) L2Owners(ctx context.Context, namespace, name string) ([]string, error) {
	var list v1beta1.ServiceL2StatusList
	if err := l.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing ServiceL2Status: %w", err)
	}
	return statusNodes(list.Items, namespace, name, func(s v1beta1.ServiceL2Status) (string, string, string) {
		return s.Status.ServiceNamespace, s.Status.ServiceName, s.Status.Node
	}), nil
}

// BGPNodes returns the nodes named by the ServiceBGPStatus objects of a Service.
func (l *Lab) BGPNodes(ctx context.Context, namespace, name string) ([]string, error) {
	var list v1beta1.ServiceBGPStatusList
	if err := l.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing ServiceBGPStatus: %w", err)
	}
	return statusNodes(list.Items, namespace, name, func(s v1beta1.ServiceBGPStatus) (string, string, string) {
		return s.Status.ServiceNamespace, s.Status.ServiceName, s.Status.Node
	}), nil
}

// statusNodes returns, sorted and once each, the nodes that items name for the Service namespace/name.
func statusNodes[T any](items []T, namespace, name string, fields func(T) (ns, svc, node string)) []string {
	var out []string
	for _, it := range items {
		if ns, svc, node := fields(it); ns == namespace && svc == name && node != "" {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// WarningEvents returns the Warning events about the object kind/namespace/name.
func (l *Lab) WarningEvents(ctx context.Context, kind, namespace, name string) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := l.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e)
		}
	}
	return out, nil
}
