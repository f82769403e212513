package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/cache"
	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// The speaker's cache gives its ServiceBGPStatus objects their node's shared label map (nodeLabels), and
// its status writer updates their status from the cache's copy: the API server keeps every label
// the object was created with (the /status subresource takes only the status), and the cache still
// selects the node's objects and tells their Service.
func TestStatusUpdateFromTheCacheKeepsTheLabels(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	hns := env.NewNamespace(t, "herald")
	node := "n1-" + hns
	want := map[string]string{LabelNode: node, LabelServiceName: "web", LabelServiceNamespace: "app"}
	st := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "n1-app-web", Namespace: hns, Labels: want}}
	if err := c.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	opts := CacheOptions(hns, node)
	ch, err := cache.New(testWatcher(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ch.Start(ctx) }()
	if !ch.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	var cached v1beta1.ServiceBGPStatus
	eventually(t, "the object in the cache", func() bool {
		return ch.Get(ctx, client.ObjectKeyFromObject(st), &cached) == nil
	})
	if diff := cmp.Diff(map[string]string{LabelNode: node}, cached.Labels); diff != "" {
		t.Errorf("cached labels (-want +got):\n%s", diff)
	}
	if cached.Status.ServiceName != "web" || cached.Status.ServiceNamespace != "app" {
		t.Errorf("cached status names Service %s/%s, want app/web (from the labels)", cached.Status.ServiceNamespace, cached.Status.ServiceName)
	}
	var mine v1beta1.ServiceBGPStatusList
	if err := ch.List(ctx, &mine, kclient.InNamespace(hns), kclient.MatchingLabels{LabelNode: node}); err != nil || len(mine.Items) != 1 {
		t.Fatalf("the cache's list of the node's objects: %d objects, %v; want 1", len(mine.Items), err)
	}

	cached.Status = v1beta1.ServiceBGPStatusStatus{Node: node, ServiceName: "web", ServiceNamespace: "app",
		Peers: []string{"tor"}}
	if err := c.Status().Update(ctx, &cached); err != nil {
		t.Fatal(err)
	}
	var stored v1beta1.ServiceBGPStatus
	if err := c.Get(ctx, client.ObjectKeyFromObject(st), &stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored.Labels); diff != "" {
		t.Errorf("labels on the API server after a status update from the cache (-want +got):\n%s", diff)
	}
	if stored.Status.Node != node || len(stored.Status.Peers) != 1 {
		t.Errorf("status on the API server: %+v, want the update", stored.Status)
	}
}
