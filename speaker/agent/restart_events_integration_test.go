package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kube/cache"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
	"github.com/herald-lb/herald/speaker/status"
)

// TestRestartedSpeakerWritesNoNodeAssignedAgain: a speaker that starts again on a node whose
// status objects say it announced a Service (layer 2) and advertised another (BGP) keeps those
// objects (before, its first computations, made before it was ready, deleted them and it wrote
// them anew) and takes the Services up without a NodeAssigned event (before, every restart wrote
// one per Service, and a DaemonSet rollout one per Service and node); a Service it starts
// announcing after that gets one.
func TestRestartedSpeakerWritesNoNodeAssignedAgain(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	node := "n1-" + hns
	// Its own load-balancer class: the other tests' Services (same addresses) are not this speaker's.
	class := "herald.dev/restart-" + hns
	mustCreate := func(o client.Object) {
		t.Helper()
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: hns} }
	createReadyNode(t, c, node)
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: meta("l2"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119"}}})
	mustCreate(&v1beta1.L2Advertisement{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}})
	mustCreate(&v1beta1.IPAddressPool{ObjectMeta: meta("bgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.192/28"}}})
	mustCreate(&v1beta1.BGPAdvertisement{ObjectMeta: meta("bgp"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}}})
	mustCreate(&v1beta1.BGPPeer{ObjectMeta: meta("tor"), Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}})
	svc := func(name, ip string) {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: &class, Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		mustCreate(s)
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		if err := c.Status().Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		createReadyEndpoint(t, c, app, name)
	}
	svc("web", "198.51.100.105")
	svc("api", "198.51.100.193")

	// run starts a speaker for node and waits until its first computation's events are out and
	// its status objects are written; stop ends it.
	run := func() (rec *record.FakeRecorder, stop func()) {
		ch, err := cache.New(testWatcher(t), cache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		j := &journal{members: []string{node}}
		rec = record.NewFakeRecorder(100)
		a, err := New(Options{
			NodeName: node, Namespace: hns, LBClass: class, Cache: ch, Client: testWatcher(t), Watcher: testWatcher(t), Recorder: rec,
			Members: fakeMembers{j: j, changes: make(chan struct{}, 8)}, L2: fakeL2{j}, BGP: fakeBGP{j},
			Links: newFakeLinks(oneInterface), Resync: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		go func() { _ = ch.Start(actx) }()
		done := make(chan error, 1)
		go func() { done <- a.Start(actx) }()
		// The writer holds a desired state only once the speaker is ready and reports: the events
		// of that computation are out.
		eventually(t, "the status writer to have written the speaker's first report", a.status.Idle)
		for _, st := range []struct {
			svc string
			obj client.Object
		}{{"web", &v1beta1.ServiceL2Status{}}, {"api", &v1beta1.ServiceBGPStatus{}}} {
			key := client.ObjectKey{Namespace: hns, Name: status.Name(node, app+"/"+st.svc)}
			eventually(t, "status object "+key.Name, func() bool { return c.Get(ctx, key, st.obj) == nil })
		}
		return rec, func() { cancel(); <-done }
	}
	assigned := func(rec *record.FakeRecorder) []string {
		var out []string
		for {
			select {
			case e := <-rec.Events:
				if strings.Contains(e, ReasonNodeAssigned) {
					out = append(out, e)
				}
			default:
				return out
			}
		}
	}

	rec, stop := run()
	first := assigned(rec)
	if len(first) != 2 {
		t.Fatalf("first start: NodeAssigned events %q, want one for web (layer 2) and one for api (BGP)", first)
	}
	uids := func() []string {
		var out []string
		for _, st := range []struct {
			svc string
			obj client.Object
		}{{"web", &v1beta1.ServiceL2Status{}}, {"api", &v1beta1.ServiceBGPStatus{}}} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: hns, Name: status.Name(node, app+"/"+st.svc)}, st.obj); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(st.obj.GetUID()))
		}
		return out
	}
	before := uids()
	stop()

	rec, stop = run()
	if after := uids(); !slices.Equal(after, before) {
		t.Errorf("restart: the status objects were written anew (UIDs %v, before %v), want them kept", after, before)
	}
	defer stop()
	if again := assigned(rec); len(again) != 0 {
		t.Errorf("restart: NodeAssigned events %q, want none: the status objects say this node announced both before", again)
	}
	svc("shop", "198.51.100.106")
	eventually(t, "a NodeAssigned event for a Service new after the restart", func() bool {
		for _, e := range assigned(rec) {
			if strings.Contains(e, "announcing 198.51.100.106 from node "+node) {
				return true
			}
		}
		return false
	})
}
