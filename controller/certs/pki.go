package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// ErrBadPEM means PEM input did not hold what it should (a certificate or an EC private key).
var ErrBadPEM = errors.New("bad PEM data")

// Bundle is a CA and a serving certificate signed by it, all PEM-encoded.
type Bundle struct {
	// CACert holds the CA certificates clients should trust: the current CA first, then earlier
	// CAs that still sign a valid certificate (kept during a CA rotation).
	CACert []byte
	// CAKey is the private key of the current CA (the first certificate of CACert).
	CAKey []byte
	// Cert is the serving certificate and Key its private key.
	Cert []byte
	Key  []byte
}

// Policy says how long certificates live and which names the serving certificate covers.
type Policy struct {
	// Hosts are the DNS names and IP addresses of the serving certificate.
	Hosts []string
	// CAValidity is the lifetime of a new CA (default 5 years).
	CAValidity time.Duration
	// CertValidity is the lifetime of a new serving certificate (default 1 year).
	CertValidity time.Duration
}

// Default lifetimes. A certificate is renewed when less than a third of its lifetime is left.
const (
	DefaultCAValidity   = 5 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
)

func (p Policy) withDefaults() Policy {
	if p.CAValidity <= 0 {
		p.CAValidity = DefaultCAValidity
	}
	if p.CertValidity <= 0 {
		p.CertValidity = DefaultCertValidity
	}
	return p
}

// renewAt is when a certificate valid from notBefore to notAfter should be replaced: once two
// thirds of its lifetime have passed.
func renewAt(c *x509.Certificate) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Add(-life / 3)
}

// Renew returns the bundle to use at now, given the stored one (nil or empty when there is none),
// and whether it differs from the stored one. It never drops trust in a CA that still signs the
// stored serving certificate, so that a CA rotation does not break the webhook while the new CA
// bundle reaches the API server:
//   - no usable CA (missing, unparsable, expired, key not matching): a new CA and certificate;
//   - CA past two thirds of its lifetime: a new CA is added in front of the bundle, and a still
//     valid serving certificate is kept (even when due) until a later Renew signs one with the new CA;
//   - serving certificate missing, invalid, not for the policy's hosts, or past two thirds of its
//     lifetime: a new one, signed by the current CA, never outliving it;
//   - otherwise nothing changes (CAs that have expired or that sign nothing are dropped).
func Renew(stored *Bundle, p Policy, now time.Time) (Bundle, bool, error) {
	p = p.withDefaults()
	if len(p.Hosts) == 0 {
		return Bundle{}, false, errors.New("renewing the webhook certificate: the policy names no hosts")
	}
	var old Bundle
	if stored != nil {
		old = *stored
	}
	cas, _ := parseCerts(old.CACert)
	caKey, keyErr := parseKey(old.CAKey)
	usable := len(cas) > 0 && keyErr == nil && now.Before(cas[0].NotAfter) && samePublicKey(cas[0].PublicKey, caKey.Public())
	if !usable {
		return fresh(p, now)
	}
	b := Bundle{CAKey: old.CAKey, Cert: old.Cert, Key: old.Key}
	current := cas[0]
	rotated := false
	if !now.Before(renewAt(current)) {
		rotated = true
		caPEM, keyPEM, err := NewCA("herald-webhook-ca", now, p.CAValidity)
		if err != nil {
			return Bundle{}, false, err
		}
		newCA, _ := parseCerts(caPEM)
		cas = append(newCA, cas...)
		b.CAKey = keyPEM
		current = newCA[0]
	}
	signer := cas
	// On a CA rotation a still valid certificate is kept even when due, so that the new CA
	// reaches clients (a later Renew) before any certificate it signs is served.
	certOK := certUsable(old.Cert, old.Key, cas, p.Hosts, now, !rotated)
	if !certOK {
		var err error
		b.Cert, b.Key, err = NewServingCert(encodeCerts(cas[:1]), b.CAKey, p.Hosts, now, p.CertValidity)
		if err != nil {
			return Bundle{}, false, err
		}
		signer = cas[:1]
	}
	// Keep the current CA and any other unexpired CA that signs the serving certificate.
	leaf, _ := parseCerts(b.Cert)
	keep := []*x509.Certificate{current}
	for _, ca := range signer {
		if ca != current && now.Before(ca.NotAfter) && len(leaf) > 0 && leaf[0].CheckSignatureFrom(ca) == nil {
			keep = append(keep, ca)
		}
	}
	b.CACert = encodeCerts(keep)
	changed := !bytes.Equal(b.CACert, old.CACert) || !bytes.Equal(b.CAKey, old.CAKey) ||
		!bytes.Equal(b.Cert, old.Cert) || !bytes.Equal(b.Key, old.Key)
	return b, changed, nil
}

