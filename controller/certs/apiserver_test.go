package certs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// TestManagerRepairsAtOnce runs the Manager against a real API server with a renewal interval
// of an hour: deleting the Secret, or clearing the CA bundle of the webhook configuration, is
// repaired within seconds, because the Manager watches both.
func TestManagerRepairsAtOnce(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "certs")
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	fail, sideEffects := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	path := "/validate"
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-webhook"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "certs-test.herald.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "herald-webhook", Path: &path}},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"certs-test.herald.dev"}, APIVersions: []string{"v1"}, Resources: []string{"nothing"}}}},
			FailurePolicy:           &fail,
			SideEffects:             &sideEffects,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if err := c.Create(t.Context(), vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), vwc) })

	dir := filepath.Join(t.TempDir(), "certs")
	m, err := New(c, Options{Namespace: ns, SecretName: "herald-webhook-cert", ServiceName: "herald-webhook",
		WebhookConfigName: vwc.Name, CertDir: dir, Interval: time.Hour, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})

	secretKey := types.NamespacedName{Namespace: ns, Name: "herald-webhook-cert"}
	// consistent reports whether the Secret exists and its CA is every webhook's bundle and its
	// certificate is the one in the folder.
	consistent := func(ctx context.Context) (bool, error) {
		var sec corev1.Secret
		if err := c.Get(ctx, secretKey, &sec); err != nil {
			return false, nil //nolint:nilerr // not there yet: keep polling
		}
		var cfg admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, types.NamespacedName{Name: vwc.Name}, &cfg); err != nil {
			return false, err
		}
		for _, w := range cfg.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 || !bytes.Equal(w.ClientConfig.CABundle, sec.Data[KeyCACert]) {
				return false, nil
			}
		}
		file, err := os.ReadFile(filepath.Join(dir, KeyCert))
		return err == nil && bytes.Equal(file, sec.Data[KeyCert]), nil
	}
	repaired := func(what string, within time.Duration) {
		t.Helper()
		start := time.Now()
		if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, within, true, consistent); err != nil {
			t.Fatalf("%s: not repaired within %s: %v", what, within, err)
		}
		t.Logf("%s: repaired in %s", what, time.Since(start).Round(time.Millisecond))
	}
	repaired("first pass", 5*time.Second)

	var old corev1.Secret
	if err := c.Get(t.Context(), secretKey, &old); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), &old); err != nil {
		t.Fatal(err)
	}
	repaired("Secret deleted", 5*time.Second)
	var renewed corev1.Secret
	if err := c.Get(t.Context(), secretKey, &renewed); err != nil {
		t.Fatal(err)
	}
	if renewed.UID == old.UID {
		t.Fatal("the Secret was not recreated")
	}

	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := c.Get(t.Context(), types.NamespacedName{Name: vwc.Name}, &cfg); err != nil {
		t.Fatal(err)
	}
	cleared := cfg.DeepCopy()
	for i := range cleared.Webhooks {
		cleared.Webhooks[i].ClientConfig.CABundle = nil
	}
	if err := c.Update(t.Context(), cleared); err != nil {
		t.Fatal(fmt.Errorf("clearing the CA bundle: %w", err))
	}
	repaired("CA bundle cleared", 5*time.Second)
}
