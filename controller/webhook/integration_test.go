package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/certs"
	"github.com/herald-lb/herald/controller/webhook"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

const (
	heraldNS    = "herald-system"
	webhookName = "herald-validating-webhook"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	var last error
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = f()
		return last == nil, nil
	}); err != nil {
		t.Fatalf("not within %s: %v", timeout, last)
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// webhookConfig reads manifests/webhook.yaml, the one users install, and points it at url.
func webhookConfig(t *testing.T, url string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "manifests", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("manifests/webhook.yaml: %v", err)
	}
	for i := range cfg.Webhooks {
		if p := cfg.Webhooks[i].ClientConfig.Service.Path; p == nil || *p != webhook.Path {
			t.Fatalf("manifests/webhook.yaml webhook %s path %v, want %s", cfg.Webhooks[i].Name, p, webhook.Path)
		}
		cfg.Webhooks[i].ClientConfig.Service = nil
		cfg.Webhooks[i].ClientConfig.URL = &url
	}
	return &cfg
}

// controllerProc is a running herald-controller binary.
type controllerProc struct {
	cmd        *exec.Cmd
	healthAddr string
	// metricsAddr serves /metrics over plain HTTP.
	metricsAddr string
	logs        string
	stopped     bool
}

// stop interrupts the controller and waits for it to exit.
func (p *controllerProc) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait()
}

// startWebhook runs what the controller runs: the certificate manager (Secret, files, CA bundle
// patch) and a controller-runtime manager serving the webhook on 127.0.0.1, registered with the
// API server through the installed ValidatingWebhookConfiguration (with a URL instead of a
// Service, as there is no cluster network here). It returns once the API server calls the
// webhook.
func startWebhook(t *testing.T) *controllerProc {
	t.Helper()
	testenv.Require(t, env)
	ensureNamespace(t, heraldNS)
	port := testenv.FreePort(t)
	certDir := t.TempDir()
	cfg := webhookConfig(t, fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.Path))
	if err := env.Client.Create(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), cfg); err != nil {
			t.Errorf("deleting the webhook configuration: %v", err)
		}
	})

	// The controller binary serves the webhook, creates its certificate and patches the CA bundle.
	p := &controllerProc{healthAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), metricsAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	p.cmd = exec.Command(controllerBinary(t), "--kubeconfig="+env.Kubeconfig, "--namespace="+heraldNS,
		"--webhook-port="+strconv.Itoa(port), "--webhook-cert-dir="+certDir, "--webhook-config-name="+webhookName,
		"--webhook-extra-hosts=127.0.0.1", "--metrics-addr="+p.metricsAddr, "--metrics-secure=false", "--health-addr="+p.healthAddr)
	logs, err := os.Create(filepath.Join(t.TempDir(), "controller.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.logs = logs.Name()
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting herald-controller: %v", err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			out, _ := os.ReadFile(p.logs)
			t.Logf("herald-controller log:\n%s", out)
		}
	})
	eventually(t, 30*time.Second, func() error {
		var got admissionregistrationv1.ValidatingWebhookConfiguration
		if err := env.Client.Get(t.Context(), types.NamespacedName{Name: webhookName}, &got); err != nil {
			return err
		}
		var sec corev1.Secret
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: heraldNS, Name: "herald-webhook-cert"}, &sec); err != nil {
			return fmt.Errorf("certificate Secret: %w", err)
		}
		for _, w := range got.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 || string(w.ClientConfig.CABundle) != string(sec.Data[certs.KeyCACert]) {
				return fmt.Errorf("webhook %s caBundle not patched to the Secret's CA yet", w.Name)
			}
		}
		return nil
	})
	// Ready when the API server calls the webhook and it refuses what only config refuses.
	eventually(t, 30*time.Second, func() error {
		err := env.Client.Create(t.Context(), newPool("probe", "192.0.2.20-192.0.2.10"), client.DryRunAll)
		if err == nil {
			return errors.New("reversed range admitted: webhook not called yet")
		}
		if !strings.Contains(err.Error(), "denied the request") {
			return err
		}
		return nil
	})
	return p
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// controllerBinary builds ./controller once per test run.
func controllerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "herald-controller-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "herald-controller")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/herald-lb/herald/controller").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func newPool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func newPeer(name, addr string, mod func(*v1beta1.BGPPeerSpec)) *v1beta1.BGPPeer {
	p := &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: name},
		Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: addr}}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

