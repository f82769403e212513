package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// clearConfiguration deletes every Herald configuration object of the namespace (with no webhook
// installed), so that a test starts from what it creates.
func clearConfiguration(t *testing.T) {
	t.Helper()
	ensureNamespace(t, heraldNS)
	for _, o := range []client.Object{&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.BFDProfile{}, &v1beta1.Community{}} {
		if err := env.Client.DeleteAllOf(t.Context(), o, client.InNamespace(heraldNS)); err != nil {
			t.Fatalf("deleting every %T: %v", o, err)
		}
	}
}

// validCondition waits for the Valid condition of obj (kind/name in heraldNS) to have the given
// status and a message holding every want string.
func validCondition(t *testing.T, obj client.Object, status metav1.ConditionStatus, want ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c, ok := obj.(interface{ GetConditions() []metav1.Condition })
		if !ok {
			t.Fatalf("%T has no conditions", obj)
		}
		got := meta.FindStatusCondition(c.GetConditions(), v1beta1.ConditionValid)
		if got == nil {
			return fmt.Errorf("%T %s: no Valid condition yet", obj, obj.GetName())
		}
		if got.Status != status {
			return fmt.Errorf("%T %s: Valid=%s (%s: %s), want %s", obj, obj.GetName(), got.Status, got.Reason, got.Message, status)
		}
		for _, w := range want {
			if !strings.Contains(got.Message, w) {
				return fmt.Errorf("%T %s: Valid message %q does not name %q", obj, obj.GetName(), got.Message, w)
			}
		}
		if got.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("%T %s: Valid is for generation %d, the object is at %d", obj, obj.GetName(), got.ObservedGeneration, obj.GetGeneration())
		}
		return nil
	})
}

// waitMetrics waits until the controller's /metrics holds every want line.
func waitMetrics(t *testing.T, p *controllerProc, want ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		code, body, err := httpGet("http://" + p.metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/metrics = %d: %s", code, body)
		}
		lines := strings.Split(body, "\n")
		for _, w := range want {
			if !slices.Contains(lines, w) {
				return fmt.Errorf("/metrics has no line %q", w)
			}
		}
		return nil
	})
}

// lintMetrics runs promlint over the binary's /metrics: Herald's own metrics must pass; problems
// of the libraries' metrics (controller-runtime, client-go) are only logged.
func lintMetrics(t *testing.T, p *controllerProc) {
	t.Helper()
	_, body, err := httpGet("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("linting /metrics: %v", err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "herald_") {
			t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
		} else {
			t.Logf("promlint (not Herald's): %s: %s", pr.Metric, pr.Text)
		}
	}
	if !strings.Contains(body, "# TYPE herald_pool_addresses gauge") {
		t.Errorf("/metrics lacks herald_pool_addresses:\n%s", body)
	}
}

// TestInvalidConfigurationDoesNotLockOperatorsOut starts the controller binary while the
// configuration is invalid (two overlapping pools, made with the webhook off). The Pod must be
// Ready at once (in a cluster, the webhook Service has no endpoint until then, and the webhook
// fails closed), the invalid pool must say why, and a fix through the API must be admitted and
// take effect.
func TestInvalidConfigurationDoesNotLockOperatorsOut(t *testing.T) {
	testenv.Require(t, env)
	clearConfiguration(t)
	create(t, newPool("first", "198.51.100.0/28"))
	create(t, newPool("second", "198.51.100.8-198.51.100.20"))

	p := startWebhook(t)
	eventually(t, 15*time.Second, func() error {
		code, body, err := httpGet("http://" + p.healthAddr + "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz = %d: %s", code, body)
		}
		return nil
	})
	validCondition(t, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "second"}},
		metav1.ConditionFalse, `spec.addresses[0] "198.51.100.8-198.51.100.20"`, "overlap")
	// The binary's metrics say so too (the alerts HeraldConfigInvalid and HeraldConfigObjectsInvalid).
	waitMetrics(t, p, `herald_config_valid 0`, `herald_config_invalid_objects{kind="IPAddressPool"} 1`,
		`herald_config_invalid_objects{kind="BGPPeer"} 0`)

	// The fix: move the second pool away.
	if err := updatePool(t, "second", func(p *v1beta1.IPAddressPool) { p.Spec.Addresses = []string{"203.0.113.0/28"} }); err != nil {
		t.Fatalf("the fix is refused: %v", err)
	}
	validCondition(t, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "second"}}, metav1.ConditionTrue)
	validCondition(t, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "first"}}, metav1.ConditionTrue)
	waitMetrics(t, p, `herald_config_valid 1`, `herald_config_invalid_objects{kind="IPAddressPool"} 0`)
	lintMetrics(t, p)
	// And the controller works with it: a new Service gets an address.
	ensureNamespace(t, "fixed")
	svc := lbService("fixed", "web", map[string]string{"herald.dev/address-pool": "second"})
	create(t, svc)
	if ip := waitForIP(t, svc); !strings.HasPrefix(ip, "203.0.113.") {
		t.Errorf("fixed/web got %s, want an address of pool second", ip)
	}
}

