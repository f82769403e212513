package layer2

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMeasureAnnouncerMemory measures the heap the Announcer holds per owned address, with
// duplicate address detection on as the speaker runs it: 10,000 IPv4 addresses taken over on one
// interface, once every address has had its first gratuitous announcement, and again once
// every address has been probed (its first check, paced at the default rate: about 100 s on the
// bubble's clock). The figure is the heap in use after a collection,
// less the same with nothing owned, over the addresses; it fails if an address costs more than
// maxBytesPerAddress (about 640 today, 1,000 before 2026-12-06: a regression fails). With
// HERALD_BENCH=1 it prints BENCHJSON lines; with HERALD_L2_HEAP_PROFILE=file it writes an exact
// heap profile (every allocation sampled) of the steady state there.
func TestMeasureAnnouncerMemory(t *testing.T) {
	const n, maxBytesPerAddress = 10000, 800
	profile := os.Getenv("HERALD_L2_HEAP_PROFILE")
	if profile != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	var settled, steady float64
	synctest.Test(t, func(t *testing.T) {
		conn := newDiscardConn(false)
		reg := prometheus.NewRegistry()
		a := startAnnouncer(t, Config{Dial: func(name string) (*Link, error) {
			return NewLink(&net.Interface{Name: name, Index: 1, MTU: 1500, HardwareAddr: selfMAC}, conn, nil)
		}, Conflicts: &ConflictConfig{Node: "n1"}, Registerer: reg})
		// waitFor polls the announcer's metrics on the bubble's clock until done holds of them.
		waitFor := func(what string, within time.Duration, done func(map[string]float64) bool) {
			t.Helper()
			deadline := time.Now().Add(within)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				synctest.Wait()
				m := gather(t, reg, "eth0", "ipv4")
				if done(m) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: not within %s; metrics %v", what, within, m)
				}
				<-tick.C
			}
		}
		if err := a.SetOwned(map[netip.Addr][]string{}); err != nil {
			t.Fatal(err)
		}
		before := heapInUse()
		owned := make(map[netip.Addr][]string, n)
		ifs := []string{"eth0"}
		base := netip.MustParseAddr("198.18.0.0").As4()
		for i := range n {
			b := base
			b[2], b[3] = byte(i>>8), byte(i)
			owned[netip.AddrFrom4(b)] = ifs
		}
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		// Two frames an IPv4 announcement.
		waitFor("every address's first announcement", time.Minute, func(m map[string]float64) bool {
			return m["herald_layer2_gratuitous_sent_total"] >= 2*n
		})
		settled = float64(heapInUse()-before) / n
		waitFor("every address's first check", 5*time.Minute, func(m map[string]float64) bool {
			return m["herald_layer2_probes_sent_total"] >= n
		})
		steady = float64(heapInUse()-before) / n
		if profile != "" {
			writeHeapProfile(t, profile)
		}
		if got := len(a.Conflicts()); got != 0 {
			t.Fatalf("%d conflicts with nobody else on the link", got)
		}
		runtime.KeepAlive(a)
	})
	t.Logf("announcer heap per owned address: %.0f bytes after the first announcements, %.0f after every address's first check", settled, steady)
	for _, b := range []float64{settled, steady} {
		if b > maxBytesPerAddress {
			t.Errorf("the announcer holds %.0f bytes per owned address, want at most %d", b, maxBytesPerAddress)
		}
	}
	if os.Getenv("HERALD_BENCH") == "1" {
		benchLine("l2_announcer_bytes_per_ip_10000", steady, "bytes")
	}
}

// heapInUse is the heap in use after two collections.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}
