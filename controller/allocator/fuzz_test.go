package allocator

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzKeys are the Services the fuzzer plays with.
var fuzzKeys = []string{"ns/s0", "ns/s1", "ns/s2", "ns/s3", "ns/s4", "ns/s5"}

// fuzzAddrs are the addresses the fuzzer requests or restores: inside, at the edges of, and
// outside the fuzz pools, skipped ones included.
var fuzzAddrs = addrs("10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1", "fd00::1", "fd00::3",
	"10.0.2.1", "fd00:2::1", "10.0.3.0", "192.0.2.1", "fd99::1", "10.0.1.2",
	"10.0.4.0", "10.0.4.3", "fd00:4::", "10.0.4.1")

// fuzzPools returns a pool configuration chosen by the bits of m.
func fuzzPools(m byte) []Pool {
	v4a := Pool{Name: "v4a", Ranges: []Range{span("10.0.0.254", "10.0.1.1")}, AutoAssign: true, AvoidBuggyIPs: m&1 != 0}
	if m&2 != 0 {
		v4a.Ranges = []Range{span("10.0.0.254", "10.0.0.255"), span("10.0.1.2", "10.0.1.2")}
	}
	v6 := pool("v6a", cidr("fd00::/127"))
	if m&4 != 0 {
		v6.Ranges = []Range{cidr("fd00::/126")}
	}
	if m&8 != 0 {
		v6.Name = "v6b"
	}
	dual := Pool{Name: "dual", Ranges: []Range{cidr("10.0.2.0/31"), cidr("fd00:2::/127")}, AutoAssign: true, Restricted: true, Priority: int(m>>4) & 1}
	if m&16 != 0 {
		dual.Match = labelIs("tier", "gold")
	}
	manual := Pool{Name: "manual", Ranges: []Range{cidr("10.0.3.0/32")}, AutoAssign: m&32 != 0}
	// vnet skips the network and broadcast addresses of its CIDRs, as the reconciler does by
	// default, or not (allocateNetworkAndBroadcast), by the parity of the low three bits, so
	// that most pool changes flip it.
	vnet := netPool("vnet", "10.0.4.0/30", "fd00:4::/126")
	if bits.OnesCount8(m&7)%2 == 1 {
		vnet.Skip = nil
	}
	pools := []Pool{v4a, dual, manual, vnet}
	if m&64 == 0 {
		pools = append(pools, v6)
	}
	if m&128 != 0 && m&3 == 3 {
		pools = append(pools, pool("bad", cidr("10.0.2.1/32"))) // overlaps dual
	}
	return pools
}

// fuzzService builds a Service description from four bytes.
func fuzzService(key string, b [4]byte) Service {
	s := Service{Key: key, Selector: []string{"app=x", "app=y"}[b[0]>>3&1]}
	s.SharingKey = []string{"", "k1", "k2", "k1"}[b[0]&3]
	s.ExternalTrafficPolicyLocal = b[0]&4 != 0
	for i, p := range []Port{{80, "TCP"}, {443, "TCP"}, {53, "UDP"}, {53, "TCP"}} {
		if b[1]&(1<<i) != 0 {
			s.Ports = append(s.Ports, p)
		}
	}
	s.FamilyPolicy = []FamilyPolicy{SingleStack, PreferDualStack, RequireDualStack, ""}[b[2]&3]
	switch b[2] >> 2 & 3 {
	case 0:
		s.Families = []Family{IPv4}
	case 1:
		s.Families = []Family{IPv6}
	case 2:
		s.Families = []Family{IPv4, IPv6}
	}
	if s.FamilyPolicy == SingleStack || s.FamilyPolicy == "" {
		if len(s.Families) == 2 {
			s.Families = s.Families[:1]
		}
	} else if len(s.Families) == 1 && b[2]&16 != 0 {
		s.Families = append(s.Families, s.Families[0].other())
	}
	if b[2]&32 != 0 {
		slices.Reverse(s.Families)
	}
	s.Pool = []string{"", "", "", "", "vnet", "dual", "manual", "v6a"}[b[3]&7]
	if b[3]&0x38 == 0x38 {
		s.Pool = "gone"
	}
	if b[3]&8 != 0 {
		s.Labels = map[string]string{"tier": "gold"}
	}
	if n := int(b[3] >> 4); n < 4 {
		i := int(b[0]>>4) % len(fuzzAddrs)
		s.RequestedIPs = []netip.Addr{fuzzAddrs[i]}
		if n == 0 {
			s.RequestedIPs = append(s.RequestedIPs, fuzzAddrs[(i+4)%len(fuzzAddrs)])
		}
	}
	return s
}

