package allocator

import (
	"github.com/herald-lb/herald/controller/allocator/ipset"

	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
)

// The benchmark names are used by make bench; keep them stable.

func benchService(key string, fams ...Family) *Service {
	return &Service{Key: key, Namespace: "ns", Ports: tcp(80), Families: fams}
}

// fill assigns n Services in a, then releases Services at random until free addresses remain
// free, spread over the pool. It returns the allocator and the Service used by the benchmark.
func fill(b *testing.B, prefix string, fam Family, n, free int) *Allocator {
	b.Helper()
	a, err := New([]Pool{pool("p", cidr(prefix))})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := a.Assign(benchService(fmt.Sprintf("ns/fill-%d", i), fam)); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for released := 0; released < free; {
		if a.Release(fmt.Sprintf("ns/fill-%d", r.IntN(n))) != nil {
			released++
		}
	}
	return a
}

// benchAssignRelease measures Assign then Release of svc. Besides wall time it reports the
// process CPU time per operation (cpu-ns/op, garbage collection included), which is what to
// compare on a machine shared with other work.
func benchAssignRelease(b *testing.B, a *Allocator, svc *Service) {
	b.Helper()
	b.ReportAllocs()
	runtime.GC()
	start := cpuTime()
	n := 0
	for b.Loop() {
		if _, err := a.Assign(svc); err != nil {
			b.Fatal(err)
		}
		a.Release(svc.Key)
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time of the process so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkAssignEmpty16 assigns and releases one address in an empty /16.
func BenchmarkAssignEmpty16(b *testing.B) {
	a := fill(b, "10.0.0.0/16", IPv4, 0, 0)
	benchAssignRelease(b, a, benchService("ns/bench", IPv4))
}

// BenchmarkAssignFull16 assigns and releases one address in a /16 that is 99% full, with the
// free addresses scattered at random.
func BenchmarkAssignFull16(b *testing.B) {
	const size = 1 << 16
	a := fill(b, "10.0.0.0/16", IPv4, size, size/100)
	if c, _ := a.PoolCounts("p"); c.IPv4.Available != ipset.From64(size/100) {
		b.Fatalf("prefill: %+v", c)
	}
	benchAssignRelease(b, a, benchService("ns/bench", IPv4))
}

// BenchmarkAssign64 assigns and releases one address in a /64 holding 65536 addresses at
// random offsets, that is 65536 separate runs: the tree at its largest for that many.
func BenchmarkAssign64(b *testing.B) {
	a, err := New([]Pool{pool("p", cidr("fd00::/64"))})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 1 << 16 {
		var ip [16]byte
		ip[0] = 0xfd
		for j := 8; j < 16; j++ {
			ip[j] = byte(r.Uint32())
		}
		if _, err := a.Reserve(benchService(fmt.Sprintf("ns/fill-%d", i), IPv6), []netip.Addr{netip.AddrFrom16(ip)}); err != nil {
			b.Fatal(err)
		}
	}
	benchAssignRelease(b, a, benchService("ns/bench", IPv6))
}

// BenchmarkMemoryPerIP reports the heap the allocator uses per assigned address, for 100k
// Services each holding one address, every address its own run (the worst case for the tree).
func BenchmarkMemoryPerIP(b *testing.B) {
	const n = 100_000
	svcs := make([]*Service, n)
	ips := make([][]netip.Addr, n)
	base := addrValue(addr("10.0.0.0"))
	for i := range svcs {
		svcs[i] = benchService(fmt.Sprintf("ns/svc-%d", i), IPv4)
		v, _ := base.Add(ipset.From64(uint64(2 * i)))
		ips[i] = []netip.Addr{valueAddr(v, IPv4)}
	}
	var perIP float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		a, err := New([]Pool{pool("p", cidr("10.0.0.0/8"))})
		if err != nil {
			b.Fatal(err)
		}
		for i, svc := range svcs {
			if _, err := a.Reserve(svc, ips[i]); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perIP = float64(after.HeapAlloc-before.HeapAlloc) / n
		if a.pools.byName["p"].spaces[0].taken.Runs() != n {
			b.Fatal("addresses are not in separate runs")
		}
		runtime.KeepAlive(a)
	}
	b.ReportMetric(perIP, "B/ip")
}

// BenchmarkAssignSkip8 assigns and releases one address in a /8 that skips its network and
// broadcast addresses (the default for CIDRs), one of them held from before: skipping costs
// nothing per address of the pool.
func BenchmarkAssignSkip8(b *testing.B) {
	a, err := New([]Pool{netPool("p", "10.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Reserve(benchService("ns/old", IPv4), []netip.Addr{addr("10.255.255.255")}); err != nil {
		b.Fatal(err)
	}
	benchAssignRelease(b, a, benchService("ns/bench", IPv4))
}
