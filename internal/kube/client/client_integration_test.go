package client_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// newClient returns a client with the speaker's scheme (kube.Scheme), not the test's full one: a
// kind missing from it fails here as it would in the speaker.
func newClient(t *testing.T) *client.REST {
	t.Helper()
	testenv.Require(t, env)
	s, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryKindOfTheSchemeIsServed lists every kind the speaker's scheme knows that the API
// server lists: each resource name the client guesses (Community -> communities, ServiceL2Status
// -> servicel2statuses) must be the one the API server serves, or the list fails with NotFound.
func TestEveryKindOfTheSchemeIsServed(t *testing.T) {
	c := newClient(t)
	ns := env.NewNamespace(t, "client")
	n := 0
	for gvk := range c.Scheme().AllKnownTypes() {
		if len(gvk.Kind) <= len("List") || gvk.Kind[len(gvk.Kind)-4:] != "List" || gvk.Version == "__internal" {
			continue
		}
		obj, err := c.Scheme().New(gvk)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := obj.(client.ObjectList)
		if !ok || gvk.Kind == "APIResourceList" || gvk.Kind == "APIGroupList" {
			continue
		}
		// Namespaced kinds in a namespace; cluster-scoped ones (Nodes, Namespaces) answer NotFound
		// there and are listed cluster-wide.
		err = c.List(t.Context(), l, client.InNamespace(ns))
		if apierrors.IsNotFound(err) {
			err = c.List(t.Context(), l)
		}
		if apierrors.IsMethodNotSupported(err) { // a create-only review kind
			continue
		}
		if err != nil {
			t.Errorf("listing %s: %v", gvk, err)
		}
		n++
	}
	if n < 20 {
		t.Errorf("listed %d kinds, want every list kind of core, discovery, apps and Herald's", n)
	}
}

// TestWriteReadRoundTrip: create, get, update, merge patch, status update and delete of real
// objects, each answer decoded into the caller's object.
func TestWriteReadRoundTrip(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns := env.NewNamespace(t, "client")

	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}, Data: map[string][]byte{"k": []byte("v")}}
	if err := c.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if sec.UID == "" || sec.ResourceVersion == "" {
		t.Fatalf("created Secret has no UID or resourceVersion: %+v", sec.ObjectMeta)
	}
	var got corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "s"}, &got); err != nil || string(got.Data["k"]) != "v" {
		t.Fatalf("Get = %v, %q; want the Secret", err, got.Data["k"])
	}
	got.Data["k"] = []byte("w")
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion == sec.ResourceVersion {
		t.Error("Update did not decode the new resourceVersion")
	}
	if err := c.Patch(ctx, &got, types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`)); err != nil {
		t.Fatal(err)
	}
	if got.Labels["a"] != "b" || string(got.Data["k"]) != "w" {
		t.Errorf("after the patch: labels %v, data %q", got.Labels, got.Data["k"])
	}
	// A stale update is refused (optimistic concurrency reaches the caller).
	if err := c.Update(ctx, sec); !apierrors.IsConflict(err) {
		t.Errorf("stale Update = %v, want a conflict", err)
	}

	// The status subresource: Update leaves status alone, Status().Update writes only status.
	st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "n1-app-web"}}
	if err := c.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Status = v1beta1.ServiceL2StatusStatus{Node: "n1", ServiceName: "web", ServiceNamespace: "app"}
	if err := c.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	var held v1beta1.ServiceL2Status
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: st.Name}, &held); err != nil || held.Status.Node != "n1" {
		t.Errorf("status after Status().Update: %v, %+v", err, held.Status)
	}

	if err := c.Delete(ctx, &got); err != nil {
		t.Fatal(err)
	}
	err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "s"}, &got)
	if !apierrors.IsNotFound(err) || client.IgnoreNotFound(err) != nil {
		t.Errorf("Get after Delete = %v, want NotFound", err)
	}
	if err := c.Delete(ctx, &got); !apierrors.IsNotFound(err) {
		t.Errorf("second Delete = %v, want NotFound", err)
	}
}

// TestListSelectsPagesAndDeletesAllOf: a list keeps to its namespace and label selector, pages
// with the reflector's Raw options, and DeleteAllOf removes exactly what the selector selects.
func TestListSelectsPagesAndDeletesAllOf(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns, other := env.NewNamespace(t, "client"), env.NewNamespace(t, "client")
	for i := range 5 {
		node := "n1"
		if i%2 == 1 {
			node = "n2"
		}
		for _, n := range []string{ns, other} {
			o := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: fmt.Sprintf("s%d", i),
				Labels: map[string]string{"node": node}}}
			if err := c.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := func(opts ...client.ListOption) []string {
		t.Helper()
		var l v1beta1.ServiceBGPStatusList
		if err := c.List(ctx, &l, opts...); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range l.Items {
			out = append(out, o.Namespace+"/"+o.Name)
		}
		slices.Sort(out)
		return out
	}
	if got, want := names(client.InNamespace(ns), client.MatchingLabels{"node": "n2"}), []string{ns + "/s1", ns + "/s3"}; !slices.Equal(got, want) {
		t.Errorf("n2's in %s: %v, want %v", ns, got, want)
	}
	if got := names(client.MatchingLabels{"node": "n1"}); len(got) != 6 {
		t.Errorf("n1's in every namespace: %v, want 6", got)
	}

	// Pages of 2 through Raw, as a reflector asks.
	var all []string
	raw := metav1.ListOptions{Limit: 2}
	for pages := 1; ; pages++ {
		var l v1beta1.ServiceBGPStatusList
		if err := c.List(ctx, &l, &client.ListOptions{Namespace: ns, Raw: &raw}); err != nil {
			t.Fatal(err)
		}
		if len(l.Items) > 2 {
			t.Fatalf("page %d has %d items, want at most 2", pages, len(l.Items))
		}
		for _, o := range l.Items {
			all = append(all, o.Name)
		}
		if l.Continue == "" {
			break
		}
		if pages > 5 {
			t.Fatal("more than 5 pages of 5 objects")
		}
		raw.Continue = l.Continue
	}
	if !slices.Equal(all, []string{"s0", "s1", "s2", "s3", "s4"}) {
		t.Errorf("paged list: %v", all)
	}

	sel, err := labels.Parse("node notin (n1)")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAllOf(ctx, &v1beta1.ServiceBGPStatus{}, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		t.Fatal(err)
	}
	if got, want := names(client.InNamespace(ns)), []string{ns + "/s0", ns + "/s2", ns + "/s4"}; !slices.Equal(got, want) {
		t.Errorf("after deleting n2's in %s: %v, want %v", ns, got, want)
	}
	if got := names(client.InNamespace(other)); len(got) != 5 {
		t.Errorf("%s after a DeleteAllOf in %s: %v, want all 5", other, ns, got)
	}
}

// TestWatchDecodesTypedEvents: a watch from a list's resource version sees a new object as a
// typed ADDED event and its deletion as DELETED.
func TestWatchDecodesTypedEvents(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ns := env.NewNamespace(t, "client")
	var l corev1.ConfigMapList
	if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, &corev1.ConfigMapList{}, &client.ListOptions{Namespace: ns, Raw: &metav1.ListOptions{ResourceVersion: l.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	var seen []watch.EventType
	for len(seen) < 2 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended after %v", seen)
			}
			got, isCM := ev.Object.(*corev1.ConfigMap)
			if !isCM || got.Name != "c" {
				t.Fatalf("event %s of %s, want the ConfigMap c", ev.Type, reflect.TypeOf(ev.Object))
			}
			seen = append(seen, ev.Type)
		case <-ctx.Done():
			t.Fatalf("events %v, want ADDED and DELETED", seen)
		}
	}
	if !slices.Equal(seen, []watch.EventType{watch.Added, watch.Deleted}) {
		t.Errorf("events %v, want ADDED, DELETED", seen)
	}
}

// TestClusterScopedKind: a key or list without a namespace reaches a cluster-scoped kind.
func TestClusterScopedKind(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "client-"}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	var got corev1.Node
	if err := c.Get(ctx, types.NamespacedName{Name: node.Name}, &got); err != nil || got.UID != node.UID {
		t.Errorf("Get of Node %s = %v (UID %s, want %s)", node.Name, err, got.UID, node.UID)
	}
	var l corev1.NodeList
	if err := c.List(ctx, &l); err != nil || !slices.ContainsFunc(l.Items, func(n corev1.Node) bool { return n.Name == node.Name }) {
		t.Errorf("List of Nodes = %v, without %s", err, node.Name)
	}
}

// TestUnknownKindIsAClearError: an object whose kind the scheme lacks is refused before any
// request, naming the type.
func TestUnknownKindIsAClearError(t *testing.T) {
	c := newClient(t)
	type notRegistered struct{ corev1.ConfigMap }
	err := c.Get(t.Context(), types.NamespacedName{Namespace: "x", Name: "y"}, &notRegistered{})
	if err == nil {
		t.Fatal("Get of an unregistered type succeeded")
	}
}

// contentTypes records the content type of each answer by request path.
type contentTypes struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]string
}

func (c *contentTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.seen[r.URL.Path] = resp.Header.Get("Content-Type")
		c.mu.Unlock()
	}
	return resp, err
}

// TestBuiltinKindsTravelAsProtobuf: lists of built-in kinds come as protobuf, as
// controller-runtime's client and client-go's clientsets ask for them (decoding every Service and
// EndpointSlice as JSON costs a speaker several times the CPU); Herald's custom resources as JSON.
func TestBuiltinKindsTravelAsProtobuf(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "client")
	rec := &contentTypes{seen: map[string]string{}}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	s, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []client.ObjectList{&corev1.ServiceList{}, &discoveryv1.EndpointSliceList{}, &v1beta1.ServiceL2StatusList{}} {
		if err := c.List(t.Context(), l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"/api/v1/namespaces/" + ns + "/services":                           "application/vnd.kubernetes.protobuf",
		"/apis/discovery.k8s.io/v1/namespaces/" + ns + "/endpointslices":   "application/vnd.kubernetes.protobuf",
		"/apis/herald.dev/v1beta1/namespaces/" + ns + "/servicel2statuses": "application/json",
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for path, ct := range want {
		if !strings.HasPrefix(rec.seen[path], ct) {
			t.Errorf("%s answered as %q, want %s", path, rec.seen[path], ct)
		}
	}
}
