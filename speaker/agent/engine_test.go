package agent

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/plan"
	"github.com/herald-lb/herald/speaker/status"
)

var planCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func engineConfig(t *testing.T) *config.Config {
	t.Helper()
	agg := int32(30)
	cfg, err := config.Parse(config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/27"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.64/27"}}},
		},
		L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"},
			Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: "h"},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}, AggregationLength: &agg}}},
		Peers: []v1beta1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "tor", Namespace: "h"},
			Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEngineMatchesCompute changes random Services one at a time, shared IPs, endpoints, IPs in no
// pool and removals included, and checks after each change that the plan the engine keeps is the
// plan Compute makes from scratch, and that only the IPs of the changed Service were recomputed.
// Now and then the nodes change and everything is recomputed, as for a membership change.
func TestEngineMatchesCompute(t *testing.T) {
	cfg := engineConfig(t)
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"n1", "n2", "n3", "n4"}
	nodes := func() []election.Node {
		var out []election.Node
		for _, n := range names {
			// Now and then a speaker is not ready, or has no interface, or only one the default
			// rule does not choose: the election's readiness and interface rules.
			en := election.Node{Name: n, Alive: rng.IntN(5) != 0, SpeakerReady: rng.IntN(6) != 0, Ready: true,
				Interfaces: []string{"eth0"}, DefaultInterfaces: []string{"eth0"}}
			switch rng.IntN(12) {
			case 0:
				en.Interfaces, en.DefaultInterfaces = nil, nil
			case 1:
				en.Interfaces, en.DefaultInterfaces = []string{"eth9"}, nil
			}
			out = append(out, en)
		}
		return out
	}
	randomIP := func() netip.Addr {
		switch rng.IntN(6) {
		case 0:
			return netip.MustParseAddr("203.0.113.5") // in no pool
		case 1, 2:
			return netip.AddrFrom4([4]byte{198, 51, 100, byte(64 + rng.IntN(8))})
		default:
			return netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(12))}) // few: often shared
		}
	}
	svcs := map[string]*plan.Service{}
	for i := range 30 {
		key := fmt.Sprintf("app/s%d", i)
		svcs[key] = &plan.Service{Key: key, IPs: []netip.Addr{randomIP()}, ReadyEndpointNodes: []string{"n1", "n2"}}
	}
	ns := nodes()
	e := newEngine()
	e.full(plan.NewContext(cfg, "n1", ns), values(svcs))
	var owned, routed, shared, noEligible int
	check := func(step string) {
		t.Helper()
		p := e.plan()
		owned += len(p.L2Owned)
		routed += len(p.Routes)
		for _, u := range p.Unannounced {
			if strings.HasPrefix(u.Reason, "no node is eligible") {
				noEligible++
			}
		}
		for _, keys := range e.byIP {
			if strings.Contains(keys, holderSep) {
				shared++
			}
		}
		in := plan.Input{Config: cfg, Self: "n1", Nodes: ns}
		for _, s := range svcs {
			in.Services = append(in.Services, *s)
		}
		if diff := cmp.Diff(plan.Compute(in), e.plan(), planCmp); diff != "" {
			t.Fatalf("%s: the engine's plan differs from Compute (-want +got):\n%s", step, diff)
		}
		want := plan.Compute(in)
		l2, bgp := e.assignments()
		if diff := cmp.Diff(status.FromAssignments(want.L2, want.BGP, "n1", []string{"n1"}), status.FromAssignments(l2, bgp, "n1", []string{"n1"})); diff != "" {
			t.Fatalf("%s: the status from the engine's assignments differs from the status of Compute's plan (-want +got):\n%s", step, diff)
		}
		routes, elsewhere := e.routes()
		if diff := cmp.Diff(want.Routes, routes, planCmp); diff != "" {
			t.Fatalf("%s: the engine's routes differ from Compute (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(want.BGPElsewhere, elsewhere, planCmp); diff != "" {
			t.Fatalf("%s: the engine's prefixes advertised elsewhere differ from Compute (-want +got):\n%s", step, diff)
		}
	}
	check("start")
	for step := range 400 {
		if step%50 == 49 {
			ns = nodes()
			e.full(plan.NewContext(cfg, "n1", ns), values(svcs))
			check(fmt.Sprintf("step %d: nodes changed", step))
			continue
		}
		key := fmt.Sprintf("app/s%d", rng.IntN(40))
		old := svcs[key]
		var next *plan.Service
		if rng.IntN(5) != 0 {
			next = &plan.Service{Key: key, IPs: []netip.Addr{randomIP()}, NoEndpoints: rng.IntN(4) == 0,
				LocalTraffic: rng.IntN(3) == 0, ReadyEndpointNodes: []string{names[rng.IntN(4)]}}
			if ip := randomIP(); rng.IntN(4) == 0 && ip != next.IPs[0] { // the model lists each IP once
				next.IPs = append(next.IPs, ip)
			}
		}
		if next == nil {
			delete(svcs, key)
		} else {
			svcs[key] = next
		}
		ch := e.update(map[string]*plan.Service{key: next})
		check(fmt.Sprintf("step %d: %s changed", step, key))
		affected := map[netip.Addr]bool{}
		for _, s := range []*plan.Service{old, next} {
			if s != nil {
				for _, ip := range s.IPs {
					affected[ip] = true
				}
			}
		}
		if old != nil && next != nil && cmp.Equal(*old, *next, planCmp) {
			affected = nil
		}
		if ch.recomputed != len(affected) {
			t.Fatalf("step %d: %d IPs recomputed, want %d (those of %s)", step, ch.recomputed, len(affected), key)
		}
	}
	t.Logf("seen: %d owned IPs, %d routes, %d shared IPs, %d IPs without an eligible node", owned, routed, shared, noEligible)
	if owned == 0 || routed == 0 || shared == 0 || noEligible == 0 {
		t.Errorf("the random changes did not exercise the plan: %d owned IPs, %d routes, %d shared IPs, %d IPs without an eligible node seen", owned, routed, shared, noEligible)
	}
}

