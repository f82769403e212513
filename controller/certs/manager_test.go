package certs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestManagerEnsure runs Ensure against a fake API server with a controlled clock: it creates
// the Secret, the files and the CA bundle, changes nothing while the certificate is fresh, and
// renews all three when it is due.
func TestManagerEnsure(t *testing.T) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "herald-validating-webhook"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "a.herald.dev"}, {Name: "b.herald.dev"}},
	}
	c := fake.NewClientBuilder().WithObjects(vwc).Build()
	now := t0
	dir := filepath.Join(t.TempDir(), "certs")
	m, err := New(c, Options{
		Namespace: "herald-system", SecretName: "herald-webhook-cert", ServiceName: "herald-webhook",
		WebhookConfigName: "herald-validating-webhook", CertDir: dir,
		CertValidity: 30 * 24 * time.Hour, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	state := func() (sec corev1.Secret, bundles [][]byte, cert []byte) {
		t.Helper()
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: "herald-system", Name: "herald-webhook-cert"}, &sec); err != nil {
			t.Fatal(err)
		}
		var got admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(t.Context(), types.NamespacedName{Name: "herald-validating-webhook"}, &got); err != nil {
			t.Fatal(err)
		}
		for _, w := range got.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		cert, err := os.ReadFile(filepath.Join(dir, KeyCert))
		if err != nil {
			t.Fatal(err)
		}
		return sec, bundles, cert
	}

	if err := m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	sec, bundles, cert := state()
	for _, b := range bundles {
		if !bytes.Equal(b, sec.Data[KeyCACert]) {
			t.Fatal("CA bundle of a webhook is not the Secret's CA")
		}
	}
	if !bytes.Equal(cert, sec.Data[KeyCert]) {
		t.Fatal("tls.crt in the folder is not the Secret's")
	}
	verify(t, Bundle{CACert: sec.Data[KeyCACert], Cert: sec.Data[KeyCert], Key: sec.Data[KeyKey]}, "herald-webhook.herald-system.svc", now)

	now = now.Add(24 * time.Hour)
	if err := m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := state(); again.ResourceVersion != sec.ResourceVersion {
		t.Error("Secret rewritten although the certificate is fresh")
	}

	now = now.Add(20 * 24 * time.Hour) // past two thirds of 30 days
	if err := m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	renewed, _, cert2 := state()
	if bytes.Equal(renewed.Data[KeyCert], sec.Data[KeyCert]) || !bytes.Equal(cert2, renewed.Data[KeyCert]) {
		t.Fatal("certificate not renewed in the Secret and the folder")
	}
	verify(t, Bundle{CACert: renewed.Data[KeyCACert], Cert: renewed.Data[KeyCert], Key: renewed.Data[KeyKey]}, "herald-webhook.herald-system.svc", now)
}
