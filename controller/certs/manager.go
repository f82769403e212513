package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultSecretName is the Secret the manifests grant the controller (herald-webhook-cert).
const DefaultSecretName = "herald-webhook-cert"

// Keys of the certificate Secret.
const (
	KeyCACert = "ca.crt"
	KeyCAKey  = "ca.key"
	KeyCert   = "tls.crt"
	KeyKey    = "tls.key"
)

// Options configure a Manager. Namespace, SecretName, ServiceName, WebhookConfigName and CertDir
// are required.
type Options struct {
	// Namespace of the Secret and of the webhook Service.
	Namespace string
	// SecretName is the Secret that stores the bundle (herald-webhook-cert).
	SecretName string
	// ServiceName is the webhook Service (herald-webhook); the certificate covers its DNS names.
	ServiceName string
	// WebhookConfigName is the ValidatingWebhookConfiguration whose webhooks get the CA bundle.
	WebhookConfigName string
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// Hosts replaces the certificate's names (default: the Service's DNS names).
	Hosts []string
	// CAValidity and CertValidity override the default lifetimes.
	CAValidity, CertValidity time.Duration
	// Interval between renewal checks in Start (default 10 minutes). A deleted or changed Secret
	// and a CA bundle removed from the webhook configuration are repaired as soon as the watch
	// reports them, not at the next check.
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger for Start's periodic errors.
	Logger logr.Logger
}

// ServiceHosts returns the DNS names a Service is reached by inside the cluster.
func ServiceHosts(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// Manager keeps the webhook's serving certificate: in the Secret, in CertDir and, as CA bundle,
// in the webhook configuration. Every controller replica runs one (it is not leader-elected, as
// each replica serves the webhook); concurrent writers are resolved by resourceVersion.
type Manager struct {
	c    client.WithWatch
	opts Options
}

// New returns a Manager. The client must read from the API server (not a cache that is not
// started yet) when Ensure is called before the controller manager starts; Start watches the
// Secret and the webhook configuration through it.
func New(c client.WithWatch, o Options) (*Manager, error) {
	if o.Namespace == "" || o.SecretName == "" || o.ServiceName == "" || o.WebhookConfigName == "" || o.CertDir == "" {
		return nil, errors.New("certs: Namespace, SecretName, ServiceName, WebhookConfigName and CertDir are required")
	}
	if len(o.Hosts) == 0 {
		o.Hosts = ServiceHosts(o.ServiceName, o.Namespace)
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Manager{c: c, opts: o}, nil
}

// Ensure makes one pass: it creates or renews the bundle in the Secret as needed, writes the
// serving certificate and key into CertDir, and patches the CA bundle into every webhook of the
// webhook configuration. Call it once before the webhook server starts (the server needs the
// files), then run Start.
func (m *Manager) Ensure(ctx context.Context) error {
	var b Bundle
	var err error
	for attempt := 0; ; attempt++ {
		b, err = m.ensureSecret(ctx)
		if err == nil {
			break
		}
		if attempt < 3 && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			continue // another replica wrote it first: read it again
		}
		return err
	}
	if err := m.writeFiles(b); err != nil {
		return err
	}
	return m.patchCABundle(ctx, b.CACert)
}

// Start runs Ensure whenever the Secret or the webhook configuration changes (deleted, edited,
// CA bundle cleared), and every Interval for renewal, until ctx ends; failures are logged and
// retried at the next change or tick. It implements controller-runtime's manager.Runnable.
func (m *Manager) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.watch(ctx, changed, "Secret "+m.opts.Namespace+"/"+m.opts.SecretName, &corev1.SecretList{},
			client.InNamespace(m.opts.Namespace), client.MatchingFields{"metadata.name": m.opts.SecretName})
	}()
	go func() {
		defer wg.Done()
		m.watch(ctx, changed, "ValidatingWebhookConfiguration "+m.opts.WebhookConfigName,
			&admissionregistrationv1.ValidatingWebhookConfigurationList{}, client.MatchingFields{"metadata.name": m.opts.WebhookConfigName})
	}()
	defer wg.Wait()
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		}
		if err := m.Ensure(ctx); err != nil && ctx.Err() == nil {
			m.opts.Logger.Error(err, "keeping the webhook certificate", "secret", m.opts.Namespace+"/"+m.opts.SecretName)
		}
	}
}

