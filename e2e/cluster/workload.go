package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// BackendPort is the port the backend pods listen on.
const BackendPort = 8080

// Backend describes a Deployment of backend pods (e2e/cmd/labbackend: every reply names the node
// the pod runs on, and the X-Herald-Pod header the pod).
type Backend struct {
	Namespace, Name string
	Replicas        int32
	// OnePerNode forbids two of its pods on one node (required anti-affinity on the hostname), so
	// the nodes that carry pods follow the replica count.
	OnePerNode bool
	// NodeSelector limits the nodes its pods run on.
	NodeSelector map[string]string
}

// CreateBackend creates the Deployment; pods are labelled app=<name>.
func (c *Cluster) CreateBackend(ctx context.Context, b Backend) (*appsv1.Deployment, error) {
	labels := map[string]string{"app": b.Name}
	pod := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To(int64(2)),
		NodeSelector:                  b.NodeSelector,
		Containers: []corev1.Container{{
			Name:            "backend",
			Image:           BackendImage,
			ImagePullPolicy: corev1.PullNever,
			Args:            []string{"-listen=:" + strconv.Itoa(BackendPort), "-name=$(NODE_NAME)", "-pod=$(POD_NAME)"},
			Env: []corev1.EnvVar{
				{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: BackendPort}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(BackendPort)}},
				PeriodSeconds: 1,
			},
		}},
	}
	if b.OnePerNode {
		pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(b.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
		},
	}
	if err := c.Client.Create(ctx, d); err != nil {
		return nil, fmt.Errorf("creating deployment %s/%s: %w", b.Namespace, b.Name, err)
	}
	return d, nil
}

// Scale sets the replica count of a Deployment.
func (c *Cluster) Scale(ctx context.Context, namespace, name string, replicas int32) error {
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := c.Clientset.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling %s/%s to %d: %w", namespace, name, replicas, err)
	}
	return nil
}

// ReadyPodNodes returns, sorted, the nodes running a ready pod labelled app=<app>.
func (c *Cluster) ReadyPodNodes(ctx context.Context, namespace, app string) ([]string, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{"app": app}); err != nil {
		return nil, fmt.Errorf("listing pods of %s/%s: %w", namespace, app, err)
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out = append(out, p.Spec.NodeName)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// WaitReadyPods waits until exactly n pods labelled app=<app> are ready (and none is terminating)
// and returns their nodes.
func (c *Cluster) WaitReadyPods(ctx context.Context, namespace, app string, n int) ([]string, error) {
	var last string
	var nodes []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var pods corev1.PodList
		if err := c.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{"app": app}); err != nil {
			last = err.Error()
			return false, nil
		}
		ready, total := 0, len(pods.Items)
		nodes = nodes[:0]
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready++
				nodes = append(nodes, p.Spec.NodeName)
			}
		}
		last = fmt.Sprintf("%d of %d pods ready", ready, total)
		return ready == n && total == n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %d ready pods of %s/%s (%s): %w\n%s", n, namespace, app, last, err, c.PodSummary(context.WithoutCancel(ctx)))
	}
	slices.Sort(nodes)
	return nodes, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// LBService describes a LoadBalancer Service in front of a Backend.
type LBService struct {
	Namespace, Name string
	// App selects the backend pods (app=<App>).
	App string
	// Pool is the herald.dev/address-pool annotation.
	Pool string
	// Families: [IPv4] when empty; two make it RequireDualStack.
	Families []corev1.IPFamily
	// Local sets externalTrafficPolicy: Local.
	Local bool
}

// CreateLBService creates the Service, port 80 to the backends' port.
func (c *Cluster) CreateLBService(ctx context.Context, s LBService) (*corev1.Service, error) {
	fams, policy := lab.FamilyPolicy(s.Families)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			IPFamilies:     fams,
			IPFamilyPolicy: &policy,
			Selector:       map[string]string{"app": s.App},
			Ports:          []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(BackendPort)}},
		},
	}
	if s.Pool != "" {
		svc.Annotations[v1beta1.AnnotationAddressPool] = s.Pool
	}
	if s.Local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if err := c.Client.Create(ctx, svc); err != nil {
		return nil, fmt.Errorf("creating service %s/%s: %w", s.Namespace, s.Name, err)
	}
	return svc, nil
}

// SpeakerPIDs returns the host pids of the herald-speaker processes running in node's network
// namespace (its speaker container: the speaker runs with hostNetwork).
func (c *Cluster) SpeakerPIDs(node string) ([]int, error) {
	n := c.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no cluster node %q", node)
	}
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+n.NetNS, &want); err != nil {
		return nil, fmt.Errorf("reading the namespace of %s: %w", node, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmd), "/herald-speaker\x00") {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st); err != nil {
			continue
		}
		if st.Ino == want.Ino && st.Dev == want.Dev {
			out = append(out, pid)
		}
	}
	return out, nil
}

