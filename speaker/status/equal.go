package status

import (
	"hash/maphash"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/herald-lb/herald/api/v1beta1"
)

// The writer compares every status object of this node with the one it wants at each resync
// (10,000 of each at 10,000 Services). equality.Semantic.DeepEqual walks them by reflection and
// allocates for fields it visits; these typed comparisons decide the same (nil and empty slices are
// equal, times are compared as instants) without either. equal_test.go checks them against
// equality.Semantic and fails when a status type gains a field they do not compare.

// l2StatusEqual reports whether two ServiceL2Status statuses say the same.
func l2StatusEqual(a, b v1beta1.ServiceL2StatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Interfaces, b.Interfaces) && slices.EqualFunc(a.Conflicts, b.Conflicts, l2ConflictEqual)
}

func l2ConflictEqual(a, b v1beta1.L2Conflict) bool {
	return a.IP == b.IP && a.Interface == b.Interface && a.MAC == b.MAC && a.Node == b.Node &&
		a.Action == b.Action && a.Since.Equal(&b.Since)
}

// bgpStatusEqual reports whether two ServiceBGPStatus statuses say the same.
func bgpStatusEqual(a, b v1beta1.ServiceBGPStatusStatus) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace &&
		slices.Equal(a.Peers, b.Peers)
}

// sessionStatusEqual reports whether two BGPSessionStatus statuses say the same. There is one per
// BGP peer, so the reflective comparison is kept.
func sessionStatusEqual(a, b v1beta1.BGPSessionStatusStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// equal reports whether d and o desire the same: the same objects with the same statuses, and the
// same sweep (none, or the same live speakers).
func (d Desired) equal(o Desired) bool {
	return maps.EqualFunc(d.L2, o.L2, l2StatusEqual) && maps.EqualFunc(d.BGP, o.BGP, bgpStatusEqual) &&
		maps.EqualFunc(d.Sessions, o.Sessions, sessionStatusEqual) &&
		(d.Sweep == nil) == (o.Sweep == nil) && maps.Equal(d.Sweep, o.Sweep)
}

// sumSeed keys L2Sum: sums are compared within one process only.
var sumSeed = maphash.MakeSeed()

// L2Sum is a 64-bit hash of what a ServiceL2Status status says: two statuses have the same sum when
// l2StatusEqual holds (nil and empty slices alike, times as instants) and, but for a chance of
// 2^-64, only then. The speaker's store keeps it for each of its own objects in place of the
// status (Held.Sum), and the writer compares it with the sum of the status it wants.
func L2Sum(st v1beta1.ServiceL2StatusStatus) uint64 {
	var h maphash.Hash
	h.SetSeed(sumSeed)
	str := func(s string) {
		maphash.WriteComparable(&h, len(s))
		h.WriteString(s)
	}
	str(st.Node)
	str(st.ServiceName)
	str(st.ServiceNamespace)
	maphash.WriteComparable(&h, len(st.Interfaces))
	for _, i := range st.Interfaces {
		str(i.Name)
		str(i.MAC)
	}
	maphash.WriteComparable(&h, len(st.Conflicts))
	for _, c := range st.Conflicts {
		str(c.IP)
		str(c.Interface)
		str(c.MAC)
		str(c.Node)
		str(c.Action)
		var since int64
		if !c.Since.IsZero() {
			since = c.Since.UnixNano()
		}
		maphash.WriteComparable(&h, since)
	}
	return h.Sum64()
}
