package inspect

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/herald-lb/herald/api/v1beta1"
)

func TestPools(t *testing.T) {
	c := cluster(func(c *Cluster) {
		c.Snapshot.Pools[0].Status = v1beta1.IPAddressPoolStatus{AssignedIPv4: "1", AvailableIPv4: "19", AssignedIPv6: "1", AvailableIPv6: "254",
			Conditions: []metav1.Condition{{Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue}}}
		c.Snapshot.Pools[1].Spec.AutoAssign = ptr.To(false)
		c.Snapshot.Pools[2].Status.Conditions = []metav1.Condition{{Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse,
			Message: `spec.addresses[0] "198.51.100.160/28": overlaps IPAddressPool x`}}
		big := service("big")
		big.Annotations = map[string]string{v1beta1.AnnotationAddressPool: "l2"}
		other := service("other")
		other.Spec.LoadBalancerClass = ptr.To("example.com/lb")
		c.Services = []corev1.Service{service("web", "198.51.100.101", "2001:db8:1::5"), service("web2", "198.51.100.102"), big, service("any"), other}
		c.Events = []corev1.Event{event("big", ReasonAllocationFailed, "no available IPv4 address in pool l2", 10*time.Second)}
	})
	r := Pools(c)
	want := PoolsReport{
		Pools: []PoolReport{
			{Name: "bgp", Addresses: []string{"198.51.100.192/28"}, Families: []FamilyUsage{{Family: "IPv4"}}},
			{Name: "dark", Addresses: []string{"198.51.100.160/28"}, AutoAssign: true, Valid: "False",
				ValidMessage: `spec.addresses[0] "198.51.100.160/28": overlaps IPAddressPool x`, Families: []FamilyUsage{{Family: "IPv4"}}},
			{Name: "l2", Addresses: []string{"198.51.100.100-198.51.100.119", "2001:db8:1::/120"}, AutoAssign: true, Valid: "True", Families: []FamilyUsage{
				{Family: "IPv4", Assigned: "1", Available: "19", Services: 2},
				{Family: "IPv6", Assigned: "1", Available: "254", Services: 1},
			}},
		},
		Pending: []PendingService{
			{Namespace: "shop", Name: "any", Reason: "no IP assigned and no AllocationFailed event: is herald-controller running (kubectl get pods -n herald-system)?"},
			{Namespace: "shop", Name: "big", Pool: "l2", Reason: "AllocationFailed: no available IPv4 address in pool l2 (10s ago)"},
		},
		Problems: 3,
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("Pools (-want +got):\n%s", diff)
	}

	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	table := `NAME   FAMILY   ADDRESSES                       AUTO ASSIGN   SERVICES   ASSIGNED   AVAILABLE   VALID
bgp    IPv4     198.51.100.192/28               false         0          <none>     <none>      <none>
dark   IPv4     198.51.100.160/28               true          0          <none>     <none>      False
l2     IPv4     198.51.100.100-198.51.100.119   true          2          1          19          True
l2     IPv6     2001:db8:1::/120                true          1          1          254         True

IPAddressPool dark is not valid: spec.addresses[0] "198.51.100.160/28": overlaps IPAddressPool x

2 Service(s) waiting for an address:
NAMESPACE   NAME   POOL    REASON
shop        any    <any>   no IP assigned and no AllocationFailed event: is herald-controller running (kubectl get pods -n herald-system)?
shop        big    l2      AllocationFailed: no available IPv4 address in pool l2 (10s ago)
`
	if diff := cmp.Diff(strings.Split(table, "\n"), strings.Split(b.String(), "\n")); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestAge(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {90 * time.Second, "1m30s"}, {5*time.Minute + 3*time.Second, "5m"},
		{3*time.Hour + 5*time.Minute, "3h"}, {72 * time.Hour, "3d"},
	} {
		if got := age(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("age(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := age(now, time.Time{}); got != "" {
		t.Errorf("age(zero) = %q, want empty", got)
	}
}
