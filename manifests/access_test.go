package manifests_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/cache"
	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/kube/crclient"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/internal/metrics"
	"github.com/herald-lb/herald/speaker/agent"
	"github.com/herald-lb/herald/speaker/status"
)

// as returns the environment's REST configuration acting as a ServiceAccount of herald-system,
// so that what a binary does with it is checked against the installed RBAC.
func as(sa string) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:herald-system:" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:herald-system", "system:authenticated"},
	}
	return cfg
}

// speakerCache starts the cache of node's speaker, with its cache options and as its
// ServiceAccount, until the test ends.
func speakerCache(t *testing.T, node string) *cache.Cache {
	t.Helper()
	c, err := cache.New(speakerClient(t), agent.CacheOptions("herald-system", node))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	return c
}

// speakerClient returns a client as the speaker makes one, acting as its ServiceAccount.
func speakerClient(t *testing.T) *kclient.REST {
	t.Helper()
	c, err := kclient.New(as("herald-speaker"), nil, env.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createOrKeep(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(t.Context(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}

// TestSpeakerReadsOnlyLabelledSecrets runs the speaker's cache, with the speaker's cache options
// and as its ServiceAccount, and lists the Secrets of herald-system: the memberlist key (made by
// the controller's code) and a labelled BGP password are there, the webhook's CA key and an
// unlabelled password are not.
func TestSpeakerReadsOnlyLabelledSecrets(t *testing.T) {
	applyKustomization(t)
	ctx := t.Context()
	if err := memberlistkey.EnsureSecret(ctx, crclient.Client(env.Client), "herald-system", "herald-memberlist"); err != nil {
		t.Fatal(err)
	}
	speakerLabel := map[string]string{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "herald-webhook-cert"}, Data: map[string][]byte{"ca.key": []byte("k")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "tor-password", Labels: speakerLabel}, Data: map[string][]byte{"password": []byte("p")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "unlabelled-password"}, Data: map[string][]byte{"password": []byte("p")}},
	} {
		createOrKeep(t, s)
	}

	c := speakerCache(t, "n1")
	var list corev1.SecretList
	waitUp(t, func() error { return c.List(ctx, &list, kclient.InNamespace("herald-system")) })
	var got []string
	for _, s := range list.Items {
		got = append(got, s.Name)
	}
	for _, want := range []string{"herald-memberlist", "tor-password"} {
		if !slices.Contains(got, want) {
			t.Errorf("the speaker does not see Secret %s (sees %v)", want, got)
		}
	}
	for _, hidden := range []string{"herald-webhook-cert", "unlabelled-password"} {
		if slices.Contains(got, hidden) {
			t.Errorf("the speaker reads Secret %s, which lacks %s=true", hidden, v1beta1.LabelSpeakerSecret)
		}
	}
}

// TestSpeakerCachesOnlyItsOwnBGPStatus runs the speaker's cache as its ServiceAccount: of the
// ServiceBGPStatus and BGPSessionStatus objects it holds only its own node's (every node writes
// one ServiceBGPStatus per BGP Service); the ServiceL2Status objects, which its reflector reads
// outside the cache, it may list and watch in its namespace. The status writer of the first live
// speaker then deletes a dead speaker's BGP objects by label, with the speaker's RBAC.
func TestSpeakerCachesOnlyItsOwnBGPStatus(t *testing.T) {
	applyKustomization(t)
	ctx := t.Context()
	for _, node := range []string{"n1", "n2"} {
		createOrKeep(t, &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: node + "-app-web",
			Labels: map[string]string{status.LabelNode: node, status.LabelServiceName: "web", status.LabelServiceNamespace: "app"}}})
		createOrKeep(t, &v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: node + "-rt",
			Labels: map[string]string{status.LabelNode: node, status.LabelPeer: "rt"}}})
		createOrKeep(t, &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: node + "-app-db",
			Labels: map[string]string{status.LabelNode: node, status.LabelServiceName: "db", status.LabelServiceNamespace: "app"}}})
	}

	c := speakerCache(t, "n1")
	names := func(l kclient.ObjectList) []string {
		t.Helper()
		waitUp(t, func() error { return c.List(ctx, l, kclient.InNamespace("herald-system")) })
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range items {
			out = append(out, o.(client.Object).GetName())
		}
		slices.Sort(out)
		return out
	}
	if got := names(&v1beta1.ServiceBGPStatusList{}); !slices.Equal(got, []string{"n1-app-web"}) {
		t.Errorf("ServiceBGPStatus in the speaker's cache: %v, want only its own", got)
	}
	if got := names(&v1beta1.BGPSessionStatusList{}); !slices.Equal(got, []string{"n1-rt"}) {
		t.Errorf("BGPSessionStatus in the speaker's cache: %v, want only its own", got)
	}
	// The ServiceL2Status objects are not cached: the speaker's reflector lists and watches every
	// node's (it learns the other speakers' MACs from them) in its namespace.
	sc, err := kclient.New(as("herald-speaker"), nil, env.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	var l2 v1beta1.ServiceL2StatusList
	waitUp(t, func() error { return sc.List(ctx, &l2, kclient.InNamespace("herald-system")) })
	var got []string
	for _, o := range l2.Items {
		got = append(got, o.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"n1-app-db", "n2-app-db"}) {
		t.Errorf("ServiceL2Status the speaker lists: %v, want every node's", got)
	}
	wi, err := sc.Watch(ctx, &v1beta1.ServiceL2StatusList{}, kclient.InNamespace("herald-system"))
	if err != nil {
		t.Errorf("the speaker watching ServiceL2Status: %v", err)
	} else {
		wi.Stop()
	}

	// n1 sweeps: n2 is dead.
	w := status.NewWriter(kclient.Split(c, sc), "herald-system", "n1", slog.New(slog.DiscardHandler), nil)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go w.Run(wctx)
	w.Set(status.Desired{Sweep: map[string]bool{"n1": true},
		L2:  map[string]v1beta1.ServiceL2StatusStatus{"n1-app-db": {Node: "n1", ServiceName: "db", ServiceNamespace: "app"}},
		BGP: map[string]v1beta1.ServiceBGPStatusStatus{"n1-app-web": {Node: "n1", ServiceName: "web", ServiceNamespace: "app"}}})
	gone := func(o client.Object) error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("reading %T %s: %w", o, o.GetName(), err)
		}
		return fmt.Errorf("%T %s still there", o, o.GetName())
	}
	waitUp(t, func() error {
		return errors.Join(
			gone(&v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "n2-app-web"}}),
			gone(&v1beta1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "n2-rt"}}),
			gone(&v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "n2-app-db"}}))
	})
	for _, o := range []client.Object{
		&v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "n1-app-web"}},
		&v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "n1-app-db"}},
	} {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("the sweeping speaker's own %T %s: %v", o, o.GetName(), err)
		}
	}
}