// KillSpeaker sends SIGKILL to the speaker process of node (kill -9 of its container's process;
// the kubelet then restarts the container).
func (c *Cluster) KillSpeaker(node string) error {
	pids, err := c.SpeakerPIDs(node)
	if err != nil {
		return err
	}
	if len(pids) != 1 {
		return fmt.Errorf("want one herald-speaker process in node %s, found %v", node, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing the speaker of %s (pid %d): %w", node, pids[0], err)
	}
	return nil
}

// SpeakerThrottling returns how long the speaker containers of all nodes have been held back by
// their CPU limit (throttled_time of their cpu cgroups), so far.
func (c *Cluster) SpeakerThrottling() (time.Duration, error) {
	var total time.Duration
	for _, n := range c.Nodes {
		pids, err := c.SpeakerPIDs(n.Name)
		if err != nil {
			return 0, err
		}
		if len(pids) != 1 {
			return 0, fmt.Errorf("want one speaker process in %s, found %v", n.Name, pids)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pids[0]))
		if err != nil {
			return 0, err
		}
		path := ""
		for _, line := range strings.Split(string(cg), "\n") {
			// hierarchy-id:controllers:path; cpu may share a hierarchy with cpuacct
			f := strings.SplitN(line, ":", 3)
			if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpu") {
				path = f[2]
			}
		}
		if path == "" {
			return 0, fmt.Errorf("no cpu cgroup for the speaker of %s", n.Name)
		}
		stat, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", path, "cpu.stat"))
		if err != nil {
			return 0, fmt.Errorf("reading the speaker's cpu.stat on %s: %w", n.Name, err)
		}
		for _, line := range strings.Split(string(stat), "\n") {
			if v, ok := strings.CutPrefix(line, "throttled_time "); ok {
				ns, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total, nil
}

// EndpointStorm makes services LoadBalancer Services in namespace (IPv6, layer-2 pool,
// externalTrafficPolicy Local, no selector) with one EndpointSlice each naming an endpoint on
// every node, then writes those slices updates times, round robin, each time changing which
// nodes' endpoints are ready: every write changes which nodes may announce the Service. It
// returns the number of writes made.
func (c *Cluster) EndpointStorm(ctx context.Context, namespace string, services, updates int) (int, error) {
	policy := corev1.IPFamilyPolicySingleStack
	eps := make([]*discoveryv1.EndpointSlice, services)
	for i := range services {
		name := fmt.Sprintf("storm-%d", i)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: map[string]string{v1beta1.AnnotationAddressPool: lab.L2PoolName}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}, IPFamilyPolicy: &policy,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
				Ports:                 []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(BackendPort)}},
			},
		}
		if err := c.Client.Create(ctx, svc); err != nil {
			return 0, fmt.Errorf("creating service %s: %w", name, err)
		}
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "herald-lab",
			}},
			AddressType: discoveryv1.AddressTypeIPv6,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(BackendPort))}},
		}
		for j, n := range c.Nodes {
			addr := n.PodV6.Addr().As16()
			addr[15] = byte(0xf0 + i%16)
			addr[14] = byte(j)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{netip.AddrFrom16(addr).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				NodeName:   ptr.To(n.Name),
			})
		}
		if err := c.Client.Create(ctx, es); err != nil {
			return 0, fmt.Errorf("creating endpoint slice %s: %w", name, err)
		}
		eps[i] = es
	}
	done := 0
	for k := range updates {
		es := eps[k%services]
		// Pattern k: node j's endpoint is ready when bit j of (k/services+1) is set, so at least
		// one node is always ready and the set changes every round.
		mask := k/services%7 + 1
		for j := range es.Endpoints {
			es.Endpoints[j].Conditions.Ready = ptr.To(mask&(1<<j) != 0)
			es.Endpoints[j].Conditions.Serving = es.Endpoints[j].Conditions.Ready
		}
		if err := c.Client.Update(ctx, es); err != nil {
			return done, fmt.Errorf("updating endpoint slice %s (write %d): %w", es.Name, k, err)
		}
		done++
	}
	return done, nil
}

// WaitEndpointNodes waits until the EndpointSlices of Service namespace/name have ready endpoints
// on exactly the given nodes: a pod is ready before kube-controller-manager writes it into a slice,
// and Herald elects the owner of an externalTrafficPolicy Local IP from the slices.
func (c *Cluster) WaitEndpointNodes(ctx context.Context, namespace, name string, nodes []string) error {
	want := slices.Sorted(slices.Values(nodes))
	var last []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		var list discoveryv1.EndpointSliceList
		if err := c.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
			return false, nil
		}
		last = last[:0]
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
					last = append(last, *ep.NodeName)
				}
			}
		}
		slices.Sort(last)
		last = slices.Compact(last)
		return slices.Equal(last, want), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for ready endpoints of %s/%s on %v (on %v): %w", namespace, name, want, last, err)
	}
	return nil
}