const wholeConfig = `apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata: {name: whole, namespace: herald-system}
spec: {addresses: ["192.0.2.64/28"]}
---
apiVersion: herald.dev/v1beta1
kind: BFDProfile
metadata: {name: whole-bfd, namespace: herald-system}
---
apiVersion: herald.dev/v1beta1
kind: Community
metadata: {name: whole-communities, namespace: herald-system}
spec: {communities: [{name: whole-east, value: "64512:7"}]}
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata: {name: whole-peer, namespace: herald-system}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.77, bfdProfile: whole-bfd}
---
apiVersion: herald.dev/v1beta1
kind: L2Advertisement
metadata: {name: whole-l2, namespace: herald-system}
spec: {ipAddressPools: [whole]}
---
apiVersion: herald.dev/v1beta1
kind: BGPAdvertisement
metadata: {name: whole-bgp, namespace: herald-system}
spec: {ipAddressPools: [whole], peers: [whole-peer], communities: [whole-east]}
`

// TestDeletingAWholeConfiguration: `kubectl delete -f` of a configuration deletes each object in
// the file's order, every referenced object before what refers to it here. Every delete must be
// admitted; a pool whose addresses a Service holds must still be refused, naming the Service; an
// advertisement left naming a deleted pool must say so in its Valid condition; with the
// controller gone, deleting never hangs.
func TestDeletingAWholeConfiguration(t *testing.T) {
	testenv.Require(t, env)
	clearConfiguration(t)
	p := startWebhook(t)
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(wholeConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	apply := func() {
		t.Helper()
		if out, err := env.Kubectl("apply", "-f", file); err != nil {
			t.Fatalf("applying the configuration in one command: %v\n%s", err, out)
		}
	}

	t.Run("in one command", func(t *testing.T) {
		apply()
		out, err := env.Kubectl("delete", "-f", file)
		if err != nil {
			t.Fatalf("kubectl delete -f config.yaml: %v", err)
		}
		t.Logf("kubectl delete -f:\n%s", out)
		var pools v1beta1.IPAddressPoolList
		if err := env.Client.List(t.Context(), &pools, client.InNamespace(heraldNS)); err != nil {
			t.Fatal(err)
		}
		if len(pools.Items) != 0 {
			t.Errorf("%d pools left", len(pools.Items))
		}
	})

	t.Run("a dangling reference is a condition", func(t *testing.T) {
		apply()
		out, err := env.Kubectl("delete", "-n", heraldNS, "ipaddresspool", "whole")
		if err != nil {
			t.Fatalf("deleting a pool that advertisements name: %v", err)
		}
		if !strings.Contains(out, "L2Advertisement herald-system/whole-l2: spec.ipAddressPools[0]") {
			t.Errorf("no warning naming the advertisement left dangling:\n%s", out)
		}
		// A dangling reference leaves the advertisement valid for what it can resolve: a warning.
		validCondition(t, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "whole-l2"}},
			metav1.ConditionTrue, "Valid, with warnings", `spec.ipAddressPools[0] "whole"`)
		validCondition(t, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "whole-bgp"}},
			metav1.ConditionTrue, "Valid, with warnings", `spec.ipAddressPools[0] "whole"`)
		validCondition(t, &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "whole-peer"}}, metav1.ConditionTrue)
		if _, err := env.Kubectl("delete", "-f", file, "--ignore-not-found"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a pool in use is refused, the rest goes", func(t *testing.T) {
		apply()
		create(t, newPool("busy", "198.51.100.96/28"))
		ensureNamespace(t, "shop")
		svc := lbService("shop", "cart", map[string]string{"herald.dev/address-pool": "busy"})
		create(t, svc)
		ip := waitForIP(t, svc)
		out, err := env.Kubectl("delete", "-n", heraldNS, "ipaddresspools,l2advertisements,bgpadvertisements", "--all")
		if err == nil {
			t.Fatalf("deleting every pool while one is in use was admitted:\n%s", out)
		}
		if !strings.Contains(out, "shop/cart") || !strings.Contains(out, ip) {
			t.Errorf("the refusal does not name the Service shop/cart and its address %s:\n%s", ip, out)
		}
		var busy, whole v1beta1.IPAddressPool
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: heraldNS, Name: "busy"}, &busy); err != nil {
			t.Errorf("pool busy: %v", err)
		}
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: heraldNS, Name: "whole"}, &whole); !apierrors.IsNotFound(err) {
			t.Errorf("pool whole, which nothing holds, was not deleted: %v", err)
		}
	})

	t.Run("with the controller gone, deleting does not hang", func(t *testing.T) {
		create(t, newPool("late", "198.51.100.112/28"))
		p.stop()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := env.Client.Delete(ctx, newPool("late")); err != nil {
			t.Fatalf("deleting a pool with the controller down: %v", err)
		}
		// Creating stays closed: nothing unchecked gets in.
		err := env.Client.Create(ctx, newPool("unchecked", "192.0.2.20-192.0.2.10"))
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("creating with the controller down: %v, want the webhook call to fail", err)
		}
	})
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url) //nolint:gosec,noctx // a test's own loopback address
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}
