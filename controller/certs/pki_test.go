package certs

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func policy() Policy {
	return Policy{Hosts: ServiceHosts("herald-webhook", "herald-system"), CAValidity: 300 * 24 * time.Hour, CertValidity: 30 * 24 * time.Hour}
}

// verify checks that b's serving certificate is trusted by b's CA bundle for host at now.
func verify(t *testing.T, b Bundle, host string, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b.CACert) {
		t.Fatal("CA bundle holds no certificate")
	}
	leaf, err := parseCerts(b.Cert)
	if err != nil || len(leaf) != 1 {
		t.Fatalf("serving certificate: %v (%d certs)", err, len(leaf))
	}
	if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now}); err != nil {
		t.Fatalf("serving certificate does not verify for %s at %s: %v", host, now, err)
	}
	key, err := parseKey(b.Key)
	if err != nil || !samePublicKey(leaf[0].PublicKey, key.Public()) {
		t.Fatalf("serving key does not match the certificate: %v", err)
	}
}

func mustRenew(t *testing.T, stored *Bundle, p Policy, now time.Time) (Bundle, bool) {
	t.Helper()
	b, changed, err := Renew(stored, p, now)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	return b, changed
}

func TestRenewFromNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored *Bundle
	}{
		{name: "nil", stored: nil},
		{name: "empty", stored: &Bundle{}},
		{name: "garbage", stored: &Bundle{CACert: []byte("x"), CAKey: []byte("y"), Cert: []byte("z"), Key: []byte("w")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, changed := mustRenew(t, tc.stored, policy(), t0)
			if !changed {
				t.Fatal("changed = false for a new bundle")
			}
			verify(t, b, "herald-webhook.herald-system.svc", t0)
		})
	}
}

func TestRenewKeepsAFreshBundle(t *testing.T) {
	b, _ := mustRenew(t, nil, policy(), t0)
	for _, d := range []time.Duration{0, time.Hour, 19 * 24 * time.Hour} {
		got, changed := mustRenew(t, &b, policy(), t0.Add(d))
		if changed || !bytes.Equal(got.Cert, b.Cert) || !bytes.Equal(got.CACert, b.CACert) {
			t.Errorf("at +%s: bundle changed, want it kept", d)
		}
	}
}

func TestRenewServingCertKeepsCA(t *testing.T) {
	b, _ := mustRenew(t, nil, policy(), t0)
	now := t0.Add(21 * 24 * time.Hour) // past two thirds of 30 days
	got, changed := mustRenew(t, &b, policy(), now)
	if !changed || bytes.Equal(got.Cert, b.Cert) {
		t.Fatal("serving certificate not renewed past two thirds of its lifetime")
	}
	if !bytes.Equal(got.CACert, b.CACert) || !bytes.Equal(got.CAKey, b.CAKey) {
		t.Error("CA changed on a serving certificate renewal; the CA bundle must stay")
	}
	verify(t, got, "herald-webhook.herald-system.svc.cluster.local", now)
}

func TestRenewOnHostChange(t *testing.T) {
	b, _ := mustRenew(t, nil, policy(), t0)
	p := policy()
	p.Hosts = []string{"127.0.0.1", "other.herald-system.svc"}
	got, changed := mustRenew(t, &b, p, t0)
	if !changed || !bytes.Equal(got.CACert, b.CACert) {
		t.Fatalf("changed=%v, CA kept=%v; want a new certificate from the same CA", changed, bytes.Equal(got.CACert, b.CACert))
	}
	verify(t, got, "other.herald-system.svc", t0)
	leaf, _ := parseCerts(got.Cert)
	if len(leaf[0].IPAddresses) != 1 || leaf[0].IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("IP SANs = %v, want [127.0.0.1]", leaf[0].IPAddresses)
	}
}

// TestCARotation follows a CA through its rotation: the new CA joins the bundle while the old one
// still signs the serving certificate, then the certificate moves to the new CA and the old CA
// leaves the bundle. At every step the served certificate verifies against the bundle.
func TestCARotation(t *testing.T) {
	p := policy()
	b, _ := mustRenew(t, nil, p, t0)
	oldCA := b.CACert
	sawTwo, sawOldGone := false, false
	for day := 1; day <= 400; day++ {
		now := t0.Add(time.Duration(day) * 24 * time.Hour)
		nb, _ := mustRenew(t, &b, p, now)
		verify(t, nb, "herald-webhook.herald-system.svc", now)
		cas, _ := parseCerts(nb.CACert)
		switch {
		case len(cas) == 2:
			sawTwo = true
			if !bytes.Contains(nb.CACert, oldCA) {
				t.Fatalf("day %d: old CA not kept during rotation", day)
			}
		case sawTwo && len(cas) == 1 && !bytes.Equal(nb.CACert, oldCA):
			sawOldGone = true
		}
		if len(cas) > 2 {
			t.Fatalf("day %d: %d CAs in the bundle", day, len(cas))
		}
		b = nb
		if sawOldGone {
			break
		}
	}
	if !sawTwo || !sawOldGone {
		t.Fatalf("rotation not seen: two CAs=%v, old CA dropped=%v", sawTwo, sawOldGone)
	}
}

func TestRenewExpiredCA(t *testing.T) {
	b, _ := mustRenew(t, nil, policy(), t0)
	now := t0.Add(301 * 24 * time.Hour)
	got, changed := mustRenew(t, &b, policy(), now)
	if !changed || bytes.Equal(got.CACert, b.CACert) {
		t.Fatal("expired CA not replaced")
	}
	verify(t, got, "herald-webhook.herald-system.svc", now)
}

func TestServingCertNeverOutlivesCA(t *testing.T) {
	ca, key, err := NewCA("test", t0, 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := NewServingCert(ca, key, []string{"a.example"}, t0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parseCerts(cert)
	cac, _ := parseCerts(ca)
	if c[0].NotAfter.After(cac[0].NotAfter) {
		t.Errorf("serving certificate expires %s, after its CA %s", c[0].NotAfter, cac[0].NotAfter)
	}
}

func TestRenewNeedsHosts(t *testing.T) {
	if _, _, err := Renew(nil, Policy{}, t0); err == nil {
		t.Fatal("Renew with no hosts: want an error")
	}
}