// watch signals changed on every event of the objects list selects, until ctx ends. A watch
// that ends or fails is started again (after a pause that grows to 30 s while it keeps
// failing); a new watch begins with the objects as they are, so nothing missed in between is
// lost.
func (m *Manager) watch(ctx context.Context, changed chan<- struct{}, what string, list client.ObjectList, opts ...client.ListOption) {
	signal := func() {
		select {
		case changed <- struct{}{}:
		default: // a pass is already due
		}
	}
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: math.MaxInt32, Cap: 30 * time.Second}
	pause := backoff
	for ctx.Err() == nil {
		w, err := m.c.Watch(ctx, list, opts...)
		if err != nil {
			m.opts.Logger.Error(err, "watching the webhook certificate's objects", "object", what)
			select {
			case <-ctx.Done():
			case <-time.After(pause.Step()):
			}
			continue
		}
		pause = backoff
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break // the API server ended the watch (expired); start a new one
			}
			signal()
		}
		w.Stop()
	}
}

// NeedLeaderElection is false: every replica serves the webhook and needs the files.
func (m *Manager) NeedLeaderElection() bool { return false }

func (m *Manager) ensureSecret(ctx context.Context) (Bundle, error) {
	key := types.NamespacedName{Namespace: m.opts.Namespace, Name: m.opts.SecretName}
	var sec corev1.Secret
	err := m.c.Get(ctx, key, &sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return Bundle{}, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	stored := Bundle{CACert: sec.Data[KeyCACert], CAKey: sec.Data[KeyCAKey], Cert: sec.Data[KeyCert], Key: sec.Data[KeyKey]}
	policy := Policy{Hosts: m.opts.Hosts, CAValidity: m.opts.CAValidity, CertValidity: m.opts.CertValidity}
	b, changed, err := Renew(&stored, policy, m.opts.Now())
	if err != nil {
		return Bundle{}, err
	}
	if !changed {
		return b, nil
	}
	data := map[string][]byte{KeyCACert: b.CACert, KeyCAKey: b.CAKey, KeyCert: b.Cert, KeyKey: b.Key}
	if !exists {
		sec = corev1.Secret{Type: corev1.SecretTypeOpaque, Data: data}
		sec.Namespace, sec.Name = key.Namespace, key.Name
		sec.Labels = map[string]string{"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": "controller"}
		if err := m.c.Create(ctx, &sec); err != nil {
			return Bundle{}, fmt.Errorf("creating Secret %s: %w", key, err)
		}
		return b, nil
	}
	upd := sec.DeepCopy()
	upd.Data = data
	if err := m.c.Update(ctx, upd); err != nil {
		return Bundle{}, fmt.Errorf("updating Secret %s: %w", key, err)
	}
	return b, nil
}

func (m *Manager) writeFiles(b Bundle) error {
	if err := os.MkdirAll(m.opts.CertDir, 0o700); err != nil {
		return fmt.Errorf("creating the certificate folder: %w", err)
	}
	// The key first: the webhook server reloads on either file's change and reads both.
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyKey, b.Key}, {KeyCert, b.Cert}} {
		path := filepath.Join(m.opts.CertDir, f.name)
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if err := writeAtomic(path, f.data); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func (m *Manager) patchCABundle(ctx context.Context, caBundle []byte) error {
	var cfg admissionregistrationv1.ValidatingWebhookConfiguration
	if err := m.c.Get(ctx, types.NamespacedName{Name: m.opts.WebhookConfigName}, &cfg); apierrors.IsNotFound(err) {
		// Installed without the webhook configuration: serve anyway, nothing calls us.
		m.opts.Logger.Info("ValidatingWebhookConfiguration not found; the API server will not call the webhook until it exists",
			"name", m.opts.WebhookConfigName)
		return nil
	} else if err != nil {
		return fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", m.opts.WebhookConfigName, err)
	}
	upd := cfg.DeepCopy()
	changed := false
	for i := range upd.Webhooks {
		if !bytes.Equal(upd.Webhooks[i].ClientConfig.CABundle, caBundle) {
			upd.Webhooks[i].ClientConfig.CABundle = caBundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := m.c.Patch(ctx, upd, client.MergeFromWithOptions(&cfg, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patching the CA bundle into ValidatingWebhookConfiguration %s: %w", m.opts.WebhookConfigName, err)
	}
	return nil
}