// TestMetricsNeedAnAuthorizedToken serves metrics as each binary does (checking clients with
// the API server as the binary's ServiceAccount): no token gets 401, a token without get on
// /metrics 403, a token of a ServiceAccount bound to herald-metrics-reader 200 and the metrics.
func TestMetricsNeedAnAuthorizedToken(t *testing.T) {
	applyKustomization(t)
	ctx := t.Context()
	createOrKeep(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}})
	for _, sa := range []string{"prometheus", "nosy"} {
		createOrKeep(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: sa}})
	}
	createOrKeep(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-herald-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "herald-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "monitoring", Name: "prometheus"}}})
	token := func(sa string) string {
		out, err := env.Kubectl("create", "token", sa, "-n", "monitoring")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	promToken, nosyToken := token("prometheus"), token("nosy")

	for _, binary := range []string{"herald-controller", "herald-speaker"} {
		t.Run(binary, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_test_scrapes_total", Help: "test"})
			reg.MustRegister(c)
			c.Add(7)
			addr := freeAddr(t)
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- metrics.Server{Addr: addr, Gatherer: reg, Secure: true, Config: as(binary), Log: logr.Discard()}.Start(sctx)
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("metrics server: %v", err)
				}
			})

			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the server's self-signed certificate
			scrape := func(tok string) (int, string, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+metrics.Path, nil)
				if err != nil {
					return 0, "", err
				}
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := hc.Do(req)
				if err != nil {
					return 0, "", err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body), nil
			}
			waitUp(t, func() error { _, _, err := scrape(""); return err })

			for _, tc := range []struct {
				name  string
				token string
				want  []int
			}{
				{"no token", "", []int{http.StatusUnauthorized}},
				{"a token the API server does not know", "not-a-token", []int{http.StatusUnauthorized}},
				{"a ServiceAccount without get on /metrics", nosyToken, []int{http.StatusForbidden}},
				{"a ServiceAccount bound to herald-metrics-reader", promToken, []int{http.StatusOK}},
			} {
				code, body, err := scrape(tc.token)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if !slices.Contains(tc.want, code) {
					t.Errorf("%s: %d, want %v: %.200s", tc.name, code, tc.want, body)
				}
				if tc.want[0] == http.StatusOK && !strings.Contains(body, "herald_test_scrapes_total 7") {
					t.Errorf("%s: the metrics are missing:\n%.500s", tc.name, body)
				}
				if tc.want[0] != http.StatusOK && strings.Contains(body, "herald_test_scrapes_total") {
					t.Errorf("%s: metrics served to a client that may not read them", tc.name)
				}
			}
			// Plain HTTP gets nothing either.
			if resp, err := hc.Get("http://" + addr + metrics.Path); err == nil { //nolint:noctx // bounded by the client timeout
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "herald_test_scrapes_total") {
					t.Error("metrics served over plain HTTP")
				}
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// waitUp polls f every 50ms until it succeeds, for at most 10s.
func waitUp(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %v", err)
		}
		<-tick.C
	}
}
