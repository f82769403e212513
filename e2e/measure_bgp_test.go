package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/lab"
)

// newPeerRuns and moveRuns are how many times the BGP figures below are measured.
const (
	newPeerRuns = 5
	moveRuns    = 6
)

// newPeerPool is the range of the pool measureNewPeer creates with each new BGPPeer: in the lab
// segment's upper half, outside the lab's pools and off the root namespace's routes.
const newPeerPool = "198.51.100.176/29"

// measureNewPeer measures bgp_new_peer_to_route_ms: the time from creating a BGPPeer, together
// with a pool, a BGPAdvertisement naming the peer and a Service of the pool, to the router's
// kernel route for the Service's IP via every node (every speaker has established the new
// session and advertised the route on it). The lab's IPv4 BGPPeer is removed first (a second
// session from a node to the same router address would collide with it) and restored at the
// end; the IPv6 sessions stay. Returns the durations of the runs.
func measureNewPeer(t *testing.T, ctx context.Context, l *lab.Lab) []time.Duration {
	t.Helper()
	var labPeer *v1beta1.BGPPeer
	for _, o := range l.ConfigObjects() {
		if p, ok := o.(*v1beta1.BGPPeer); ok && p.Name == lab.PeerV4Name {
			labPeer = p
		}
	}
	if labPeer == nil {
		t.Skip("the lab has no IPv4 BGPPeer")
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		restored := labPeer.DeepCopy()
		if err := l.Client.Create(ctx, restored); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("restoring BGPPeer %s: %v", labPeer.Name, err)
		}
		waitSessions(t, ctx, l)
	})
	must(t, client.IgnoreNotFound(l.Client.Delete(ctx, labPeer.DeepCopy())))
	must(t, waitNoIPv4Sessions(ctx, l))

	ns := newNamespace(t, l, "m-newpeer")
	all := l.NodeAddrs(true)
	var ds []time.Duration
	for i := range newPeerRuns {
		name := fmt.Sprintf("m-newpeer-%d", i)
		meta := metav1.ObjectMeta{Namespace: lab.HeraldNamespace, Name: name}
		spec := labPeer.Spec
		objs := []client.Object{
			&v1beta1.BGPPeer{ObjectMeta: meta, Spec: spec},
			&v1beta1.IPAddressPool{ObjectMeta: meta, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{newPeerPool}}},
			&v1beta1.BGPAdvertisement{ObjectMeta: meta, Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{name}, Peers: []string{name}}},
		}
		start := time.Now()
		for _, o := range objs {
			must(t, l.Client.Create(ctx, o))
		}
		created := time.Since(start)
		svc, err := l.CreateService(ctx, lab.ServiceSpec{Namespace: ns, Name: name, Pool: name, Families: []corev1.IPFamily{corev1.IPv4Protocol}})
		must(t, err)
		ips, err := l.WaitIngress(ctx, ns, name, 1)
		must(t, err)
		assigned := time.Since(start)
		seen, err := l.Router.WaitKernelNextHops(ctx, lab.HostPrefix(ips[0]), all, 2*time.Millisecond)
		if err != nil {
			t.Fatal(withHerald(err, l))
		}
		ds = append(ds, seen.Sub(start))
		t.Logf("run %d: BGPPeer %s created; route for %v via %v after %v (the objects were created after %v, the Service's IP seen after %v, polled every 50 ms)",
			i, name, ips[0], all, seen.Sub(start), created.Round(time.Millisecond), assigned.Round(time.Millisecond))

		must(t, l.Client.Delete(ctx, svc))
		for _, o := range slices.Backward(objs) {
			must(t, client.IgnoreNotFound(l.Client.Delete(ctx, o)))
		}
		must(t, waitNoIPv4Sessions(ctx, l))
		must(t, waitRoute(ctx, l, ips[0], nil))
	}
	return ds
}

// waitNoIPv4Sessions waits until the router has no Established session from a node's IPv4
// address.
func waitNoIPv4Sessions(ctx context.Context, l *lab.Lab) error {
	var up []string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		ns, err := l.Router.Neighbors(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		up = up[:0]
		for a, nb := range ns {
			if a.Is4() && nb.Established() {
				up = append(up, a.String())
			}
		}
		return len(up) == 0, nil
	})
	if err != nil {
		return withHerald(fmt.Errorf("waiting for the IPv4 sessions to close (still up: %v): %w", up, err), l)
	}
	return nil
}