// reelectionCluster is the cluster of the re-election benchmarks: 1,000 layer-2 IPs at 20 nodes,
// with an engine that has decided them all as n2.
func reelectionCluster(tb testing.TB) (*config.Config, []election.Node, map[string]*plan.Service, *engine) {
	tb.Helper()
	cfg, nodes, svcs := l2Cluster(tb, 20, 1000)
	e := newEngine()
	e.full(plan.NewContext(cfg, "n2", nodes), values(svcs))
	return cfg, nodes, svcs, e
}

// l2Cluster is a layer-2 cluster of the engine's scale tests: one IPv6 pool with its
// L2Advertisement, the given number of ready nodes n1, n2, ... with eth0, and that many Services
// scale/sNNNNN with one IP each and a ready endpoint on n1.
func l2Cluster(tb testing.TB, nodeCount, services int) (*config.Config, []election.Node, map[string]*plan.Service) {
	tb.Helper()
	cfg, err := config.Parse(config.Snapshot{
		Pools: []v1beta1.IPAddressPool{{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8:1::1:0/112"}}}},
		L2Advertisements: []v1beta1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"},
			Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	var nodes []election.Node
	for i := 1; i <= nodeCount; i++ {
		nodes = append(nodes, election.Node{Name: fmt.Sprintf("n%d", i), Alive: true, SpeakerReady: true, Ready: true,
			Interfaces: []string{"eth0"}, DefaultInterfaces: []string{"eth0"}})
	}
	svcs := map[string]*plan.Service{}
	for i := range services {
		key := fmt.Sprintf("scale/s%05d", i)
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 13: 1, 14: byte(i >> 8), 15: byte(i)})
		svcs[key] = &plan.Service{Key: key, IPs: []netip.Addr{ip}, ReadyEndpointNodes: []string{"n1"}}
	}
	return cfg, nodes, svcs
}

// memberChange is the i-th membership change of the benchmarks: one of n3..n20 goes, then comes
// back.
func memberChange(nodes []election.Node, i int) []election.Node {
	ns := slices.Clone(nodes)
	ns[2+i%18].Alive = i%2 == 1
	return ns
}

// BenchmarkEngineFull is the re-election every speaker made on a membership change until
// 2026-12-05, every IP decided again: 1,000 layer-2 IPs at 20 nodes, one node going and coming
// back. In a 20-node cluster the 19 survivors of a failover all make it at the same moment.
func BenchmarkEngineFull(b *testing.B) {
	cfg, nodes, svcs, e := reelectionCluster(b)
	for i := 0; b.Loop(); i++ {
		e.full(plan.NewContext(cfg, "n2", memberChange(nodes, i)), values(svcs))
	}
}

// BenchmarkEngineNodeChange is the same membership change made the way the speaker makes it now:
// only the IPs the changed node owns or outranks the owner of are decided again.
func BenchmarkEngineNodeChange(b *testing.B) {
	cfg, nodes, _, e := reelectionCluster(b)
	for i := 0; b.Loop(); i++ {
		ctx := plan.NewContext(cfg, "n2", memberChange(nodes, i))
		affected, ok := e.affectedByNodes(ctx)
		if !ok {
			b.Fatal("a membership change was refused")
		}
		e.partial(ctx, affected, nil)
	}
}

// TestMeasureReelection runs both benchmarks and reports the cost of a membership change's
// re-election (speaker_reelection_*), and checks that a partial one decides again only the IPs
// the changed node owned or now owns: about 1/20 of them, not all 1,000.
func TestMeasureReelection(t *testing.T) {
	cfg, nodes, _, e := reelectionCluster(t)
	for i := range 36 {
		ctx := plan.NewContext(cfg, "n2", memberChange(nodes, i))
		affected, ok := e.affectedByNodes(ctx)
		if !ok {
			t.Fatalf("membership change %d was refused", i)
		}
		if ch := e.partial(ctx, affected, nil); ch.recomputed > 150 {
			t.Errorf("membership change %d decided %d of 1,000 IPs again, want only those n%d owns or outranks the owner of (about 50)", i, ch.recomputed, 3+i%18)
		}
	}
	if testing.Short() {
		return
	}
	full, partial := testing.Benchmark(BenchmarkEngineFull), testing.Benchmark(BenchmarkEngineNodeChange)
	t.Logf("re-election after a membership change, 1,000 IPs at 20 nodes: every IP %s (%d B), partial %s (%d B)",
		time.Duration(full.NsPerOp()), full.AllocedBytesPerOp(), time.Duration(partial.NsPerOp()), partial.AllocedBytesPerOp())
	if os.Getenv("HERALD_BENCH") == "1" {
		benchLine("speaker_reelection_full_us_1000_ips_20_nodes", float64(full.NsPerOp())/1e3, "us")
		benchLine("speaker_reelection_us_1000_ips_20_nodes", float64(partial.NsPerOp())/1e3, "us")
		benchLine("speaker_reelection_alloc_kb_1000_ips_20_nodes", float64(partial.AllocedBytesPerOp())/1e3, "KB")
	}
}

// TestEngineTakesOverOrphansFirst: on a failover, the IPs of the dead owner are found from the
// kept plans and re-elected alone (and only they), with the new owners a full computation gives
// them; the full computation that follows then changes nothing more for them.
func TestEngineTakesOverOrphansFirst(t *testing.T) {
	cfg := engineConfig(t)
	alive := func(dead string) []election.Node {
		var out []election.Node
		for _, n := range []string{"n1", "n2", "n3", "n4"} {
			out = append(out, election.Node{Name: n, Alive: n != dead, SpeakerReady: true, Ready: true,
				Interfaces: []string{"eth0"}, DefaultInterfaces: []string{"eth0"}})
		}
		return out
	}
	svcs := map[string]*plan.Service{}
	for i := range 24 {
		key := fmt.Sprintf("app/s%d", i)
		svcs[key] = &plan.Service{Key: key, IPs: []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})}}
	}
	for _, self := range []string{"n1", "n2", "n3"} {
		t.Run(self, func(t *testing.T) {
			e := newEngine()
			e.full(plan.NewContext(cfg, self, alive("")), values(svcs))
			wantOrphans := map[netip.Addr]bool{}
			for ip, k := range e.ips {
				if k.owner == "n4" {
					wantOrphans[ip] = true
				}
			}
			if len(wantOrphans) == 0 {
				t.Fatal("n4 owns nothing: the test proves nothing")
			}
			orphans := e.orphaned(map[string]bool{"n4": true})
			if diff := cmp.Diff(wantOrphans, orphans); diff != "" {
				t.Fatalf("orphaned (-want +got):\n%s", diff)
			}
			ctx := plan.NewContext(cfg, self, alive("n4"))
			first := e.takeOver(ctx, orphans)
			if first.recomputed != len(orphans) {
				t.Errorf("the takeover recomputed %d IPs, want only the %d orphans", first.recomputed, len(orphans))
			}
			var mine []netip.Addr
			for _, c := range first.ips {
				if !orphans[c.ip] || c.old.L2Owner != "n4" || c.new.L2Owner == "n4" || c.new.L2Owner == "" {
					t.Errorf("takeover change %s: owner %q -> %q, want an orphan moved off n4", c.ip, c.old.L2Owner, c.new.L2Owner)
				}
				if c.new.L2Owner == self {
					mine = append(mine, c.ip)
				}
			}
			rest := e.full(ctx, values(svcs))
			for _, c := range rest.ips {
				if orphans[c.ip] {
					t.Errorf("the full computation changed orphan %s again (%q -> %q)", c.ip, c.old.L2Owner, c.new.L2Owner)
				}
			}
			in := plan.Input{Config: cfg, Self: self, Nodes: alive("n4")}
			for _, s := range svcs {
				in.Services = append(in.Services, *s)
			}
			if diff := cmp.Diff(plan.Compute(in), e.plan(), planCmp); diff != "" {
				t.Fatalf("after the takeover and the full computation the plan differs from Compute (-want +got):\n%s", diff)
			}
			t.Logf("%s took over %d of n4's %d IPs", self, len(mine), len(orphans))
		})
	}
}

