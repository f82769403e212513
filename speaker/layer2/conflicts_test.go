package layer2

import (
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/layer2/layer2test"
)

// frameKinds summarises written frames like kinds, and also names probes: "probe <ip>" (ARP probe)
// and "dad <ip>" (duplicate address detection).
func frameKinds(t *testing.T, frames []layer2test.Frame) []string {
	t.Helper()
	var out []string
	for _, f := range frames {
		if _, p := arpOf(f.Data); p != nil && p.Operation == arp.OperationRequest && p.SenderIP.IsUnspecified() {
			out = append(out, "probe "+p.TargetIP.String())
			continue
		}
		if _, _, m := ndpOf(f.Data); m != nil {
			if ns, ok := m.(*ndp.NeighborSolicitation); ok {
				out = append(out, "dad "+ns.TargetAddress.String())
				continue
			}
		}
		out = append(out, kinds(t, []layer2test.Frame{f})...)
	}
	return out
}

func newConflictAnnouncer(t *testing.T, f *fakeNet, reg prometheus.Registerer, node string) *Announcer {
	t.Helper()
	return startAnnouncer(t, Config{Dial: f.dial, Registerer: reg, Conflicts: &ConflictConfig{Node: node}})
}

// conflictGauge returns herald_layer2_conflicts by action for one interface and family.
func conflictGauge(t *testing.T, reg *prometheus.Registry, ifname, fam string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "herald_layer2_conflicts" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["interface"] == ifname && labels["family"] == fam && m.GetGauge().GetValue() != 0 {
				out[labels["action"]] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestAnnouncerFreshAddressIsProbedFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newConflictAnnouncer(t, f, nil, "n1")
		start := time.Now()
		if err := a.SetOwnedFresh(map[netip.Addr][]string{lbIPv4: {"eth0"}, lbIPv6: {"eth0"}},
			map[netip.Addr]bool{lbIPv4: true, lbIPv6: true}); err != nil {
			t.Fatal(err)
		}
		arpC, ndpC := f.conns("eth0")
		ask := func() []string {
			arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
			ndpC.Deliver(nsFrame(t, lbIPv6, nsOpts{}))
			synctest.Wait()
			return append(frameKinds(t, arpC.Take()), frameKinds(t, ndpC.Take())...)
		}
		synctest.Wait()
		// Probes at 0, 100ms and 200ms, nothing answered or announced meanwhile.
		for i := range 3 {
			want := []string{"probe 198.51.100.10", "dad 2001:db8::10"}
			if diff := cmp.Diff(want, ask()); diff != "" {
				t.Fatalf("%v after SetOwnedFresh (-want +got):\n%s", time.Since(start), diff)
			}
			if i < 2 {
				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
			}
		}
		if _, n := f.conns("eth0"); n.Groups()["33:33:00:00:00:01"] != 1 {
			t.Errorf("groups %v: want all nodes joined, where answers to duplicate address detection go", n.Groups())
		}
		time.Sleep(100*time.Millisecond - time.Since(start)%(100*time.Millisecond))
		synctest.Wait()
		// 300ms: nobody answered; announced, and answered from now on.
		want := []string{"garp-req 198.51.100.10", "garp-rep 198.51.100.10", "na 2001:db8::10"}
		if diff := cmp.Diff(want, append(frameKinds(t, arpC.Take()), frameKinds(t, ndpC.Take())...)); diff != "" {
			t.Fatalf("%v after SetOwnedFresh (-want +got):\n%s", time.Since(start), diff)
		}
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.10", "na-solicited 2001:db8::10"}, ask()); diff != "" {
			t.Fatalf("answers after the probes (-want +got):\n%s", diff)
		}
		if c := a.Conflicts(); len(c) != 0 {
			t.Errorf("Conflicts() = %+v, want none", c)
		}
	})
}

