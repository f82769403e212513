package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli"
	"github.com/herald-lb/herald/cli/inspect"
	"github.com/herald-lb/herald/controller/service"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	os.Exit(testenv.Main(m, testenv.Options{}, &env))
}

// world is one test's cluster: Herald's namespace, a namespace for Services, a load-balancer
// class of its own, and Nodes removed at the end.
type world struct {
	t      *testing.T
	c      client.Client
	herald string
	ns     string
	class  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	testenv.Require(t, env)
	w := &world{t: t, c: env.Client, herald: env.NewNamespace(t, "herald"), ns: env.NewNamespace(t, "shop")}
	w.class = "herald.dev/" + w.ns
	return w
}

func (w *world) create(objs ...client.Object) {
	w.t.Helper()
	for _, o := range objs {
		if err := w.c.Create(context.Background(), o); err != nil {
			w.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// speakerStatus creates a status object as a speaker does: the object, then its status.
func (w *world) speakerStatus(objs ...client.Object) {
	w.t.Helper()
	for _, o := range objs {
		want := o.DeepCopyObject().(client.Object)
		w.create(o)
		want.SetResourceVersion(o.GetResourceVersion())
		if err := w.c.Status().Update(context.Background(), want); err != nil {
			w.t.Fatalf("writing the status of %T %s: %v", o, o.GetName(), err)
		}
	}
}

// startController runs herald-controller's Service controller in this process until the test ends.
func (w *world) startController() {
	w.t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Logger: logr.Discard(), Cache: service.CacheOptions(w.herald),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: crconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		w.t.Fatalf("creating manager: %v", err)
	}
	c, err := service.New(service.Options{Namespace: w.herald, LBClass: w.class, SkipNameValidation: true, PoolStatusInterval: 100 * time.Millisecond})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := c.SetupWithManager(mgr); err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("manager: %v", err)
		}
	})
}

// node creates a Node with the Ready condition given, removed at the end of the test.
func (w *world) node(name string, ready bool, labels map[string]string) {
	w.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	w.create(n)
	w.t.Cleanup(func() { _ = w.c.Delete(context.Background(), n) })
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "test"}}
	if err := w.c.Status().Update(context.Background(), n); err != nil {
		w.t.Fatalf("setting Node %s Ready=%v: %v", name, ready, err)
	}
}

func (w *world) service(name string, mods ...func(*corev1.Service)) {
	w.t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To(w.class), AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	w.create(s)
}

func annotate(k, v string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Annotations = map[string]string{k: v} }
}

// endpoints creates the Service's EndpointSlice with a ready endpoint on each node.
func (w *world) endpoints(svc string, nodes ...string) {
	w.t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: w.ns, Name: svc + "-eps", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.1.0.%d", i+1)}, NodeName: ptr.To(n),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	w.create(es)
}

// waitIP waits until the controller gave the Service an address.
func (w *world) waitIP(name string) string {
	w.t.Helper()
	var ip string
	w.eventually("Service "+name+" gets an address", func() bool {
		var s corev1.Service
		if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: name}, &s); err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return false
		}
		ip = s.Status.LoadBalancer.Ingress[0].IP
		return true
	})
	return ip
}

func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		w.t.Fatalf("%s: not within 20s", what)
	}
}