type pair struct {
	svc string
	ip  netip.Addr
}

func snapshot(a *Allocator) map[pair]string {
	out := map[pair]string{}
	for _, k := range fuzzKeys {
		for _, as := range a.Assignments(k) {
			out[pair{k, as.IP}] = as.Pool
		}
	}
	return out
}

// diffPairs returns the pairs in x but not in y, as released-style strings, sorted.
func diffPairs(x, y map[pair]string) []string {
	var out []string
	for p, pool := range x {
		if _, ok := y[p]; !ok {
			out = append(out, fmt.Sprintf("%s %s@%s", p.svc, p.ip, pool))
		}
	}
	slices.Sort(out)
	return out
}

func sortedReleased(as []Assignment) []string {
	out := fmtReleased(as)
	slices.Sort(out)
	return out
}

// runOps interprets data as operations on an allocator, checking invariants after each, and
// returns a trace of the results.
func runOps(t *testing.T, data []byte) []string {
	mask := byte(0)
	a, err := New(fuzzPools(mask))
	if err != nil {
		t.Fatal(err)
	}
	var trace []string
	for len(data) >= 6 {
		op, key, arg := data[0], fuzzKeys[int(data[1])%len(fuzzKeys)], data[2]
		svc := fuzzService(key, [4]byte(data[2:6]))
		data = data[6:]
		before := snapshot(a)
		var what string
		var released []Assignment
		var mayChange string // the only Service that may gain addresses
		switch op % 8 {
		case 0, 1, 2:
			what = "assign " + key
			res, err := a.Assign(&svc)
			trace = append(trace, fmt.Sprint(what, res, err))
			released, mayChange = res.Released, key
			if diff := cmp.Diff(fmtAssigned(a.Assignments(key)), fmtAssigned(res.Assigned)); diff != "" {
				t.Fatalf("%s: Result.Assigned differs from Assignments (-want +got):\n%s", what, diff)
			}
			checkAssignResult(t, &svc, res, err, before, a)
		case 3:
			what = "release " + key
			released = a.Release(key)
			trace = append(trace, fmt.Sprint(what, released))
			if got := a.Assignments(key); got != nil {
				t.Fatalf("%s: still holds %v", what, got)
			}
		case 4:
			mask = arg
			what = fmt.Sprintf("pools %08b", mask)
			descs := map[string]Service{}
			for k, st := range a.services {
				descs[k] = st.svc
			}
			var err error
			released, err = a.SetPools(fuzzPools(mask))
			trace = append(trace, fmt.Sprint(what, released, err))
			if err != nil && !errors.Is(err, ErrInvalidPool) {
				t.Fatalf("%s: %v", what, err)
			}
			// An address is released only when no pool the Service may use has it any more,
			// never because the new pool skips it.
			for _, r := range released {
				svc := descs[r.Service]
				if p := a.pools.poolOf(r.IP); p != nil && mayUse(p, &svc) == nil {
					t.Fatalf("%s: released %s of %s, still an address of pool %s that it may use", what, r.IP, r.Service, p.Name)
				}
			}
		case 5:
			what = "restore"
			a = restoreCopy(t, a, fuzzPools(mask))
			trace = append(trace, what)
		default:
			what = "reserve " + key
			ip := fuzzAddrs[int(op>>3)%len(fuzzAddrs)]
			res, err := a.Reserve(&svc, []netip.Addr{ip})
			trace = append(trace, fmt.Sprint(what, ip, res, err))
			released, mayChange = res.Released, key
			_, had := before[pair{key, ip}]
			if err != nil && !had && slices.ContainsFunc(res.Assigned, func(as Assignment) bool { return as.IP == ip }) {
				t.Fatalf("%s %s: error %v but the address was taken", what, ip, err)
			}
			if err == nil && !slices.ContainsFunc(res.Assigned, func(as Assignment) bool { return as.IP == ip }) {
				t.Fatalf("%s %s: no error but the address is not held: %v", what, ip, res.Assigned)
			}
		}
		after := snapshot(a)
		if diff := cmp.Diff(diffPairs(before, after), sortedReleased(released)); diff != "" {
			t.Fatalf("%s: released addresses (-lost +reported):\n%s", what, diff)
		}
		for p := range after {
			if _, ok := before[p]; !ok && p.svc != mayChange {
				t.Fatalf("%s: %s gained %s", what, p.svc, p.ip)
			}
		}
		if err := checkInvariants(a); err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
	}
	return trace
}