// hopSample is the router's kernel next hops for a prefix at one moment.
type hopSample struct {
	at   time.Time
	hops []netip.Addr
}

// measureLocalMove measures bgp_local_endpoint_move_ms: the endpoint of an externalTrafficPolicy
// Local Service moves from one node to another (one EndpointSlice update), and the router's kernel
// route is followed as the kernel changes it (`ip monitor route`, no polling) until it goes via
// the new node only. It checks that the move is make-before-break: the new next hop is in the
// route before the old one leaves it (or, at the latest, in the same change), and the route never
// lacks both. Returns the durations of the moves.
func measureLocalMove(t *testing.T, ctx context.Context, l *lab.Lab) []time.Duration {
	t.Helper()
	ns := newNamespace(t, l, "m-move")
	nodes := []string{"n1", "n2", "n3"}
	svcSpec := lab.ServiceSpec{Namespace: ns, Name: "local", Pool: lab.BGPPoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}, Local: true, EndpointNodes: nodes[:1]}
	ip := service(t, ctx, l, svcSpec, 1)[0]
	must(t, waitRoute(ctx, l, ip, l.NodeAddrs(true, nodes[0])))
	svc := &corev1.Service{}
	must(t, l.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "local"}, svc))
	watch, err := l.Router.WatchKernelRoutes(ctx)
	must(t, err)
	defer watch.Stop()

	var ds []time.Duration
	for i := range moveRuns {
		from, to := nodes[i%3], nodes[(i+1)%3]
		oldHop, newHop := l.NodeAddrs(true, from)[0], l.NodeAddrs(true, to)[0]
		start := time.Now()
		samples := []hopSample{{at: start, hops: []netip.Addr{oldHop}}}
		must(t, l.SetEndpoints(ctx, svc, []string{to}))
		timeout := time.After(30 * time.Second)
	events:
		for {
			select {
			case ev, ok := <-watch.Events():
				if !ok {
					t.Fatal("the kernel route monitor ended")
				}
				if ev.Prefix != lab.HostPrefix(ip) {
					continue
				}
				samples = append(samples, hopSample{at: ev.At, hops: ev.Hops})
				if slices.Equal(ev.Hops, []netip.Addr{newHop}) {
					break events
				}
			case <-timeout:
				t.Fatal(withHerald(fmt.Errorf("route for %v did not move from %s to %s within 30 s: %s", ip, from, to, describeSamples(samples, start)), l))
			}
		}
		moved := samples[len(samples)-1].at.Sub(start)
		ds = append(ds, moved)
		t.Logf("move %d (%s -> %s) after %v: %s", i, from, to, moved, describeSamples(samples, start))
		if err := checkMakeBeforeBreak(samples, oldHop, newHop); err != nil {
			t.Errorf("move %d (%s -> %s): %v; kernel route changes: %s", i, from, to, err, describeSamples(samples, start))
		}
	}
	return ds
}

// checkMakeBeforeBreak checks that the samples go from old to new without a moment that lacks
// both, and that new is in the route no later than old leaves it.
func checkMakeBeforeBreak(samples []hopSample, old, new netip.Addr) error {
	newAt, oldGone := -1, -1
	for i, s := range samples {
		hasOld, hasNew := slices.Contains(s.hops, old), slices.Contains(s.hops, new)
		if !hasOld && !hasNew {
			return fmt.Errorf("the route lacked both %v and %v (via %v)", old, new, s.hops)
		}
		if hasNew && newAt < 0 {
			newAt = i
		}
		if !hasOld && oldGone < 0 {
			oldGone = i
		}
	}
	if newAt < 0 || oldGone >= 0 && newAt > oldGone {
		return fmt.Errorf("%v left the route before %v was in it", old, new)
	}
	return nil
}

// describeSamples lists the distinct next-hop sets of samples with when they were first seen.
func describeSamples(samples []hopSample, start time.Time) string {
	var parts []string
	var last []netip.Addr
	for i, s := range samples {
		if i > 0 && slices.Equal(s.hops, last) {
			continue
		}
		last = s.hops
		parts = append(parts, fmt.Sprintf("%v@%dms", s.hops, s.at.Sub(start).Milliseconds()))
	}
	return strings.Join(parts, " ")
}
