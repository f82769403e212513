package layer2

import (
	"net/netip"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
)

// manyOwned is n IPv4 addresses of 10.0.0.0/8 on the given interfaces.
func manyOwned(n int, ifnames ...string) map[netip.Addr][]string {
	owned := make(map[netip.Addr][]string, n)
	base := netip.MustParseAddr("10.0.0.1").As4()
	for i := range n {
		b := base
		b[1], b[2], b[3] = byte(i>>16), byte(i>>8), byte(i)+1
		owned[netip.AddrFrom4(b)] = ifnames
	}
	return owned
}

// TestSetOwnedUnchangedAllocatesNothingPerAddress: the speaker hands the whole owned set over at
// every resync. When it has not changed, SetOwned keeps the sets it has (with and without conflict
// detection) instead of rebuilding them and copying them into the responders: a few allocations
// of a few hundred bytes, where two rebuilds of 2,000 addresses allocate over a megabyte.
func TestSetOwnedUnchangedAllocatesNothingPerAddress(t *testing.T) {
	for _, conflicts := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) { measureUnchangedSetOwned(t, conflicts) })
	}
}

func measureUnchangedSetOwned(t *testing.T, conflicts bool) {
	f := newFakeNet()
	// A burst that holds every address: the first announcements go out within SetOwned, and
	// what follows (later announcements, first checks) waits on the bubble's clock, which stands
	// still while the calls are counted.
	cfg := Config{Dial: f.dial, AnnounceBurst: 4000}
	if conflicts {
		cfg.Conflicts = &ConflictConfig{Node: "n1"}
	}
	a := startAnnouncer(t, cfg)
	owned := manyOwned(2000, "eth0")
	if err := a.SetOwnedFresh(owned, nil); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	change := func() {
		// A different order of the same names is the same state; a copy of the map is a new
		// one, as the speaker's would be after a change.
		changed := manyOwned(2000, "eth0")
		delete(changed, netip.MustParseAddr("10.0.0.1"))
		if err := a.SetOwnedFresh(changed, nil); err != nil {
			t.Fatal(err)
		}
		if err := a.SetOwnedFresh(owned, nil); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func() {
		if err := a.SetOwnedFresh(owned, nil); err != nil {
			t.Fatal(err)
		}
	}
	rebuild, rebuildBytes := allocsPerRun(3, change)
	same, sameBytes := allocsPerRun(5, unchanged)
	t.Logf("conflict detection %v: %.0f allocations (%.0f bytes) for an unchanged set of 2,000, %.0f (%.0f bytes) for two changes",
		conflicts, same, sameBytes, rebuild, rebuildBytes)
	if same > 50 || sameBytes > 8<<10 {
		t.Errorf("conflict detection %v: SetOwned of an unchanged set of 2,000 addresses made %.0f allocations of %.0f bytes; want at most 50 and 8 KiB", conflicts, same, sameBytes)
	}
	// Two rebuilt sets of 2,000 hold at least the addresses (24 bytes each) twice.
	if rebuildBytes < 2*2000*24 {
		t.Errorf("conflict detection %v: two changed sets of 2,000 allocated only %.0f bytes: the measurement does not tell a rebuild", conflicts, rebuildBytes)
	}
}

// allocsPerRun is testing.AllocsPerRun with the bytes allocated too, per run of f.
func allocsPerRun(runs int, f func()) (allocs, bytes float64) {
	var before, after runtime.MemStats
	f() // warm up, as AllocsPerRun does
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs), float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// TestSetOwnedUnchangedAfterUpdates: the state UpdateOwned left (an interface that lost its last
// address) and a SetOwned of the same state afterwards answer as a rebuilt state would: the emptied
// interface's link closes, the others keep answering, and nothing is announced again.
func TestSetOwnedUnchangedAfterUpdates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		a := newTestAnnouncer(t, f, nil)
		v4b := netip.MustParseAddr("198.51.100.11")
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}, v4b: {"eth1"}}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e0, _ := f.conns("eth0")
		e1, _ := f.conns("eth1")
		e0.Take()
		if err := a.UpdateOwned(map[netip.Addr][]string{v4b: nil}, nil); err != nil {
			t.Fatal(err)
		}
		if e1.Closed() {
			t.Fatal("UpdateOwned closed eth1; the test wants the next SetOwned to")
		}
		now := map[netip.Addr][]string{lbIPv4: {"eth0"}}
		if err := a.SetOwned(now); err != nil {
			t.Fatal(err)
		}
		if !e1.Closed() || e0.Closed() {
			t.Errorf("closed after SetOwned of the same state: eth0 %v, eth1 %v; want only eth1", e0.Closed(), e1.Closed())
		}
		if err := a.SetOwned(now); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e0.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
		synctest.Wait()
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.10"}, kinds(t, e0.Take())); diff != "" {
			t.Errorf("eth0 after unchanged sets (-want +got; no new announcement, still answered):\n%s", diff)
		}
	})
}
