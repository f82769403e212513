package cache_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/cache"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// start returns a started cache of opts with the speaker's scheme, and the client it reads with.
func start(t *testing.T, opts cache.Options) (*cache.Cache, *client.REST) {
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
	ch, err := cache.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	go func() { _ = ch.Start(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if !ch.WaitForCacheSync(wctx) {
		t.Fatal("cache not synced within a minute")
	}
	return ch, c
}

// eventually polls cond every 20 ms for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		tick := time.NewTimer(20 * time.Millisecond)
		<-tick.C
	}
}

// TestCacheKeepsToItsSelection: a kind limited to a namespace and a label selector holds only
// those objects (others are NotFound, not read from the API server); the kind's transform runs on
// every object stored, the default transform (no managedFields) on the kinds without one.
func TestCacheKeepsToItsSelection(t *testing.T) {
	testenv.Require(t, env)
	ns, other := env.NewNamespace(t, "cache"), env.NewNamespace(t, "cache")
	mine := labels.SelectorFromSet(labels.Set{"node": "n1"})
	ch, c := start(t, cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&v1beta1.ServiceBGPStatus{}: {Namespace: ns, Label: mine, Transform: func(in any) (any, error) {
				if o, ok := in.(*v1beta1.ServiceBGPStatus); ok {
					o.Annotations = map[string]string{"seen": "yes"}
				}
				return in, nil
			}},
			&corev1.ConfigMap{}: {Namespace: ns},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	ctx := t.Context()
	for _, o := range []*v1beta1.ServiceBGPStatus{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine", Labels: map[string]string{"node": "n1"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs", Labels: map[string]string{"node": "n2"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "mine", Labels: map[string]string{"node": "n1"}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}); err != nil {
		t.Fatal(err)
	}

	var got v1beta1.ServiceBGPStatus
	eventually(t, "the cache to hold "+ns+"/mine", func() bool {
		return ch.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mine"}, &got) == nil
	})
	if got.Annotations["seen"] != "yes" {
		t.Errorf("the kind's transform did not run: annotations %v", got.Annotations)
	}
	for _, key := range []types.NamespacedName{{Namespace: ns, Name: "theirs"}, {Namespace: other, Name: "mine"}} {
		if err := ch.Get(ctx, key, &v1beta1.ServiceBGPStatus{}); !apierrors.IsNotFound(err) {
			t.Errorf("Get %s outside the selection = %v, want NotFound", key, err)
		}
	}
	var l v1beta1.ServiceBGPStatusList
	if err := ch.List(ctx, &l); err != nil || len(l.Items) != 1 || l.Items[0].Name != "mine" {
		t.Errorf("List = %v, %d items; want only %s/mine", err, len(l.Items), ns)
	}
	var cm corev1.ConfigMap
	eventually(t, "the cache to hold the ConfigMap", func() bool {
		return ch.Get(ctx, types.NamespacedName{Namespace: ns, Name: "cm"}, &cm) == nil
	})
	if cm.ManagedFields != nil {
		t.Errorf("the default transform left managedFields: %v", cm.ManagedFields)
	}
	if !ch.Holds(&corev1.ConfigMapList{}) || !ch.Holds(&v1beta1.ServiceBGPStatus{}) || ch.Holds(&corev1.Secret{}) {
		t.Error("Holds does not tell the kinds of the options from the others")
	}
}

// TestCacheCopiesUnlessAskedNotTo: what Get and List return is the caller's to change, except a
// list with UnsafeDisableDeepCopy, which shares the stored objects.
func TestCacheCopiesUnlessAskedNotTo(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "cache")
	ch, c := start(t, cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.ConfigMap{}: {Namespace: ns}}})
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}, Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "cm"}
	var got corev1.ConfigMap
	eventually(t, "the cache to hold the ConfigMap", func() bool { return ch.Get(ctx, key, &got) == nil })
	got.Data["k"] = "changed by Get's caller"
	var l corev1.ConfigMapList
	if err := ch.List(ctx, &l, client.InNamespace(ns)); err != nil || len(l.Items) != 1 {
		t.Fatalf("List = %v, %d items", err, len(l.Items))
	}
	if l.Items[0].Data["k"] != "v" {
		t.Errorf("a change to Get's copy reached the cache: %q", l.Items[0].Data["k"])
	}
	l.Items[0].Data["k"] = "changed by List's caller"
	var shared corev1.ConfigMapList
	if err := ch.List(ctx, &shared, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		t.Fatal(err)
	}
	if shared.Items[0].Data["k"] != "v" {
		t.Errorf("a change to List's copy reached the cache: %q", shared.Items[0].Data["k"])
	}
	// The shared list's maps are the cache's own: a change shows in the next read.
	shared.Items[0].Data["k"] = "shared"
	if err := ch.Get(ctx, key, &got); err != nil || got.Data["k"] != "shared" {
		t.Errorf("UnsafeDisableDeepCopy returned a copy (Get after: %v, %q)", err, got.Data["k"])
	}
}

// TestCacheStartsAKindOnFirstUse: a kind the options do not name gets an informer when first
// read (the read waits for its first list) or asked for, and its handlers see later changes.
func TestCacheStartsAKindOnFirstUse(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "cache")
	ch, c := start(t, cache.Options{})
	ctx := t.Context()
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "before"}}); err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := ch.Get(ctx, types.NamespacedName{Namespace: ns, Name: "before"}, &s); err != nil {
		t.Fatalf("first Get of an unnamed kind: %v", err)
	}
	inf, err := ch.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if s, ok := obj.(*corev1.Secret); ok && s.Namespace == ns {
			mu.Lock()
			seen = append(seen, s.Name)
			mu.Unlock()
		}
	}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "after"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the handler to see both Secrets", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(seen, "before") && slices.Contains(seen, "after")
	})
}