// values copies the Services a test keeps and changes into the map the engine takes for its own.
func values(svcs map[string]*plan.Service) map[string]plan.Service {
	out := make(map[string]plan.Service, len(svcs))
	for k, s := range svcs {
		if s != nil {
			out[k] = *s
		}
	}
	return out
}

// plan assembles the engine's whole plan, to compare with plan.Compute's.
func (e *engine) plan() plan.Plan {
	ips := make([]plan.IPPlan, 0, len(e.ips))
	for ip, k := range e.ips {
		ips = append(ips, k.plan(ip))
	}
	ctx := e.ctx
	if ctx == nil {
		ctx = plan.NewContext(nil, "", nil)
	}
	return plan.Assemble(ctx, ips)
}

// TestEngineNodeChangesMatchCompute changes one or two nodes at a time (liveness, readiness,
// labels that node selectors read, interfaces; nodes added and removed), sometimes with a Service
// change in the same computation, and checks after each change that recomputing only the IPs
// affectedByNodes returns gives the plan Compute makes from scratch. A change of this node, or of
// anything but nodes, must be refused (a full computation).
func TestEngineNodeChangesMatchCompute(t *testing.T) {
	cfg, err := config.Parse(config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/27"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "zoned", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.32/27"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.64/27"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "both", Namespace: "h"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.96/27"}}},
		},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: "h"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2", "both"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "zoned", Namespace: "h"}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"zoned"},
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "a"}}}, Interfaces: []string{"eth1"}}},
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: "h"},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp", "both"}}}},
		Peers: []v1beta1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "tor", Namespace: "h"},
			Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	randomNode := func(name string) election.Node {
		n := election.Node{Name: name, Alive: rng.IntN(4) != 0, SpeakerReady: rng.IntN(5) != 0, Ready: rng.IntN(6) != 0,
			Interfaces: []string{"eth0", "eth1"}, DefaultInterfaces: []string{"eth0"}}
		n.Labels = map[string]string{"team": fmt.Sprint(rng.IntN(3))} // read by no advertisement
		if rng.IntN(2) == 0 {
			n.Labels["zone"] = "a"
		}
		switch rng.IntN(8) {
		case 0:
			n.Interfaces = []string{"eth0"}
		case 1:
			n.Labels = map[string]string{election.ExcludeFromLBLabel: ""}
		}
		return n
	}
	var ns []election.Node
	for _, n := range names {
		ns = append(ns, randomNode(n))
	}
	randomIP := func() netip.Addr {
		if rng.IntN(8) == 0 {
			return netip.MustParseAddr("203.0.113.5") // in no pool
		}
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(4)*32 + rng.IntN(10))})
	}
	randomService := func(key string) *plan.Service {
		s := &plan.Service{Key: key, IPs: []netip.Addr{randomIP()}, NoEndpoints: rng.IntN(8) == 0, LocalTraffic: rng.IntN(3) == 0}
		for _, n := range names {
			if rng.IntN(3) == 0 {
				s.ReadyEndpointNodes = append(s.ReadyEndpointNodes, n)
			}
		}
		return s
	}
	svcs := map[string]*plan.Service{}
	for i := range 60 {
		key := fmt.Sprintf("app/s%d", i)
		svcs[key] = randomService(key)
	}
	const self = "n1"
	e := newEngine()
	e.full(plan.NewContext(cfg, self, ns), values(svcs))
	var partial, refused, recomputed, held int
	for step := range 600 {
		next := slices.Clone(ns)
		changedSelf := false
		for range 1 + rng.IntN(2) {
			i := rng.IntN(len(next))
			switch rng.IntN(10) {
			case 0: // removed (not this node)
				if next[i].Name != self {
					next = slices.Delete(next, i, i+1)
					continue
				}
			case 1: // a new node, or one back
				if missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool {
					return slices.ContainsFunc(next, func(x election.Node) bool { return x.Name == n })
				}); len(missing) > 0 {
					next = append(next, randomNode(missing[rng.IntN(len(missing))]))
					continue
				}
			}
			changedSelf = changedSelf || next[i].Name == self
			next[i] = randomNode(next[i].Name)
		}
		changed := map[string]*plan.Service{}
		if rng.IntN(3) == 0 {
			key := fmt.Sprintf("app/s%d", rng.IntN(70))
			s := randomService(key)
			if rng.IntN(5) == 0 {
				s = nil
				delete(svcs, key)
			} else {
				svcs[key] = s
			}
			changed[key] = s
		}
		ctx := plan.NewContext(cfg, self, next)
		affected, ok := e.affectedByNodes(ctx)
		selfBefore := slices.IndexFunc(ns, func(n election.Node) bool { return n.Name == self })
		selfAfter := slices.IndexFunc(next, func(n election.Node) bool { return n.Name == self })
		if selfDiffers := changedSelf && !cmp.Equal(ns[selfBefore], next[selfAfter]); ok == selfDiffers {
			t.Fatalf("step %d: affectedByNodes ok=%v, but this node changed: %v", step, ok, selfDiffers)
		}
		if ok {
			partial++
			recomputed += len(affected)
			held += len(e.ips)
			e.partial(ctx, affected, changed)
		} else {
			refused++
			e.full(ctx, values(svcs))
		}
		ns = next
		in := plan.Input{Config: cfg, Self: self, Nodes: ns}
		for _, s := range svcs {
			in.Services = append(in.Services, *s)
		}
		if diff := cmp.Diff(plan.Compute(in), e.plan(), planCmp); diff != "" {
			t.Fatalf("step %d (partial %v): the engine's plan differs from Compute (-want +got):\n%s", step, ok, diff)
		}
		routes, elsewhere := e.routes()
		want := plan.Compute(in)
		if diff := cmp.Diff(want.L2Owned, maps.Collect(e.l2Owned()), planCmp); diff != "" {
			t.Fatalf("step %d: the layer-2 owned set read from the engine differs from Compute's (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(want.Routes, routes, planCmp); diff != "" {
			t.Fatalf("step %d: the engine's routes differ from Compute (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(want.BGPElsewhere, elsewhere, planCmp); diff != "" {
			t.Fatalf("step %d: the prefixes advertised elsewhere differ from Compute (-want +got):\n%s", step, diff)
		}
	}
	t.Logf("%d partial computations (%d of the %d IPs held recomputed), %d refused", partial, recomputed, held, refused)
	if partial == 0 || refused == 0 {
		t.Fatalf("the random changes did not exercise both paths: %d partial, %d refused", partial, refused)
	}
	if recomputed >= held {
		t.Errorf("partial computations recomputed %d of %d IPs: nothing was spared", recomputed, held)
	}
	// Nothing changed: nothing to recompute.
	if affected, ok := e.affectedByNodes(plan.NewContext(cfg, self, slices.Clone(ns))); !ok || len(affected) != 0 {
		t.Errorf("an unchanged context: ok=%v, %d IPs affected; want ok and none", ok, len(affected))
	}
	// Another configuration: refused.
	if _, ok := e.affectedByNodes(plan.NewContext(engineConfig(t), self, ns)); ok {
		t.Error("another configuration was accepted for a partial computation")
	}
}

