package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/kube/cache"
	kclient "github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

func TestMemberlistKeysAtStart(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	ns := env.NewNamespace(t, "herald")
	log := slog.New(slog.DiscardHandler)
	keyA := bytes.Repeat([]byte("A"), 32)

	if _, err := MemberlistKeys(ctx, testWatcher(t), KeySource{Namespace: ns}, log); !errors.Is(err, ErrUnencryptedRefused) {
		t.Errorf("no Secret named, unencrypted not allowed: %v, want %v", err, ErrUnencryptedRefused)
	}
	if ks, err := MemberlistKeys(ctx, testWatcher(t), KeySource{Namespace: ns, AllowUnencrypted: true}, log); err != nil || ks.Primary != nil {
		t.Errorf("no Secret named, unencrypted allowed: %v, %v; want no key, nil", ks, err)
	}

	// The Secret never comes: an error after the wait, never an unencrypted start.
	begin := time.Now()
	ks, err := MemberlistKeys(ctx, testWatcher(t), KeySource{Namespace: ns, Secret: "missing", Wait: 1500 * time.Millisecond, AllowUnencrypted: true}, log)
	if !errors.Is(err, ErrUnencryptedRefused) || ks.Primary != nil {
		t.Errorf("missing Secret: %v, %v; want no key and %v", ks, err, ErrUnencryptedRefused)
	}
	if took := time.Since(begin); took < 1500*time.Millisecond {
		t.Errorf("gave up after %s, before the 1.5s wait", took)
	}

	// The Secret comes while the speaker waits (the controller makes it on a fresh install).
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "herald-memberlist"},
		Data: map[string][]byte{memberlistkey.DataKey: keyA, memberlistkey.OldKey: bytes.Repeat([]byte("O"), 16)}}
	go func() {
		timer := time.NewTimer(time.Second)
		defer timer.Stop()
		<-timer.C
		_ = env.Client.Create(ctx, sec)
	}()
	ks, err = MemberlistKeys(ctx, testWatcher(t), KeySource{Namespace: ns, Secret: sec.Name, Wait: 20 * time.Second}, log)
	if err != nil {
		t.Fatalf("Secret made while waiting: %v", err)
	}
	if diff := cmp.Diff(memberlistkey.Keys{Primary: keyA, Secondary: [][]byte{bytes.Repeat([]byte("O"), 16)}}, ks); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}

	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"}, Data: map[string][]byte{memberlistkey.DataKey: []byte("short")}}
	if err := env.Client.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := MemberlistKeys(ctx, testWatcher(t), KeySource{Namespace: ns, Secret: "bad", AllowUnencrypted: true}, log); !errors.Is(err, memberlistkey.ErrBadKey) {
		t.Errorf("unusable key: %v, want %v", err, memberlistkey.ErrBadKey)
	}
}

// fakeKeyring records the keyrings it is given.
type fakeKeyring struct {
	mu    sync.Mutex
	calls []memberlistkey.Keys
}

func (f *fakeKeyring) SetKeys(primary []byte, secondary [][]byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, memberlistkey.Keys{Primary: primary, Secondary: secondary})
	return true, nil
}

func (f *fakeKeyring) last() (memberlistkey.Keys, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return memberlistkey.Keys{}, 0
	}
	return f.calls[len(f.calls)-1], len(f.calls)
}

func TestKeyWatcherFollowsRotation(t *testing.T) {
	testenv.Require(t, env)
	ctx := t.Context()
	c := env.Client
	ns := env.NewNamespace(t, "herald")
	keyA, keyB := bytes.Repeat([]byte("A"), 32), bytes.Repeat([]byte("B"), 32)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "herald-memberlist"}, Data: map[string][]byte{memberlistkey.DataKey: keyA}}
	if err := c.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bgp-password"}, Data: map[string][]byte{"password": []byte("x")}}
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	ch, err := cache.New(testWatcher(t), cache.Options{ByObject: map[kclient.Object]cache.ByObject{&corev1.Secret{}: {Namespace: ns}}})
	if err != nil {
		t.Fatal(err)
	}
	kr := &fakeKeyring{}
	w := &KeyWatcher{Cache: ch, Namespace: ns, Secret: sec.Name, Keyring: kr}
	go func() { _ = ch.Start(ctx) }()
	go func() { _ = w.Start(ctx) }()

	want := func(what string, keys memberlistkey.Keys) {
		t.Helper()
		eventually(t, what, func() bool {
			got, _ := kr.last()
			return cmp.Equal(keys, got)
		})
	}
	want("the keys at start", memberlistkey.Keys{Primary: keyA})

	step := func(name string, f func(*corev1.Secret) error) {
		t.Helper()
		var cur corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(sec), &cur); err != nil {
			t.Fatal(err)
		}
		if err := f(&cur); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Update(ctx, &cur); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	step("stage", func(s *corev1.Secret) error { return memberlistkey.Stage(s, keyB) })
	want("B installed beside A", memberlistkey.Keys{Primary: keyA, Secondary: [][]byte{keyB}})
	step("promote", memberlistkey.Promote)
	want("B primary, A kept", memberlistkey.Keys{Primary: keyB, Secondary: [][]byte{keyA}})
	step("retire", memberlistkey.Retire)
	want("A removed", memberlistkey.Keys{Primary: keyB})

	// Changes to other Secrets, an unusable key and a deleted Secret change nothing.
	_, calls := kr.last()
	other.Data["password"] = []byte("y")
	if err := c.Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	step("break", func(s *corev1.Secret) error { s.Data[memberlistkey.NextKey] = []byte("short"); return nil })
	if err := c.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	// A last, valid change to a new Secret of that name shows the watcher went on working.
	sec2 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sec.Name}, Data: map[string][]byte{memberlistkey.DataKey: keyA}}
	if err := c.Create(ctx, sec2); err != nil {
		t.Fatal(err)
	}
	want("the recreated Secret's key", memberlistkey.Keys{Primary: keyA})
	kr.mu.Lock()
	after := slices.Clone(kr.calls[calls:])
	kr.mu.Unlock()
	if diff := cmp.Diff([]memberlistkey.Keys{{Primary: keyA}}, after); diff != "" {
		t.Errorf("keyrings applied after the rotation (-want +got); an unusable or deleted Secret must change nothing:\n%s", diff)
	}
}