// run runs kubectl herald against the test's API server and returns its exit code and output.
func (w *world) run(args ...string) (int, string, string) {
	w.t.Helper()
	var out, errOut bytes.Buffer
	all := append([]string{}, args...)
	all = append(all, "--kubeconfig", env.Kubeconfig, "--herald-namespace", w.herald, "--lb-class", w.class)
	code := cli.Run(context.Background(), all, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func meta(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// TestStatusAndPools runs the real controller on the real API server, plays the speakers' part
// by writing their status objects, and checks what status and pools say, and their exit codes.
func TestStatusAndPools(t *testing.T) {
	w := newWorld(t)
	n1, n2, n3 := w.ns+"-n1", w.ns+"-n2", w.ns+"-n3"
	w.node(n1, true, nil)
	w.node(n2, true, nil)
	w.node(n3, false, nil)
	w.create(
		&v1beta1.IPAddressPool{ObjectMeta: meta(w.herald, "l2"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.101"}}},
		&v1beta1.IPAddressPool{ObjectMeta: meta(w.herald, "bgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}, AutoAssign: ptr.To(false)}},
		&v1beta1.IPAddressPool{ObjectMeta: meta(w.herald, "dark"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.160/28"}, AutoAssign: ptr.To(false)}},
		&v1beta1.L2Advertisement{ObjectMeta: meta(w.herald, "l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
		&v1beta1.BGPAdvertisement{ObjectMeta: meta(w.herald, "bgp"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}}},
		&v1beta1.BGPPeer{ObjectMeta: meta(w.herald, "tor"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}},
	)
	w.startController()

	// web: layer 2, answered by n2. api: BGP, Local, its only endpoint on the NotReady n3.
	// dark: a pool no advertisement covers. big: asks for an address outside every pool.
	w.service("web")
	w.service("api", annotate(v1beta1.AnnotationAddressPool, "bgp"), func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	w.service("dark", annotate(v1beta1.AnnotationAddressPool, "dark"))
	w.service("big", annotate(v1beta1.AnnotationLoadBalancerIPs, "203.0.113.7"))
	w.endpoints("web", n1)
	w.endpoints("api", n3)
	w.endpoints("dark", n1)
	webIP, apiIP, darkIP := w.waitIP("web"), w.waitIP("api"), w.waitIP("dark")
	w.speakerStatus(&v1beta1.ServiceL2Status{ObjectMeta: meta(w.herald, "web-"+n2), Status: v1beta1.ServiceL2StatusStatus{
		Node: n2, ServiceNamespace: w.ns, ServiceName: "web", Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0"}}}})
	// The controller's AllocationFailed event for big.
	w.eventually("AllocationFailed event on big", func() bool {
		var list corev1.EventList
		_ = w.c.List(context.Background(), &list, client.InNamespace(w.ns))
		for _, e := range list.Items {
			if e.InvolvedObject.Name == "big" && e.Reason == inspect.ReasonAllocationFailed {
				return true
			}
		}
		return false
	})

	code, out, errOut := w.run("status", "-o", "json")
	if code != cli.ExitProblems {
		t.Errorf("status exit code = %d, want %d (problems found); stderr: %s", code, cli.ExitProblems, errOut)
	}
	var rep inspect.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, s := range rep.Services {
		if s.Pending != "" {
			got[s.Name] = "pending: " + s.Pending
		}
		for _, ip := range s.IPs {
			got[s.Name] = fmt.Sprintf("%s pool=%s modes=%v answered=%v problem=%s", ip.IP, ip.Pool, ip.Modes, ip.Answered, ip.Problem)
		}
	}
	want := map[string]string{
		"web": webIP + " pool=l2 modes=[layer2] answered=true problem=",
		"api": apiIP + ` pool=bgp modes=[bgp] answered=false problem=not answered: no node is eligible to announce ` + apiIP + ` of pool "bgp" (BGP: ` +
			n1 + ", " + n2 + ": no ready endpoint of " + w.ns + "/api on it (externalTrafficPolicy: Local); " + n3 + ": the Node is not Ready)",
		"dark": darkIP + ` pool=dark modes=[] answered=false problem=not answered: no L2Advertisement or BGPAdvertisement announces pool "dark" for this Service`,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("status of %s:\n got %s\nwant %s", name, got[name], w)
		}
	}
	if !strings.HasPrefix(got["big"], "pending: AllocationFailed: ") || !strings.Contains(got["big"], "203.0.113.7") {
		t.Errorf("status of big = %q, want pending with the controller's AllocationFailed message about 203.0.113.7", got["big"])
	}
	if rep.Problems != 3 {
		t.Errorf("problems = %d, want 3 (api, dark, big)", rep.Problems)
	}

	// The table, and one Service with every node's verdict.
	code, out, _ = w.run("status")
	for _, line := range []string{
		fmt.Sprintf("%s/dark %s: not answered: no L2Advertisement or BGPAdvertisement announces pool \"dark\" for this Service", w.ns, darkIP),
		fmt.Sprintf("%s/big: pending: AllocationFailed: ", w.ns),
	} {
		if !strings.Contains(out, line) {
			t.Errorf("status table lacks %q:\n%s", line, out)
		}
	}
	if code != cli.ExitProblems {
		t.Errorf("status exit code = %d, want %d", code, cli.ExitProblems)
	}
	code, out, errOut = w.run("status", "-n", w.ns, "web")
	if code != cli.ExitOK {
		t.Errorf("status web exit code = %d, want 0; stderr %s\n%s", code, errOut, out)
	}
	for _, line := range []string{n1 + "   eligible", n2 + "   eligible, answering ARP/NDP on eth0", n3 + "   not eligible: the Node is not Ready"} {
		if !strings.Contains(out, line) {
			t.Errorf("status web lacks %q:\n%s", line, out)
		}
	}
	if code, _, errOut := w.run("status", "-n", w.ns, "nope"); code != cli.ExitError || !strings.Contains(errOut, "not found") {
		t.Errorf("status of a missing Service: exit %d, stderr %q; want 2 and not found", code, errOut)
	}

	// pools: the counts the controller wrote, and big pending with its reason.
	var pools inspect.PoolsReport
	w.eventually("pool status written by the controller", func() bool {
		_, out, _ := w.run("pools", "-o", "json")
		if err := json.Unmarshal([]byte(out), &pools); err != nil {
			return false
		}
		for _, p := range pools.Pools {
			if p.Name == "l2" && len(p.Families) == 1 && p.Families[0].Assigned == "1" && p.Families[0].Available == "1" {
				return true
			}
		}
		return false
	})
	if len(pools.Pending) != 1 || pools.Pending[0].Name != "big" || !strings.Contains(pools.Pending[0].Reason, "AllocationFailed") {
		t.Errorf("pending = %+v, want big with its AllocationFailed reason", pools.Pending)
	}
	code, out, _ = w.run("pools")
	if code != cli.ExitProblems || !strings.Contains(out, "1 Service(s) waiting for an address:") {
		t.Errorf("pools: exit %d, want 1, output:\n%s", code, out)
	}

	// Fix big: no problem left in pools; status still reports api and dark.
	var big corev1.Service
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "big"}, &big); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Delete(context.Background(), &big); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := w.run("pools"); code != cli.ExitOK {
		t.Errorf("pools without pending Services: exit %d, want 0:\n%s", code, out)
	}
}

// TestStatusSessionsAndConflicts: what the speakers report about BGP sessions and conflicts.
func TestStatusSessionsAndConflicts(t *testing.T) {
	w := newWorld(t)
	n1, n2 := w.ns+"-n1", w.ns+"-n2"
	w.node(n1, true, nil)
	w.node(n2, true, nil)
	w.create(
		&v1beta1.IPAddressPool{ObjectMeta: meta(w.herald, "mixed"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}}},
		&v1beta1.L2Advertisement{ObjectMeta: meta(w.herald, "l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"mixed"}}},
		&v1beta1.BGPAdvertisement{ObjectMeta: meta(w.herald, "bgp"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"mixed"}}},
		&v1beta1.BGPPeer{ObjectMeta: meta(w.herald, "tor"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}},
	)
	w.startController()
	w.service("web")
	w.endpoints("web", n1, n2)
	ip := w.waitIP("web")

	// The owner yielded to a foreign host, and BGP sessions are down: not answered.
	w.speakerStatus(
		&v1beta1.ServiceL2Status{ObjectMeta: meta(w.herald, "web-"+n1), Status: v1beta1.ServiceL2StatusStatus{Node: n1, ServiceNamespace: w.ns, ServiceName: "web",
			Conflicts: []v1beta1.L2Conflict{{IP: ip, Interface: "eth0", MAC: "02:00:5e:00:53:01", Action: v1beta1.L2ConflictYielded}}}},
		&v1beta1.ServiceBGPStatus{ObjectMeta: meta(w.herald, "web-bgp-"+n1), Status: v1beta1.ServiceBGPStatusStatus{Node: n1, ServiceNamespace: w.ns, ServiceName: "web", Peers: []string{"tor"}}},
		&v1beta1.BGPSessionStatus{ObjectMeta: meta(w.herald, n1+"-tor"), Status: v1beta1.BGPSessionStatusStatus{Node: n1, Peer: "tor", PeerAddress: "198.51.100.1", State: "Active", LastError: "connection refused"}},
	)
	code, out, _ := w.run("status", "-o", "wide")
	want := fmt.Sprintf("%s/web %s: not answered: address conflict: a host that is not a Herald speaker (MAC 02:00:5e:00:53:01) claims it too, seen by node %s on eth0, which stopped answering", w.ns, ip, n1)
	if code != cli.ExitProblems || !strings.Contains(out, want) || !strings.Contains(out, n1+"/tor=Active") {
		t.Errorf("status -o wide: exit %d, want 1; want %q and the session state in:\n%s", code, want, out)
	}

	// Once the session is established, BGP carries the IP: answered, the conflict still a problem.
	var ss v1beta1.BGPSessionStatus
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.herald, Name: n1 + "-tor"}, &ss); err != nil {
		t.Fatal(err)
	}
	ss.Status.State, ss.Status.LastError = "Established", ""
	if err := w.c.Status().Update(context.Background(), &ss); err != nil {
		t.Fatal(err)
	}
	code, out, _ = w.run("status", "-o", "yaml")
	if code != cli.ExitProblems || !strings.Contains(out, "answered: true") || !strings.Contains(out, "state: Established") || !strings.Contains(out, "action: Yielded") {
		t.Errorf("status -o yaml: exit %d, want 1, answered with the conflict:\n%s", code, out)
	}
}

// TestExitCodes: usage errors and an unreachable API server give 2.
func TestExitCodes(t *testing.T) {
	w := newWorld(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"unknown flag", []string{"status", "--frobnicate"}, "unknown flag"},
		{"bad output", []string{"status", "-o", "xml"}, `unknown output format "xml"`},
		{"too many arguments", []string{"status", "a", "b"}, "accepts at most 1 arg"},
		{"validate without files", []string{"validate"}, "no file given"},
		{"API server unreachable", []string{"status", "--server", "https://127.0.0.1:1", "--request-timeout", "5s"}, "reading Herald's configuration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := w.run(tt.args...)
			if code != cli.ExitError || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, cli.ExitError, tt.want)
			}
		})
	}
	// An empty Herald namespace: nothing wrong.
	if code, out, errOut := w.run("status"); code != cli.ExitOK {
		t.Errorf("status of an empty cluster: exit %d, stderr %s\n%s", code, errOut, out)
	}
	// validate on files does not need the API server.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pool.yaml"), []byte("apiVersion: herald.dev/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [192.0.2.0/24]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := w.run("validate", "-f", dir, "--server", "https://127.0.0.1:1"); code != cli.ExitOK || !strings.Contains(out, "valid") {
		t.Errorf("validate: exit %d, want 0:\n%s", code, out)
	}
}