// TestKeptPlan checks that what the engine keeps of a plan gives the plan back as it was, each part
// alone and all together (nil and empty slices apart), and that a plan with only its layer-2 part
// keeps nothing behind a pointer.
func TestKeptPlan(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	pref := uint32(200)
	full := plan.IPPlan{
		IP: ip, L2Owner: "n1", L2Interfaces: []string{"eth0"},
		L2:          []plan.L2Assignment{{Service: "ns/a", IP: ip, Interfaces: []string{"eth0"}}},
		BGP:         []plan.BGPAssignment{{Service: "ns/a", IP: ip, Peers: []string{"p1"}}},
		Routes:      []plan.PeerRoute{{Peer: "p1", Route: plan.Route{Prefix: netip.PrefixFrom(ip, 32), LocalPref: &pref}}},
		Elsewhere:   []netip.Prefix{netip.PrefixFrom(ip, 32)},
		Unannounced: []plan.Unannounced{{Service: "ns/b", IP: ip, Reason: "no node"}},
	}
	cases := map[string]plan.IPPlan{
		"owner only":  {IP: ip, L2Owner: "n2"},
		"layer 2":     {IP: ip, L2Owner: "n1", L2Interfaces: full.L2Interfaces, L2: full.L2},
		"bgp":         {IP: ip, BGP: full.BGP},
		"routes":      {IP: ip, Routes: full.Routes},
		"elsewhere":   {IP: ip, Elsewhere: full.Elsewhere},
		"unannounced": {IP: ip, Unannounced: full.Unannounced},
		"empty slice": {IP: ip, BGP: []plan.BGPAssignment{}},
		"all":         full,
	}
	for name, p := range cases {
		k := keep(p)
		if got := k.plan(ip); !reflect.DeepEqual(got, p) {
			t.Errorf("%s: kept %+v gives back %+v", name, p, got)
		}
		if only2 := p.BGP == nil && p.Routes == nil && p.Elsewhere == nil && p.Unannounced == nil; only2 != (k.rest == nil) {
			t.Errorf("%s: rest kept = %v, want %v", name, k.rest != nil, !only2)
		}
	}
	e := newEngine()
	if got := e.planOf(ip); got.IP.IsValid() {
		t.Errorf("the plan of an IP no Service holds = %+v, want the zero plan", got)
	}
}

