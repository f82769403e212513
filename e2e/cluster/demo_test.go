package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestDemo runs `make demo`'s demo on the cluster: every step succeeds, the curl steps
// show replies from the backend pods (node names), the router's routes have a next hop per node,
// and the hints name the cluster's kubeconfig.
func TestDemo(t *testing.T) {
	c := requireCluster(t)
	ctx := deadline(t, 4*time.Minute)
	t.Cleanup(func() {
		var nss corev1.NamespaceList
		if err := c.Client.List(context.Background(), &nss); err == nil {
			for i := range nss.Items {
				if strings.HasPrefix(nss.Items[i].Name, "demo-") {
					_ = c.Client.Delete(context.Background(), &nss.Items[i])
				}
			}
		}
	})
	var out strings.Builder
	hints, err := c.Demo(ctx, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"get nodes -o wide", "herald-speaker-", "herald-controller-", "web-l2", "web-bgp", "servicel2statuses", "nexthop via 198.51.100.11", "nft list table ip kube-proxy | grep"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	replies := 0
	for _, line := range strings.Split(text, "\n") {
		if line == "n1" || line == "n2" || line == "n3" {
			replies++
		}
	}
	if replies < 4 {
		t.Errorf("the demo shows %d curl replies from the pods, want 4 (two families, two Services)", replies)
	}
	if !strings.Contains(hints, c.AdminKubeconfig) {
		t.Errorf("hints do not name the kubeconfig:\n%s", hints)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