func fresh(p Policy, now time.Time) (Bundle, bool, error) {
	caPEM, caKey, err := NewCA("herald-webhook-ca", now, p.CAValidity)
	if err != nil {
		return Bundle{}, false, err
	}
	cert, key, err := NewServingCert(caPEM, caKey, p.Hosts, now, p.CertValidity)
	if err != nil {
		return Bundle{}, false, err
	}
	return Bundle{CACert: caPEM, CAKey: caKey, Cert: cert, Key: key}, true, nil
}

// certUsable reports whether certPEM/keyPEM form a serving certificate for hosts, signed by one
// of cas and valid at now, and, when checkDue is set, not yet due for renewal.
func certUsable(certPEM, keyPEM []byte, cas []*x509.Certificate, hosts []string, now time.Time, checkDue bool) bool {
	certs, err := parseCerts(certPEM)
	if err != nil || len(certs) == 0 {
		return false
	}
	key, err := parseKey(keyPEM)
	if err != nil || !samePublicKey(certs[0].PublicKey, key.Public()) {
		return false
	}
	leaf := certs[0]
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) || (checkDue && !now.Before(renewAt(leaf))) {
		return false
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		if now.Before(ca.NotAfter) {
			pool.AddCert(ca)
		}
	}
	want := slices.Clone(hosts)
	slices.Sort(want)
	if !slices.Equal(want, certHosts(leaf)) {
		return false
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

func certHosts(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// NewCA creates a self-signed CA certificate valid from now (less a minute, for clock skew)
// for validity, and its ECDSA P-256 key, PEM-encoded.
func NewCA(commonName string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// NewServingCert creates a TLS server certificate for hosts (DNS names or IP addresses), signed
// by the CA (the first certificate of caCertPEM and caKeyPEM), valid from now for validity but
// never after the CA, and its ECDSA P-256 key, PEM-encoded.
func NewServingCert(caCertPEM, caKeyPEM []byte, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("creating a serving certificate: no hosts")
	}
	cas, err := parseCerts(caCertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	if len(cas) == 0 {
		return nil, nil, fmt.Errorf("reading the CA certificate: %w: no certificate", ErrBadPEM)
	}
	caKey, err := parseKey(caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the CA key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the serving key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(cas[0].NotAfter) {
		notAfter = cas[0].NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, cas[0], key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the serving certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n, nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writing to a buffer cannot fail
	}
	return b.Bytes()
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: unexpected block %q", ErrBadPEM, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
		}
		out = append(out, c)
	}
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("%w: no EC PRIVATE KEY block", ErrBadPEM)
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	return k, nil
}

func samePublicKey(a any, b crypto.PublicKey) bool {
	ak, ok := a.(*ecdsa.PublicKey)
	return ok && ak.Equal(b)
}

// NotAfter returns when the serving certificate of b expires (zero when it cannot be read).
func (b Bundle) NotAfter() time.Time {
	certs, err := parseCerts(b.Cert)
	if err != nil || len(certs) == 0 {
		return time.Time{}
	}
	return certs[0].NotAfter
}
