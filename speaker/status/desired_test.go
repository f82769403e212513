package status

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/plan"
)

// FromAssignments takes the assignments in any order (the engine's map order) and gives what it
// gives for them sorted, as a plan has them: each Service's interfaces in the order of its IPs, so that
// the status written does not change from one computation to the next.
func TestFromAssignmentsInAnyOrderIsAsSorted(t *testing.T) {
	ip := netip.MustParseAddr
	l2 := []plan.L2Assignment{
		{Service: "app/web", IP: ip("192.0.2.1"), Interfaces: []string{"eth0"}},
		{Service: "app/web", IP: ip("192.0.2.2"), Interfaces: []string{"eth1", "eth0"}},
		{Service: "app/web", IP: ip("2001:db8::1"), Interfaces: []string{"eth2"}},
		{Service: "app/db", IP: ip("192.0.2.9"), Interfaces: []string{"bond0"}},
	}
	bgp := []plan.BGPAssignment{
		{Service: "app/web", IP: ip("192.0.2.1"), Peers: []string{"tor-a"}},
		{Service: "app/web", IP: ip("192.0.2.2"), Peers: []string{"tor-b"}},
		{Service: "app/api", IP: ip("192.0.2.7"), Peers: []string{"tor-a"}},
	}
	sorted := FromAssignments(l2, bgp, "n1", []string{"n1", "n2"})
	if got := sorted.L2[Name("n1", "app/web")].Interfaces; !cmp.Equal(got, []v1beta1.InterfaceInfo{{Name: "eth0"}, {Name: "eth1"}, {Name: "eth2"}}) {
		t.Fatalf("app/web's interfaces from the sorted plan: %+v, want eth0, eth1, eth2", got)
	}
	if !cmp.Equal(sorted.Sweep, map[string]bool{"n1": true, "n2": true}) {
		t.Errorf("sweep of the first live speaker: %v, want n1 and n2", sorted.Sweep)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		sl2, sbgp := append([]plan.L2Assignment(nil), l2...), append([]plan.BGPAssignment(nil), bgp...)
		r.Shuffle(len(sl2), func(i, j int) { sl2[i], sl2[j] = sl2[j], sl2[i] })
		r.Shuffle(len(sbgp), func(i, j int) { sbgp[i], sbgp[j] = sbgp[j], sbgp[i] })
		if diff := cmp.Diff(sorted, FromAssignments(sl2, sbgp, "n1", []string{"n1", "n2"})); diff != "" {
			t.Fatalf("shuffle %d: FromAssignments differs from the sorted input's (-want +got):\n%s", i, diff)
		}
	}
}