// TestMeasureEngineMemory measures the heap the engine holds for 10,000 layer-2 IPs (one Service
// each) after a full computation: its Services, its index by IP and its per-IP plans, once as the
// owner of every IP (a single live speaker, the RSS bench's case) and once as one of 20 nodes
// (another node owns most IPs). It fails above a bound that a plan kept whole again would pass:
// 445 and 369 bytes an IP with plan.IPPlan kept by value, 358 and 282 with kept, 329 and 253
// with the holders of an IP as one string (2026-12-06).
func TestMeasureEngineMemory(t *testing.T) {
	const n = 10000
	for _, tc := range []struct {
		name  string
		nodes int
		bound float64
	}{{"owner of all", 1, 345}, {"one of 20", 20, 270}} {
		cfg, nodes, svcs := l2Cluster(t, tc.nodes, n)
		ctx := plan.NewContext(cfg, "n1", nodes)
		// The least of three builds: another test's goroutine that allocates meanwhile (a
		// reflector still running) adds to one measurement, not to all. The engine of the build
		// before is either live through both collections of the next or freed by the first (e is
		// written again before it is read): it counts in neither.
		build := func() (float64, *engine) {
			given := values(svcs) // the engine keeps it: counted as its own
			before := heapInUse()
			e := newEngine()
			e.full(ctx, given)
			return float64(heapInUse()-before) / n, e
		}
		var e *engine
		per := math.Inf(1)
		for range 3 {
			p, next := build()
			per, e = min(per, p), next
		}
		if len(e.ips) != n {
			t.Fatalf("%s: the engine holds %d plans, want %d", tc.name, len(e.ips), n)
		}
		owned := 0
		for _, k := range e.ips {
			if len(k.l2) > 0 {
				owned++
			}
		}
		t.Logf("%s: the engine holds %.0f bytes per IP at %d IPs (%d of them owned here)", tc.name, per, n, owned)
		if per > tc.bound {
			t.Errorf("%s: the engine holds %.0f bytes per IP, want at most %.0f", tc.name, per, tc.bound)
		}
		if os.Getenv("HERALD_BENCH") == "1" {
			benchLine(fmt.Sprintf("speaker_engine_bytes_per_ip_%d_nodes_%d", n, tc.nodes), per, "B")
		}
		runtime.KeepAlive(e)
	}
}

