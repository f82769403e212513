package inspect

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
)

const ns = "herald-system"

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func om(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

// baseConfig: pool l2 (layer 2), pool bgp (BGP to peer tor), pool dark (no advertisement).
func baseConfig() config.Snapshot {
	return config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: om("l2"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119", "2001:db8:1::/120"}}},
			{ObjectMeta: om("bgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}}},
			{ObjectMeta: om("dark"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.160/28"}}},
		},
		L2Advertisements:  []v1beta1.L2Advertisement{{ObjectMeta: om("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: om("bgp"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}}}},
		Peers:             []v1beta1.BGPPeer{{ObjectMeta: om("tor"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}}},
	}
}

func node(name string, mods ...func(*corev1.Node)) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, m := range mods {
		m(&n)
	}
	return n
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }

func service(name string, ips ...string) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-shop-" + name)}}
	s.Spec.Type = corev1.ServiceTypeLoadBalancer
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func local(s corev1.Service) corev1.Service {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	return s
}

// endpoints is an EndpointSlice of the Service with a ready endpoint on each node.
func endpoints(svc string, nodes ...string) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for _, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return es
}

func l2Status(node, svc string, conflicts ...v1beta1.L2Conflict) v1beta1.ServiceL2Status {
	return v1beta1.ServiceL2Status{ObjectMeta: om(node + "-" + svc), Status: v1beta1.ServiceL2StatusStatus{
		Node: node, ServiceNamespace: "shop", ServiceName: svc, Interfaces: []v1beta1.InterfaceInfo{{Name: "eth0"}}, Conflicts: conflicts}}
}

func bgpStatus(node, svc string, peers ...string) v1beta1.ServiceBGPStatus {
	return v1beta1.ServiceBGPStatus{ObjectMeta: om(node + "-" + svc), Status: v1beta1.ServiceBGPStatusStatus{
		Node: node, ServiceNamespace: "shop", ServiceName: svc, Peers: peers}}
}

func session(node, peer, state, lastErr string) v1beta1.BGPSessionStatus {
	return v1beta1.BGPSessionStatus{ObjectMeta: om(node + "-" + peer), Status: v1beta1.BGPSessionStatusStatus{
		Node: node, Peer: peer, PeerAddress: "198.51.100.1", State: state, LastError: lastErr}}
}

func event(svc, reason, msg string, ago time.Duration) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", Name: svc + "." + reason},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: "shop", Name: svc, UID: types.UID("uid-shop-" + svc)},
		Reason:         reason, Message: msg, LastTimestamp: metav1.NewTime(now.Add(-ago)),
	}
}

func cluster(mods ...func(*Cluster)) *Cluster {
	c := &Cluster{Namespace: ns, Snapshot: baseConfig(), Now: now,
		Nodes:          []corev1.Node{node("n1"), node("n2"), node("n3")},
		EndpointSlices: []discoveryv1.EndpointSlice{endpoints("web", "n1"), endpoints("api", "n1", "n2")},
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

// ipSummary is what a test checks of an IP.
type ipSummary struct {
	Service  string
	IP       string
	Pool     string
	Modes    []string
	Answered bool
	Problem  string
}

func summarize(r StatusReport) []ipSummary {
	var out []ipSummary
	for _, s := range r.Services {
		if s.Pending != "" {
			out = append(out, ipSummary{Service: s.Namespace + "/" + s.Name, Problem: "pending: " + s.Pending})
		}
		for _, ip := range s.IPs {
			out = append(out, ipSummary{Service: s.Namespace + "/" + s.Name, IP: ip.IP, Pool: ip.Pool, Modes: ip.Modes, Answered: ip.Answered, Problem: ip.Problem})
		}
	}
	return out
}

func TestStatus(t *testing.T) {
	l2 := []string{ModeLayer2}
	bgp := []string{ModeBGP}
	tests := []struct {
		name     string
		cluster  *Cluster
		want     []ipSummary
		problems int
	}{
		{
			name: "layer 2 answered, BGP answered",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.101"), service("api", "198.51.100.193")}
				c.L2Statuses = []v1beta1.ServiceL2Status{l2Status("n2", "web")}
				c.BGPStatuses = []v1beta1.ServiceBGPStatus{bgpStatus("n1", "api", "tor"), bgpStatus("n2", "api", "tor")}
				c.Sessions = []v1beta1.BGPSessionStatus{session("n1", "tor", "Established", ""), session("n2", "tor", "Active", "connection refused")}
			}),
			want: []ipSummary{
				{Service: "shop/api", IP: "198.51.100.193", Pool: "bgp", Modes: bgp, Answered: true},
				{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2, Answered: true},
			},
		},
		{
			name: "no advertisement covers the pool: the speakers' words",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.161")}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.161", Pool: "dark",
				Problem: `not answered: no L2Advertisement or BGPAdvertisement announces pool "dark" for this Service`}},
			problems: 1,
		},
		{
			name: "IP in no pool",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "203.0.113.9")}
			}),
			want:     []ipSummary{{Service: "shop/web", IP: "203.0.113.9", Problem: "not answered: 203.0.113.9 is in no IPAddressPool"}},
			problems: 1,
		},
		{
			name: "no ready endpoint anywhere",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("db", "198.51.100.102")}
			}),
			want: []ipSummary{{Service: "shop/db", IP: "198.51.100.102", Pool: "l2",
				Problem: "not answered: the Service has no ready endpoint, so traffic to it would be dropped; it is announced again as soon as one is ready"}},
			problems: 1,
		},
		{
			name: "no eligible node: NotReady, excluded, NetworkUnavailable",
			cluster: cluster(func(c *Cluster) {
				c.Nodes = []corev1.Node{
					node("n1", notReady),
					node("n2", func(n *corev1.Node) { n.Labels[election.ExcludeFromLBLabel] = "" }),
					node("n3", func(n *corev1.Node) {
						n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue})
					}),
				}
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2,
				Problem: `not answered: no node is eligible to announce 198.51.100.101 of pool "l2" (layer 2: n1: the Node is not Ready; ` +
					"n2: the Node has the label node.kubernetes.io/exclude-from-external-load-balancers; n3: the Node is NetworkUnavailable)"}},
			problems: 1,
		},
		{
			name: "Local traffic: the node with the endpoint is not Ready",
			cluster: cluster(func(c *Cluster) {
				c.Nodes = []corev1.Node{node("n1", notReady), node("n2"), node("n3")}
				c.Services = []corev1.Service{local(service("web", "198.51.100.193"))}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.193", Pool: "bgp", Modes: bgp,
				Problem: `not answered: no node is eligible to announce 198.51.100.193 of pool "bgp" (BGP: n2, n3: no ready endpoint of shop/web on it ` +
					"(externalTrafficPolicy: Local); n1: the Node is not Ready)"}},
			problems: 1,
		},
		{
			name: "not selected by the advertisement",
			cluster: cluster(func(c *Cluster) {
				c.Snapshot.L2Advertisements[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"lb": "yes"}}}
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2,
				Problem: `not answered: no node is eligible to announce 198.51.100.101 of pool "l2" (layer 2: n1, n2, n3: not selected by the nodeSelectors of l2 (announcing shop/web))`}},
			problems: 1,
		},
		{
			name: "eligible as far as the API shows, but silent: speaker-only facts, with the speakers' event",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
				c.Events = []corev1.Event{
					event("web", ReasonNotAnnounced, "198.51.100.101 is assigned but not announced: no node is eligible (layer 2: n1, n2, n3: its speaker is not a live memberlist member)", 30*time.Second),
					event("web", ReasonNotAnnounced, "an older one", time.Hour),
				}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2,
				Problem: "not answered: n1, n2, n3 may announce it as far as the API server shows, yet no speaker does; " + speakerOnlyNote +
					". The speakers said (30s ago): 198.51.100.101 is assigned but not announced: no node is eligible (layer 2: n1, n2, n3: its speaker is not a live memberlist member)"}},
			problems: 1,
		},
		{
			name: "speaker Pods known: a node without a ready speaker is not eligible",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
				c.SpeakerPods = map[string]SpeakerPod{"n1": {Name: "herald-speaker-a", State: "CrashLoopBackOff"}, "n2": {Name: "herald-speaker-b", State: "Pending"}}
				c.Nodes = []corev1.Node{node("n1"), node("n2"), node("n3", notReady)}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2,
				Problem: `not answered: no node is eligible to announce 198.51.100.101 of pool "l2" (layer 2: n1, n2: no ready speaker Pod on it; n3: no ready speaker Pod on it and the Node is not Ready)`}},
			problems: 1,
		},
		{
			name: "BGP: advertised, but no session Established",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("api", "198.51.100.193")}
				c.BGPStatuses = []v1beta1.ServiceBGPStatus{bgpStatus("n1", "api", "tor")}
				c.Sessions = []v1beta1.BGPSessionStatus{session("n1", "tor", "Active", "dial tcp 198.51.100.1:179: connect: connection refused")}
			}),
			want: []ipSummary{{Service: "shop/api", IP: "198.51.100.193", Pool: "bgp", Modes: bgp,
				Problem: "not answered: advertised by n1, but no BGP session is Established: n1/tor Active (dial tcp 198.51.100.1:179: connect: connection refused)"}},
			problems: 1,
		},
		{
			name: "layer 2 conflict: the owner yielded to a foreign host",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
				c.L2Statuses = []v1beta1.ServiceL2Status{l2Status("n2", "web", v1beta1.L2Conflict{IP: "198.51.100.101", Interface: "eth0", MAC: "02:00:00:00:00:99", Action: v1beta1.L2ConflictYielded})}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2,
				Problem: "not answered: address conflict: a host that is not a Herald speaker (MAC 02:00:00:00:00:99) claims it too, seen by node n2 on eth0, which stopped answering"}},
			problems: 1,
		},
		{
			name: "layer 2 split brain: answered, still a problem",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("web", "198.51.100.101")}
				c.L2Statuses = []v1beta1.ServiceL2Status{l2Status("n2", "web", v1beta1.L2Conflict{IP: "198.51.100.101", Interface: "eth0", MAC: "02:00:00:00:00:01", Node: "n1", Action: v1beta1.L2ConflictKept})}
			}),
			want: []ipSummary{{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2, Answered: true,
				Problem: "address conflict: the speaker of node n1 (split brain: the speakers do not see each other in memberlist) (MAC 02:00:00:00:00:01) claims it too, seen by node n2 on eth0, which keeps answering"}},
			problems: 1,
		},
		{
			name: "pending: the controller's event",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("big")}
				c.Events = []corev1.Event{event("big", ReasonAllocationFailed, "no available address in pool l2", 5*time.Minute)}
			}),
			want:     []ipSummary{{Service: "shop/big", Problem: "pending: AllocationFailed: no available address in pool l2 (5m ago)"}},
			problems: 1,
		},
		{
			name: "pending without event",
			cluster: cluster(func(c *Cluster) {
				c.Services = []corev1.Service{service("big")}
			}),
			want:     []ipSummary{{Service: "shop/big", Problem: "pending: no IP assigned and no AllocationFailed event: is herald-controller running (kubectl get pods -n herald-system)?"}},
			problems: 1,
		},
		{
			name: "invalid configuration: the speakers' status still shows who answers",
			cluster: cluster(func(c *Cluster) {
				c.Snapshot.L2Advertisements[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"bad key!": "x"}}}
				c.Services = []corev1.Service{service("web", "198.51.100.101"), service("api", "198.51.100.193")}
				c.L2Statuses = []v1beta1.ServiceL2Status{l2Status("n2", "web")}
			}),
			want: []ipSummary{
				// The configuration of api is valid: its reason is its own.
				{Service: "shop/api", IP: "198.51.100.193", Pool: "bgp", Modes: []string{"bgp"}, Problem: "not answered: n1, n2, n3 may announce it as far as the API server shows, yet no speaker does; " +
					"what keeps them from it is known only to the speakers: not a memberlist member (speaker not running, or port 7946 blocked), not ready (no valid configuration yet), " +
					"or no interface up to answer on; see the speakers' logs and herald_speaker_* metrics"},
				// The L2Advertisement is invalid here, but the speakers still answer with its last valid version.
				{Service: "shop/web", IP: "198.51.100.101", Pool: "l2", Modes: l2, Answered: true},
			},
			problems: 2,
		},
		{
			name: "another load-balancer class is not Herald's",
			cluster: cluster(func(c *Cluster) {
				other := service("other")
				other.Spec.LoadBalancerClass = ptr.To("example.com/lb")
				c.Services = []corev1.Service{other, {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "clusterip"}}}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Status(tt.cluster, StatusOptions{})
			if diff := cmp.Diff(tt.want, summarize(r)); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
			if r.Problems != tt.problems {
				t.Errorf("Problems = %d, want %d", r.Problems, tt.problems)
			}
		})
	}
}

