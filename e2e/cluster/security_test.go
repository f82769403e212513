package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// TestWebhookThroughService: the webhook configuration installed from manifests/ calls the
// controller through its Service (not a URL), and a pool that overlaps the lab's layer-2 pool,
// which only the webhook can see, is refused by it; a pool that overlaps nothing is admitted.
func TestWebhookThroughService(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, time.Minute)
	wh, err := c.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, cluster.WebhookConfig, metav1.GetOptions{})
	must(t, err)
	for _, w := range wh.Webhooks {
		s := w.ClientConfig.Service
		if w.ClientConfig.URL != nil || s == nil || s.Name != cluster.WebhookService || s.Namespace != cluster.Namespace {
			t.Errorf("webhook %s calls %+v, want the Service %s/%s", w.Name, w.ClientConfig, cluster.Namespace, cluster.WebhookService)
		}
	}
	bad := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace, Name: "overlaps-l2"},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{c.Plan.L2Pool[0]}},
	}
	err = c.Client.Create(ctx, bad)
	if err == nil {
		_ = c.Client.Delete(ctx, bad)
		t.Fatalf("a pool overlapping pool %s (%s) was admitted", lab.L2PoolName, c.Plan.L2Pool[0])
	}
	if !strings.Contains(err.Error(), `admission webhook "config.herald.dev" denied the request`) {
		t.Fatalf("refused, but not by Herald's webhook: %v", err)
	}
	t.Logf("refused: %v", err)
	good := &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace, Name: "spare"},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.120/30"}, AutoAssign: new(bool)},
	}
	must(t, c.Client.Create(ctx, good))
	must(t, c.Client.Delete(ctx, good))
}

// TestRBACAsShipped asks the API server (SubjectAccessReview) what Herald's ServiceAccounts may
// do: the speaker cannot write Services or their status, nor Secrets; the controller can write
// Service status but cannot create or delete Services. Herald runs with these accounts and no
// other credentials in this cluster, so every other test also proves they are sufficient.
func TestRBACAsShipped(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, time.Minute)
	speaker := "system:serviceaccount:" + cluster.Namespace + ":" + cluster.SpeakerAccount
	controller := "system:serviceaccount:" + cluster.Namespace + ":" + cluster.ControllerAccount
	for _, tc := range []struct {
		user, verb, group, resource, sub, ns string
		allowed                              bool
	}{
		{speaker, "update", "", "services", "", "default", false},
		{speaker, "patch", "", "services", "", "default", false},
		{speaker, "update", "", "services", "status", "default", false},
		{speaker, "create", "", "services", "", "default", false},
		{speaker, "delete", "", "services", "", "default", false},
		{speaker, "update", "", "secrets", "", cluster.Namespace, false},
		{speaker, "get", "", "secrets", "", "default", false},
		{speaker, "watch", "", "services", "", "", true},
		{speaker, "list", "discovery.k8s.io", "endpointslices", "", "", true},
		{speaker, "create", "herald.dev", "servicel2statuses", "", cluster.Namespace, true},
		// On SIGTERM the speaker reads its own Pod and DaemonSet to tell a restart from going away.
		{speaker, "get", "", "pods", "", cluster.Namespace, true},
		{speaker, "list", "", "pods", "", cluster.Namespace, false},
		{speaker, "get", "", "pods", "", "default", false},
		{speaker, "get", "apps", "daemonsets", "", cluster.Namespace, true},
		{speaker, "update", "apps", "daemonsets", "", cluster.Namespace, false},
		{controller, "patch", "", "services", "status", "default", true},
		{controller, "update", "", "services", "status", "default", false},
		{controller, "create", "", "services", "", "default", false},
		{controller, "delete", "", "services", "", "default", false},
		{controller, "update", "", "services", "", "default", false},
	} {
		res := tc.resource
		if tc.sub != "" {
			res += "/" + tc.sub
		}
		name := fmt.Sprintf("%s %s %s", strings.TrimPrefix(tc.user, "system:serviceaccount:"+cluster.Namespace+":"), tc.verb, res)
		t.Run(name, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   tc.user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + cluster.Namespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: tc.ns, Verb: tc.verb, Group: tc.group, Resource: tc.resource, Subresource: tc.sub,
				},
			}}
			must(t, c.Client.Create(ctx, sar))
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, tc.allowed, sar.Status.Reason)
			}
		})
	}
	// The same question as a user asks it.
	out, err := c.Kubectl(ctx, "auth", "can-i", "update", "services", "--as", speaker, "-n", "default")
	if err == nil || strings.TrimSpace(out) != "no" {
		t.Errorf("kubectl auth can-i update services --as %s: %q (%v), want no", speaker, out, err)
	}
}