// checkAssignResult checks the dual-stack and all-or-nothing rules on one Assign.
func checkAssignResult(t *testing.T, svc *Service, res Result, err error, before map[pair]string, a *Allocator) {
	t.Helper()
	gained := 0
	for _, as := range res.Assigned {
		if _, ok := before[pair{svc.Key, as.IP}]; !ok {
			gained++
		}
	}
	if err != nil {
		if gained > 0 {
			t.Fatalf("assign %s failed (%v) but gained addresses: %v", svc.Key, err, res.Assigned)
		}
		return
	}
	norm, rq, _ := normalize(svc)
	switch {
	case rq.policy == RequireDualStack && len(res.Assigned) != 2:
		t.Fatalf("assign %s: RequireDualStack succeeded with %v", svc.Key, res.Assigned)
	case rq.policy != PreferDualStack && len(res.Assigned) != len(rq.fams):
		t.Fatalf("assign %s: %s succeeded with %v for families %v", svc.Key, rq.policy, res.Assigned, rq.fams)
	case len(res.Assigned)+len(res.Missing) != len(rq.fams):
		t.Fatalf("assign %s: assigned %v, missing %v, wanted %v", svc.Key, res.Assigned, res.Missing, rq.fams)
	}
	for i, as := range res.Assigned {
		if want := rq.fams; FamilyOf(as.IP) != want[i] && len(res.Missing) == 0 {
			t.Fatalf("assign %s: %v not in family order %v", svc.Key, res.Assigned, norm.Families)
		}
		// A new address (requested, shared or found) is one its pool hands out.
		if _, had := before[pair{svc.Key, as.IP}]; !had && !a.pools.byName[as.Pool].handsOut(as.IP) {
			t.Fatalf("assign %s: got %s, which pool %s skips", svc.Key, as.IP, as.Pool)
		}
	}
}

// restoreCopy rebuilds the allocator from its assignments, as the controller does at
// start-up, and checks that nothing is lost.
func restoreCopy(t *testing.T, a *Allocator, pools []Pool) *Allocator {
	t.Helper()
	if _, err := New(pools); err != nil {
		if errors.Is(err, ErrInvalidPool) {
			return a // the current pools were rejected; a keeps the previous ones
		}
		t.Fatal(err)
	}
	if err := checkInvariants(a); err != nil {
		t.Fatal(err)
	}
	// Rebuild with the pools a actually has.
	b := &Allocator{pools: a.pools, services: map[string]*serviceState{}, ips: map[Uint128]*serviceState{}, multi: map[Uint128][]*serviceState{}, shared: map[string][]netip.Addr{}}
	b.pools, _ = buildPools(poolsOf(a))
	for _, k := range fuzzKeys {
		st := a.services[k]
		if st == nil {
			continue
		}
		var ips []netip.Addr
		for _, as := range a.Assignments(k) {
			ips = append(ips, as.IP)
		}
		svc := st.svc
		res, err := b.Reserve(&svc, ips)
		if err != nil || len(res.Released) > 0 {
			t.Fatalf("restoring %s %v: %v, released %v", k, ips, err, res.Released)
		}
	}
	if diff := cmp.Diff(fmt.Sprint(snapshot(a)), fmt.Sprint(snapshot(b))); diff != "" {
		t.Fatalf("restore changed assignments (-before +after):\n%s", diff)
	}
	return b
}

func poolsOf(a *Allocator) []Pool {
	var out []Pool
	for _, p := range a.pools.sorted {
		out = append(out, p.Pool)
	}
	return out
}

func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 1, 9, 0, 0, 1, 1, 2, 9, 0, 4, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x10, 0x22, 4, 0xff, 0, 0, 0, 0})
	// vnet: a restored network address, then a sharer that must not get it.
	f.Add([]byte{102, 0, 1, 1, 0, 0x44, 0, 1, 1, 2, 0, 0x44})
	// vnet: the network address handed out with skipping off, kept when skipping comes back
	// on and across a restore; the next Service gets the next address.
	f.Add([]byte{4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x44, 4, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x44})
	f.Fuzz(func(t *testing.T, data []byte) {
		first := runOps(t, data)
		if diff := cmp.Diff(first, runOps(t, data)); diff != "" {
			t.Fatalf("same operations, different results (-first +second):\n%s", diff)
		}
	})
}

// TestAllocatorRandom runs the fuzz harness over pseudo-random operation sequences, so that
// plain go test covers it too.
func TestAllocatorRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	for i := range 300 {
		data := make([]byte, 6*(20+r.IntN(100)))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			first := runOps(t, data)
			if diff := cmp.Diff(first, runOps(t, data)); diff != "" {
				t.Fatalf("same operations, different results (-first +second):\n%s", diff)
			}
		})
	}
}