// Every node's verdict as far as the API server shows, and the layer-2 owner of each IP of a
// dual-stack Service whose IPs two nodes answer for.
func TestStatusNodesAndOwners(t *testing.T) {
	c := cluster(func(c *Cluster) {
		c.Nodes = []corev1.Node{node("n1"), node("n2"), node("n3", notReady)}
		c.Services = []corev1.Service{service("web", "198.51.100.101", "2001:db8:1::5")}
	})
	// The owners the election picks among n1 and n2; each reports the Service.
	r0 := Status(c, StatusOptions{})
	own4, own6 := r0.Services[0].IPs[0].Layer2.ExpectedOwner, r0.Services[0].IPs[1].Layer2.ExpectedOwner
	if own4 == "" || own6 == "" {
		t.Fatalf("no expected owner: %+v", r0.Services[0].IPs)
	}
	c.L2Statuses = []v1beta1.ServiceL2Status{l2Status(own4, "web")}
	if own6 != own4 {
		c.L2Statuses = append(c.L2Statuses, l2Status(own6, "web"))
	}
	r := Status(c, StatusOptions{Namespace: "shop", Service: "web"})
	if r.Problems != 0 {
		t.Errorf("Problems = %d, want 0: %+v", r.Problems, r)
	}
	ips := r.Services[0].IPs
	if ips[0].Layer2.Owner != own4 || ips[1].Layer2.Owner != own6 {
		t.Errorf("owners = %q, %q; want %q, %q", ips[0].Layer2.Owner, ips[1].Layer2.Owner, own4, own6)
	}
	want := []NodeReport{
		{Node: "n1", Eligible: true},
		{Node: "n2", Eligible: true},
		{Node: "n3", Reasons: []NodeReason{{Cause: election.CauseNodeNotReady, Message: "the Node is not Ready"}}},
	}
	if diff := cmp.Diff(want, ips[0].Layer2.Nodes); diff != "" {
		t.Errorf("node verdicts (-want +got):\n%s", diff)
	}

	if got := Status(c, StatusOptions{Namespace: "shop", Service: "nope"}); len(got.Services) != 0 {
		t.Errorf("a Service that does not exist: %+v", got.Services)
	}
}