func TestAnnouncerFreshAddressTakenIsNotAnnounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		reg := prometheus.NewRegistry()
		a := newConflictAnnouncer(t, f, reg, "n1")
		start := time.Now()
		if err := a.SetOwnedFresh(map[netip.Addr][]string{lbIPv4: {"eth0"}}, map[netip.Addr]bool{lbIPv4: true}); err != nil {
			t.Fatal(err)
		}
		arpC, _ := f.conns("eth0")
		synctest.Wait()
		// A host that has the address answers the probe.
		arpC.Deliver(arpFrame(t, arp.OperationReply, selfMAC, otherMAC, lbIPv4, netip.IPv4Unspecified()))
		synctest.Wait()
		select {
		case <-a.ConflictChanges():
			t.Fatal("a conflict reported before the probes were over")
		default:
		}
		time.Sleep(time.Second)
		synctest.Wait()
		for _, k := range frameKinds(t, arpC.Take()) {
			if k != "probe 198.51.100.10" {
				t.Fatalf("sent %q for an address another host has", k)
			}
		}
		arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
		synctest.Wait()
		if got := frameKinds(t, arpC.Take()); len(got) != 0 {
			t.Fatalf("answered %v for an address another host has", got)
		}
		select {
		case <-a.ConflictChanges():
		default:
			t.Fatal("no conflict change signalled")
		}
		want := []Conflict{{IP: lbIPv4, Interface: "eth0", MAC: otherMAC, NeverAnnounced: true, Since: start.Add(DefaultNewProbeWait)}}
		if diff := cmp.Diff(want, a.Conflicts(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("Conflicts() (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]float64{"not-announced": 1}, conflictGauge(t, reg, "eth0", "ipv4")); diff != "" {
			t.Errorf("herald_layer2_conflicts (-want +got):\n%s", diff)
		}
		// The host goes away: two checks unanswered, and the address is announced.
		time.Sleep(time.Minute)
		synctest.Wait()
		got := frameKinds(t, arpC.Take())
		if !containsKind(got, "garp-req 198.51.100.10") {
			t.Errorf("after the host left: %v, want the address announced", got)
		}
		if c := a.Conflicts(); len(c) != 0 {
			t.Errorf("Conflicts() = %+v after the host left, want none", c)
		}
		if diff := cmp.Diff(map[string]float64{}, conflictGauge(t, reg, "eth0", "ipv4")); diff != "" {
			t.Errorf("herald_layer2_conflicts after the host left (-want +got):\n%s", diff)
		}
	})
}

