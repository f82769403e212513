package agent

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestResyncConvergesWithoutRebuildingStatus: a resync that changes nothing converges this
// node's status objects again (one removed behind the speaker's back is written again) without
// building their desired state anew (herald_speaker_status_builds_total stays), and a change of
// the live speakers builds it again.
func TestResyncConvergesWithoutRebuildingStatus(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	app := env.NewNamespace(t, "app")
	node := "n1-" + hns
	createReadyNode(t, c, node)
	for _, o := range []client.Object{
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.100-198.51.100.119"}}},
		&v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: hns}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	createLBService(t, c, app, "web", "198.51.100.105")
	createReadyEndpoint(t, c, app, "web")
	j := &journal{members: []string{node}}
	members := fakeMembers{j: j, changes: make(chan struct{}, 8)}
	a, reg, _ := runAgent(t, node, hns, fakeL2{j}, fakeBGP{j}, members)

	mine := func() *v1beta1.ServiceL2Status {
		var l v1beta1.ServiceL2StatusList
		if err := c.List(ctx, &l, client.InNamespace(hns), client.MatchingLabels{LabelNode: node, LabelServiceName: "web", LabelServiceNamespace: app}); err != nil || len(l.Items) != 1 {
			return nil
		}
		return &l.Items[0]
	}
	eventually(t, "the ServiceL2Status of web", func() bool { return mine() != nil })
	builds := func() float64 { return metricValue(t, reg, "herald_speaker_status_builds_total", "", "") }
	before := builds()
	if before < 1 {
		t.Fatalf("status builds = %v after the status was written, want at least 1", before)
	}
	resync := func() {
		t.Helper()
		n := metricValue(t, reg, "herald_speaker_sync_seconds", "", "")
		a.enqueue(syncResync)
		eventually(t, "a resync to complete", func() bool { return metricValue(t, reg, "herald_speaker_sync_seconds", "", "") > n })
	}
	for range 3 {
		resync()
	}
	if got := builds(); got != before {
		t.Errorf("status builds = %v after three resyncs that changed nothing, want %v", got, before)
	}

	old := mine()
	if err := c.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion seen", func() bool { o := mine(); return o == nil || o.UID != old.UID })
	resync()
	eventually(t, "the removed ServiceL2Status written again after a resync", func() bool {
		o := mine()
		return o != nil && o.UID != old.UID && o.Status.Node == node && o.Status.ServiceName == "web"
	})
	if got := builds(); got != before {
		t.Errorf("status builds = %v after a resync that rewrote a removed object, want %v", got, before)
	}

	members.setAlive(node, "n2-"+hns)
	eventually(t, "the desired status built again for new live speakers", func() bool { return builds() > before })
}