func TestStatusTable(t *testing.T) {
	c := cluster(func(c *Cluster) {
		c.Services = []corev1.Service{service("web", "198.51.100.101"), service("api", "198.51.100.193"), service("dark", "198.51.100.161"), service("big")}
		c.EndpointSlices = append(c.EndpointSlices, endpoints("dark", "n1"))
		c.L2Statuses = []v1beta1.ServiceL2Status{l2Status("n2", "web")}
		c.BGPStatuses = []v1beta1.ServiceBGPStatus{bgpStatus("n1", "api", "tor"), bgpStatus("n2", "api", "tor")}
		c.Sessions = []v1beta1.BGPSessionStatus{session("n1", "tor", "Established", ""), session("n2", "tor", "Established", "")}
		c.Events = []corev1.Event{event("big", ReasonAllocationFailed, "no available address", 90*time.Second)}
	})
	var b bytes.Buffer
	if err := Status(c, StatusOptions{}).WriteTable(&b, true, false); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE   NAME   IP               POOL     MODE     ANNOUNCED BY   STATUS         EXPECTED OWNER   SESSIONS                                CONFLICTS
shop        api    198.51.100.193   bgp      bgp      n1,n2 to tor   OK             <none>           n1/tor=Established,n2/tor=Established   <none>
shop        big    <pending>        <none>   <none>   <none>         PENDING        <none>           <none>                                  <none>
shop        dark   198.51.100.161   dark     <none>   <none>         NOT ANSWERED   <none>           <none>                                  <none>
shop        web    198.51.100.101   l2       layer2   n2 on eth0     OK             ` + expectedOwner(t, c, "198.51.100.101") + `               <none>                                  <none>

shop/big: pending: AllocationFailed: no available address (1m30s ago)
shop/dark 198.51.100.161: not answered: no L2Advertisement or BGPAdvertisement announces pool "dark" for this Service
`
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(b.String(), "\n")); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}

	b.Reset()
	if err := Status(c, StatusOptions{Namespace: "shop", Service: "api"}).WriteTable(&b, false, true); err != nil {
		t.Fatal(err)
	}
	want = `NAMESPACE   NAME   IP               POOL   MODE   ANNOUNCED BY   STATUS
shop        api    198.51.100.193   bgp    bgp    n1,n2 to tor   OK

shop/api 198.51.100.193, BGP (pool bgp):
  n1   eligible, advertising to tor Established
  n2   eligible, advertising to tor Established
  n3   eligible
`
	if diff := cmp.Diff(strings.Split(want, "\n"), strings.Split(b.String(), "\n")); diff != "" {
		t.Errorf("detail (-want +got):\n%s", diff)
	}
}

func expectedOwner(t *testing.T, c *Cluster, ip string) string {
	t.Helper()
	for _, s := range Status(c, StatusOptions{}).Services {
		for _, i := range s.IPs {
			if i.IP == ip && i.Layer2 != nil {
				return i.Layer2.ExpectedOwner
			}
		}
	}
	t.Fatalf("no layer-2 IP %s", ip)
	return ""
}