// heapInUse is the heap's live bytes after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestEngineHolders: the Services holding an IP, held twice, released out of order, released
// without being held.
func TestEngineHolders(t *testing.T) {
	e := newEngine()
	ip := netip.MustParseAddr("192.0.2.1")
	held := func() []string {
		keys, ok := e.byIP[ip]
		if !ok {
			return nil
		}
		return strings.Split(keys, holderSep)
	}
	steps := []struct {
		hold, release string
		want          []string
	}{
		{hold: "ns/a", want: []string{"ns/a"}},
		{hold: "ns/b", want: []string{"ns/a", "ns/b"}},
		{hold: "ns/a", want: []string{"ns/a", "ns/b"}},
		{hold: "ns/c", want: []string{"ns/a", "ns/b", "ns/c"}},
		{release: "ns/b", want: []string{"ns/a", "ns/c"}},
		{release: "ns/x", want: []string{"ns/a", "ns/c"}},
		{release: "ns/a", want: []string{"ns/c"}},
		{release: "ns/c", want: nil},
		{release: "ns/c", want: nil},
	}
	for i, s := range steps {
		if s.hold != "" {
			e.hold(ip, s.hold)
		} else {
			e.release(ip, s.release)
		}
		if got := held(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (%+v): held by %q, want %q", i, s, got, s.want)
		}
	}
}