// refused checks err is the webhook's refusal and names every want string.
func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want refused naming %q", want)
	}
	if !strings.Contains(err.Error(), `admission webhook "config.herald.dev" denied the request`) &&
		!strings.Contains(err.Error(), `admission webhook "deletions.herald.dev" denied the request`) {
		t.Fatalf("refused, but not by the webhook: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal does not name %q:\n%v", w, err)
		}
	}
	t.Logf("refused as expected: %v", err)
}

// lbService returns a Service of type LoadBalancer with the given annotations.
func lbService(ns, name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
}

// waitForIP waits for the running controller to give svc one address and returns it.
func waitForIP(t *testing.T, svc *corev1.Service) string {
	t.Helper()
	var ip string
	eventually(t, 20*time.Second, func() error {
		var got corev1.Service
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(svc), &got); err != nil {
			return err
		}
		if ing := got.Status.LoadBalancer.Ingress; len(ing) != 1 {
			return fmt.Errorf("%s/%s status %v, want one address", svc.Namespace, svc.Name, ing)
		}
		ip = got.Status.LoadBalancer.Ingress[0].IP
		return nil
	})
	return ip
}

// updatePool reads the pool, changes it with mod and writes it back.
func updatePool(t *testing.T, name string, mod func(*v1beta1.IPAddressPool)) error {
	t.Helper()
	// The controller writes the pool's status meanwhile: retry on a conflict as kubectl edit would.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p v1beta1.IPAddressPool
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: heraldNS, Name: name}, &p); err != nil {
			return err
		}
		mod(&p)
		return env.Client.Update(t.Context(), &p)
	})
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}