func containsKind(kinds []string, k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// TestAnnouncerConflictBetweenSpeakers: a takeover of an address that another Herald speaker keeps
// answering (a split brain): the speaker the rule prefers keeps it and announces it again, the other
// stops answering, keeps checking and answers again once the other speaker is gone.
func TestAnnouncerConflictBetweenSpeakers(t *testing.T) {
	win, _ := election.Owner(lbIPv4, []string{"n1", "n2"})
	lose := map[string]string{"n1": "n2", "n2": "n1"}[win]
	for _, self := range []string{win, lose} {
		t.Run(self, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				other := lose
				if self == lose {
					other = win
				}
				f := newFakeNet()
				reg := prometheus.NewRegistry()
				a := newConflictAnnouncer(t, f, reg, self)
				a.SetPeerMACs(map[string]string{otherMAC.String(): other, "not a MAC": "n9"})
				if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}}); err != nil {
					t.Fatal(err)
				}
				arpC, _ := f.conns("eth0")
				garp := arpFrame(t, arp.OperationRequest, broadcast, otherMAC, lbIPv4, lbIPv4)
				// The other speaker's announcement, and again after Confirm.
				arpC.Deliver(garp)
				time.Sleep(DefaultConfirm)
				arpC.Deliver(garp)
				synctest.Wait()
				arpC.Take()
				conflicts := a.Conflicts()
				if len(conflicts) != 1 || conflicts[0].Node != other || conflicts[0].Answering != (self == win) || conflicts[0].NeverAnnounced {
					t.Fatalf("Conflicts() = %+v; want one with %s, answering %v", conflicts, other, self == win)
				}
				ask := func() []string {
					arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
					synctest.Wait()
					return frameKinds(t, arpC.Take())
				}
				if self == win {
					// It keeps answering, and announced the address again to undo the other's
					// announcements in the neighbours' caches.
					if diff := cmp.Diff([]string{"arp-rep 198.51.100.10"}, ask()); diff != "" {
						t.Fatalf("winner's answers (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(map[string]float64{"kept": 1}, conflictGauge(t, reg, "eth0", "ipv4")); diff != "" {
						t.Errorf("herald_layer2_conflicts (-want +got):\n%s", diff)
					}
					time.Sleep(150 * time.Millisecond)
					synctest.Wait()
					if got := frameKinds(t, arpC.Take()); !containsKind(got, "garp-req 198.51.100.10") {
						t.Errorf("winner sent %v after the conflict, want a new announcement", got)
					}
					return
				}
				// The loser is silent: no answers, no announcements, only probes.
				if got := ask(); len(got) != 0 {
					t.Fatalf("loser answered %v", got)
				}
				if diff := cmp.Diff(map[string]float64{"yielded": 1}, conflictGauge(t, reg, "eth0", "ipv4")); diff != "" {
					t.Errorf("herald_layer2_conflicts (-want +got):\n%s", diff)
				}
				// The winner answers the loser's checks for 5s, then is gone.
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
					synctest.Wait()
					for _, k := range frameKinds(t, arpC.Take()) {
						if k != "probe 198.51.100.10" {
							t.Fatalf("loser sent %q while yielding", k)
						}
						arpC.Deliver(arpFrame(t, arp.OperationReply, selfMAC, otherMAC, lbIPv4, netip.IPv4Unspecified()))
					}
				}
				synctest.Wait()
				if c := a.Conflicts(); len(c) != 1 || c[0].Answering {
					t.Fatalf("Conflicts() = %+v while the winner answers, want it yielded", c)
				}
				time.Sleep(DefaultRecheck*missLimit + DefaultReplyWait + time.Millisecond)
				synctest.Wait()
				if got := frameKinds(t, arpC.Take()); !containsKind(got, "garp-req 198.51.100.10") {
					t.Errorf("loser sent %v after the winner went, want the address announced", got)
				}
				if diff := cmp.Diff([]string{"arp-rep 198.51.100.10"}, ask()); diff != "" {
					t.Errorf("loser's answers after the winner went (-want +got):\n%s", diff)
				}
				if c := a.Conflicts(); len(c) != 0 {
					t.Errorf("Conflicts() = %+v after the winner went, want none", c)
				}
			})
		})
	}
}

// TestAnnouncerIgnoresItsOwnFrames: the announcements of the node's other interface on the same
// segment, and frames from MACs named as this node's, are no conflict.
func TestAnnouncerIgnoresItsOwnFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eth1MAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
		conns := map[string]*layer2test.Conn{}
		dial := func(name string) (*Link, error) {
			mac := selfMAC
			if name == "eth1" {
				mac = eth1MAC
			}
			c := layer2test.NewConn()
			conns[name] = c
			return NewLink(&net.Interface{Name: name, Index: len(conns), MTU: 1500, HardwareAddr: mac}, c, nil)
		}
		a, err := NewAnnouncer(Config{Dial: dial, Conflicts: &ConflictConfig{Node: "n1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		a.SetPeerMACs(map[string]string{otherMAC.String(): "n1"})
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0", "eth1"}}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			conns["eth0"].Deliver(arpFrame(t, arp.OperationRequest, broadcast, eth1MAC, lbIPv4, lbIPv4))
			conns["eth1"].Deliver(arpFrame(t, arp.OperationRequest, broadcast, selfMAC, lbIPv4, lbIPv4))
			conns["eth0"].Deliver(arpFrame(t, arp.OperationRequest, broadcast, otherMAC, lbIPv4, lbIPv4))
			time.Sleep(DefaultConfirm)
		}
		synctest.Wait()
		if c := a.Conflicts(); len(c) != 0 {
			t.Errorf("Conflicts() = %+v, want none", c)
		}
		if diff := cmp.Diff(map[string]string{"eth0": selfMAC.String(), "eth1": eth1MAC.String()}, a.MACs()); diff != "" {
			t.Errorf("MACs() (-want +got):\n%s", diff)
		}
	})
}