func TestWebhook(t *testing.T) {
	startWebhook(t)
	ctx := t.Context()

	// A valid configuration, made of the kinds the other cases refer to.
	create(t, newPool("default", "198.51.100.64/27", "2001:db8:100::/120"))
	create(t, &v1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "fast"}})
	create(t, &v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "communities"},
		Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "dc-east", Value: "large:64512:1:100"}}}})
	create(t, newPeer("tor", "198.51.100.1", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "fast" }))
	create(t, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "public"},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"default"}, Communities: []string{"dc-east", "64512:100"}}})
	create(t, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "l2"},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"default"}}})

	t.Run("overlapping pool", func(t *testing.T) {
		err := env.Client.Create(ctx, newPool("overlap", "198.51.100.90-198.51.100.100"))
		refused(t, err, `IPAddressPool.herald.dev "overlap" is invalid`, "spec.addresses[0]: Invalid value", "overlap")
	})
	t.Run("range first after last", func(t *testing.T) {
		err := env.Client.Create(ctx, newPool("reversed", "192.0.2.20-192.0.2.10"))
		refused(t, err, `IPAddressPool.herald.dev "reversed" is invalid`, "spec.addresses[0]: Invalid value", `"192.0.2.20-192.0.2.10"`)
	})
	t.Run("every error of an object", func(t *testing.T) {
		err := env.Client.Create(ctx, newPool("two", "198.51.100.64/30", "192.0.2.20-192.0.2.10"))
		refused(t, err, `IPAddressPool.herald.dev "two" is invalid: [`, "spec.addresses[0]: Invalid value", "spec.addresses[1]: Invalid value")
		if strings.Contains(err.Error(), "herald-system/default:") {
			t.Errorf("the pool in force is blamed for the new pool's overlap:\n%v", err)
		}
	})
	t.Run("a whole configuration is created in any order and deleted in one command", func(t *testing.T) {
		// The advertisements come before the pool and the peer they name.
		f := filepath.Join(t.TempDir(), "config.yaml")
		yaml := strings.Join([]string{
			"apiVersion: herald.dev/v1beta1\nkind: L2Advertisement\nmetadata: {name: whole, namespace: herald-system}\nspec: {ipAddressPools: [whole]}",
			"apiVersion: herald.dev/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: whole, namespace: herald-system}\nspec: {ipAddressPools: [whole], peers: [whole]}",
			"apiVersion: herald.dev/v1beta1\nkind: IPAddressPool\nmetadata: {name: whole, namespace: herald-system}\nspec: {addresses: [203.0.113.64/28]}",
			"apiVersion: herald.dev/v1beta1\nkind: BGPPeer\nmetadata: {name: whole, namespace: herald-system}\nspec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.9}",
		}, "\n---\n") + "\n"
		if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := env.Kubectl("create", "-f", f)
		if err != nil {
			t.Fatalf("creating the configuration in one command: %v", err)
		}
		if !strings.Contains(out, "Warning:") || !strings.Contains(out, `spec.ipAddressPools[0] "whole": no IPAddressPool with this name`) {
			t.Errorf("no warning that the advertisement names a pool that does not exist yet:\n%s", out)
		}
		out, err = env.Kubectl("delete", "-f", f)
		if err != nil {
			t.Fatalf("deleting the configuration in one command: %v", err)
		}
		t.Logf("kubectl delete -f:\n%s", out)
		for _, kind := range []string{"l2advertisement", "bgpadvertisement", "ipaddresspool", "bgppeer"} {
			if got, err := env.Kubectl("get", kind, "whole", "-n", heraldNS, "--ignore-not-found", "-o", "name"); err != nil || strings.TrimSpace(got) != "" {
				t.Errorf("%s whole still exists after kubectl delete -f (%q, %v)", kind, got, err)
			}
		}
	})
	t.Run("unknown community alias", func(t *testing.T) {
		err := env.Client.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "bad-community"},
			Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"no-such-alias"}}})
		refused(t, err, `BGPAdvertisement.herald.dev "bad-community" is invalid: spec.communities[0]: Invalid value`, `"no-such-alias"`)
	})
	t.Run("aggregation shorter than the pool", func(t *testing.T) {
		agg := int32(24)
		err := env.Client.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "agg"},
			Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"default"}, AggregationLength: &agg}})
		refused(t, err, "spec.aggregationLength")
	})
	t.Run("unknown BFD profile", func(t *testing.T) {
		err := env.Client.Create(ctx, newPeer("p2", "198.51.100.2", func(s *v1beta1.BGPPeerSpec) { s.BFDProfile = "slow" }))
		refused(t, err, `BGPPeer.herald.dev "p2" is invalid: spec.bfdProfile: Invalid value`, `"slow"`)
	})
	t.Run("missing password Secret", func(t *testing.T) {
		err := env.Client.Create(ctx, newPeer("p3", "198.51.100.3", func(s *v1beta1.BGPPeerSpec) {
			s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "nope"}
		}))
		refused(t, err, `BGPPeer.herald.dev "p3" is invalid: spec.passwordSecret.name: Invalid value`, `"nope"`)
	})
	t.Run("password Secret present", func(t *testing.T) {
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "p4-password"}, StringData: map[string]string{"password": "x"}})
		create(t, newPeer("p4", "198.51.100.4", func(s *v1beta1.BGPPeerSpec) { s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "p4-password"} }))
	})
	t.Run("password Secret the speakers cannot read", func(t *testing.T) {
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "p5-password"}, StringData: map[string]string{"password": "x"}})
		f := filepath.Join(t.TempDir(), "peer.yaml")
		if err := os.WriteFile(f, []byte("apiVersion: herald.dev/v1beta1\nkind: BGPPeer\nmetadata: {name: p5, namespace: herald-system}\n"+
			"spec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.5, passwordSecret: {name: p5-password}}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := env.Kubectl("create", "-f", f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = env.Kubectl("delete", "-f", f, "--ignore-not-found") })
		if !strings.Contains(out, "Warning:") || !strings.Contains(out, v1beta1.LabelSpeakerSecret) {
			t.Errorf("no warning that the speakers cannot read the Secret:\n%s", out)
		}
		validCondition(t, &v1beta1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "p5"}}, metav1.ConditionFalse,
			`spec.passwordSecret.name "p5-password"`, "kubectl label secret -n herald-system p5-password "+v1beta1.LabelSpeakerSecret+"=true")
	})
	t.Run("password longer than a TCP MD5 key", func(t *testing.T) {
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "p7-password"}, StringData: map[string]string{"password": strings.Repeat("x", 81)}})
		err := env.Client.Create(ctx, newPeer("p7", "198.51.100.7", func(s *v1beta1.BGPPeerSpec) { s.PasswordSecret = &v1beta1.SecretKeyReference{Name: "p7-password"} }))
		refused(t, err, `BGPPeer.herald.dev "p7" is invalid: spec.passwordSecret`, "81 bytes long", "at most 80 bytes")
	})
	t.Run("hold time below a millisecond off whole seconds (CEL sees milliseconds)", func(t *testing.T) {
		err := env.Client.Create(ctx, newPeer("p6", "198.51.100.6", func(s *v1beta1.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{Duration: 3000001 * time.Microsecond}
		}))
		refused(t, err, `BGPPeer.herald.dev "p6" is invalid: spec.holdTime: Invalid value`, "whole number of seconds")
	})
	t.Run("same peer address twice", func(t *testing.T) {
		err := env.Client.Create(ctx, newPeer("tor2", "198.51.100.1", nil))
		refused(t, err, `BGPPeer.herald.dev "tor2" is invalid: spec.peerAddress: Invalid value`)
	})
	t.Run("update is validated", func(t *testing.T) {
		// The controller writes the pool's status meanwhile: a conflict is read again and retried, so
		// that the answer judged is the webhook's.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var p v1beta1.IPAddressPool
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: heraldNS, Name: "default"}, &p); err != nil {
				return err
			}
			p.Spec.Addresses = append(p.Spec.Addresses, "203.0.113.10-203.0.113.1")
			return env.Client.Update(ctx, &p)
		})
		refused(t, err, `IPAddressPool.herald.dev "default" is invalid: spec.addresses[2]: Invalid value`)
	})
	t.Run("deleting a referenced BFD profile warns", func(t *testing.T) {
		out, err := env.Kubectl("delete", "--dry-run=server", "-n", heraldNS, "bfdprofile", "fast")
		if err != nil {
			t.Fatalf("a delete is refused for a reference to the object: %v", err)
		}
		if !strings.Contains(out, "Warning:") || !strings.Contains(out, "BGPPeer herald-system/tor: spec.bfdProfile") {
			t.Errorf("no warning naming the peer that uses the profile:\n%s", out)
		}
	})
	t.Run("deleting a referenced community alias warns", func(t *testing.T) {
		out, err := env.Kubectl("delete", "--dry-run=server", "-n", heraldNS, "community", "communities")
		if err != nil {
			t.Fatalf("a delete is refused for a reference to the object: %v", err)
		}
		if !strings.Contains(out, "BGPAdvertisement herald-system/public: spec.communities[0]") {
			t.Errorf("no warning naming the advertisement that uses the alias:\n%s", out)
		}
	})
	t.Run("other namespace is allowed with a warning", func(t *testing.T) {
		dir := t.TempDir()
		f := filepath.Join(dir, "pool.yaml")
		if err := os.WriteFile(f, []byte("apiVersion: herald.dev/v1beta1\nkind: IPAddressPool\nmetadata: {name: elsewhere, namespace: default}\nspec: {addresses: [\"192.0.2.20-192.0.2.10\"]}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := env.Kubectl("create", "--dry-run=server", "-f", f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Warning:") || !strings.Contains(out, "Herald ignores it") {
			t.Errorf("no warning that Herald ignores the object:\n%s", out)
		}
	})
	t.Run("pools in use", func(t *testing.T) {
		ensureNamespace(t, "apps")
		// The running controller gives web the address it asks for, and pending one of spare.
		web := lbService("apps", "web", map[string]string{"herald.dev/loadBalancerIPs": "198.51.100.65"})
		create(t, web)
		if got := waitForIP(t, web); got != "198.51.100.65" {
			t.Fatalf("apps/web got %s, want 198.51.100.65", got)
		}
		create(t, newPool("spare", "203.0.113.0/28"))
		pending := lbService("apps", "pending", map[string]string{"herald.dev/address-pool": "spare"})
		create(t, pending)
		held := netip.MustParseAddr(waitForIP(t, pending))

		t.Run("delete", func(t *testing.T) {
			refused(t, env.Client.Delete(ctx, newPool("default")), "apps/web", "198.51.100.65", "the pool is deleted", v1beta1.AnnotationAllowReleaseOfInUseIPs)
			refused(t, env.Client.Delete(ctx, newPool("spare")), "apps/pending", held.String())
		})
		t.Run("shrink under an address in use", func(t *testing.T) {
			refused(t, updatePool(t, "default", func(p *v1beta1.IPAddressPool) {
				p.Spec.Addresses = []string{"198.51.100.80/28", "2001:db8:100::/120"}
			}), `Operation cannot be fulfilled on ipaddresspools.herald.dev "default"`, "apps/web (holds 198.51.100.65: no longer in spec.addresses)")
		})
		t.Run("narrow serviceAllocation", func(t *testing.T) {
			refused(t, updatePool(t, "default", func(p *v1beta1.IPAddressPool) {
				p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Namespaces: []string{"other"}}
			}), "apps/web (holds 198.51.100.65: spec.serviceAllocation no longer selects the Service)")
		})
		t.Run("grow and reprioritise", func(t *testing.T) {
			if err := updatePool(t, "default", func(p *v1beta1.IPAddressPool) {
				p.Spec.ServiceAllocation = &v1beta1.ServiceAllocation{Priority: 5, Namespaces: []string{"apps", "other"}}
			}); err != nil {
				t.Fatalf("a change that releases nothing: %v", err)
			}
		})
		t.Run("release confirmed with the annotation", func(t *testing.T) {
			keep := "203.0.113.8/29"
			if netip.MustParsePrefix(keep).Contains(held) {
				keep = "203.0.113.0/29"
			}
			out, err := env.Kubectl("patch", "ipaddresspool", "spare", "-n", heraldNS, "--type=merge", "-p",
				fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}},"spec":{"addresses":[%q]}}`, v1beta1.AnnotationAllowReleaseOfInUseIPs, keep))
			if err != nil {
				t.Fatalf("a confirmed shrink is refused: %v", err)
			}
			if !strings.Contains(out, "Warning:") || !strings.Contains(out, "apps/pending") {
				t.Errorf("no warning naming the Service that loses its address:\n%s", out)
			}
			// The controller releases it and assigns one in what is left of the pool.
			eventually(t, 20*time.Second, func() error {
				var got corev1.Service
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pending), &got); err != nil {
					return err
				}
				ing := got.Status.LoadBalancer.Ingress
				if len(ing) != 1 || !netip.MustParsePrefix(keep).Contains(netip.MustParseAddr(ing[0].IP)) {
					return fmt.Errorf("apps/pending status %v, want an address of %s", ing, keep)
				}
				return nil
			})
		})
		t.Run("a pool nothing holds can go although advertisements name it", func(t *testing.T) {
			if err := env.Client.Delete(ctx, web); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, func() error {
				out, err := env.Kubectl("delete", "--dry-run=server", "-n", heraldNS, "ipaddresspool", "default")
				if err != nil {
					return err
				}
				if !strings.Contains(out, "Warning:") || !strings.Contains(out, "L2Advertisement herald-system/l2: spec.ipAddressPools[0]") {
					return fmt.Errorf("no warning naming the advertisement left dangling:\n%s", out)
				}
				return nil
			})
		})
	})
	t.Run("deleting what nothing uses", func(t *testing.T) {
		if err := env.Client.Delete(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "public"}}); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, &v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "communities"}}); err != nil {
			t.Fatalf("deleting an unreferenced Community: %v", err)
		}
	})
}