func TestAnnouncerNDPConflict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newConflictAnnouncer(t, f, nil, "n1")
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv6: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		_, ndpC := f.conns("eth0")
		// A host answers duplicate address detection for the address, twice, a second apart.
		na := naFrame(t, lbIPv6, naOpts{src: netip.MustParseAddr("fe80::42"), tlla: otherMAC})
		ndpC.Deliver(na)
		time.Sleep(DefaultConfirm)
		ndpC.Deliver(na)
		synctest.Wait()
		c := a.Conflicts()
		if len(c) != 1 || c[0].IP != lbIPv6 || c[0].MAC.String() != otherMAC.String() || c[0].Node != "" || c[0].Answering {
			t.Fatalf("Conflicts() = %+v, want one yielded to %s", c, otherMAC)
		}
		ndpC.Take()
		ndpC.Deliver(nsFrame(t, lbIPv6, nsOpts{}))
		synctest.Wait()
		for _, k := range frameKinds(t, ndpC.Take()) {
			if k != "dad 2001:db8::10" {
				t.Errorf("sent %q while yielding", k)
			}
		}
	})
}

// TestNoConflictDetectionWithoutConfig: an Announcer without Config.Conflicts sends no probes and
// reports nothing, whatever it sees.
func TestNoConflictDetectionWithoutConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		if err := a.SetOwnedFresh(map[netip.Addr][]string{lbIPv4: {"eth0"}}, map[netip.Addr]bool{lbIPv4: true}); err != nil {
			t.Fatal(err)
		}
		arpC, _ := f.conns("eth0")
		for range 3 {
			arpC.Deliver(arpFrame(t, arp.OperationRequest, broadcast, otherMAC, lbIPv4, lbIPv4))
			time.Sleep(time.Second)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, k := range frameKinds(t, arpC.Take()) {
			if k == "probe 198.51.100.10" {
				t.Fatal("probe sent without conflict detection")
			}
		}
		if a.Conflicts() != nil || a.ConflictChanges() != nil {
			t.Error("conflicts reported without conflict detection")
		}
		if diff := cmp.Diff(map[string]string{"eth0": selfMAC.String()}, a.MACs()); diff != "" {
			t.Errorf("MACs() (-want +got):\n%s", diff)
		}
	})
}

// TestProbesArePaced: with many owned addresses the checks keep to the rate.
func TestProbesArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a, err := NewAnnouncer(Config{Dial: f.dial, Conflicts: &ConflictConfig{Node: "n1", Rate: 50, Interval: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		owned := map[netip.Addr][]string{}
		for i := range 1000 {
			owned[netip.AddrFrom4([4]byte{198, 51, byte(100 + i/256), byte(i)})] = []string{"eth0"}
		}
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		arpC, _ := f.conns("eth0")
		time.Sleep(11 * time.Second)
		synctest.Wait()
		probes := 0
		for _, k := range frameKinds(t, arpC.Take()) {
			if len(k) > 6 && k[:6] == "probe " {
				probes++
			}
		}
		// 10s of probing (the first checks are due 1s after the takeover) at 50 a second, plus
		// the saved-up burst of 5.
		if probes < 450 || probes > 506 {
			t.Errorf("%d probes in 10s at 50 a second", probes)
		}
	})
}
