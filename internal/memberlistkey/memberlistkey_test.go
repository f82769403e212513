package memberlistkey

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

func TestEnsureSecretCreatesAndKeeps(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	if err := EnsureSecret(t.Context(), crclient.Client(c), "herald-system", "herald-memberlist"); err != nil {
		t.Fatalf("EnsureSecret: %v", err)
	}
	var sec corev1.Secret
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "herald-system", Name: "herald-memberlist"}, &sec); err != nil {
		t.Fatal(err)
	}
	k, err := FromSecret(&sec)
	if err != nil || len(k) != Size {
		t.Fatalf("key of %d bytes, err %v; want %d bytes", len(k), err, Size)
	}
	if err := EnsureSecret(t.Context(), crclient.Client(c), "herald-system", "herald-memberlist"); err != nil {
		t.Fatalf("second EnsureSecret: %v", err)
	}
	var again corev1.Secret
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "herald-system", Name: "herald-memberlist"}, &again); err != nil {
		t.Fatal(err)
	}
	if string(again.Data[DataKey]) != string(k) {
		t.Error("EnsureSecret replaced an existing key")
	}
	if again.Labels[v1beta1.LabelSpeakerSecret] != "true" {
		t.Errorf("labels %v: the speakers cannot read the Secret without %s=true", again.Labels, v1beta1.LabelSpeakerSecret)
	}
}

func TestEnsureSecretLabelsAnExistingSecretForTheSpeakers(t *testing.T) {
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m", Labels: map[string]string{"team": "net"}},
		Data: map[string][]byte{DataKey: make([]byte, 32)}}
	c := fake.NewClientBuilder().WithObjects(mine).Build()
	if err := EnsureSecret(t.Context(), crclient.Client(c), "ns", "m"); err != nil {
		t.Fatal(err)
	}
	var got corev1.Secret
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "ns", Name: "m"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1beta1.LabelSpeakerSecret] != "true" || got.Labels["team"] != "net" {
		t.Errorf("labels %v, want %s=true added to the others", got.Labels, v1beta1.LabelSpeakerSecret)
	}
}

func TestEnsureSecretRejectsBadExistingKey(t *testing.T) {
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m"}, Data: map[string][]byte{DataKey: []byte("short")}}
	c := fake.NewClientBuilder().WithObjects(bad).Build()
	if err := EnsureSecret(t.Context(), crclient.Client(c), "ns", "m"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("EnsureSecret = %v, want ErrBadKey", err)
	}
}

func TestFromSecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string][]byte
		ok   bool
	}{
		{name: "32 bytes", data: map[string][]byte{DataKey: make([]byte, 32)}, ok: true},
		{name: "16 bytes", data: map[string][]byte{DataKey: make([]byte, 16)}, ok: true},
		{name: "missing", data: map[string][]byte{"other": make([]byte, 32)}},
		{name: "33 bytes", data: map[string][]byte{DataKey: make([]byte, 33)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSecret(&corev1.Secret{Data: tc.data})
			if (err == nil) != tc.ok {
				t.Fatalf("FromSecret error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestKeysFromSecret(t *testing.T) {
	k := func(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }
	tests := []struct {
		name    string
		data    map[string][]byte
		want    Keys
		wantErr string
	}{
		{name: "primary only", data: map[string][]byte{DataKey: k('a', 32)}, want: Keys{Primary: k('a', 32)}},
		{
			name: "secondaries sorted by name, other data ignored",
			data: map[string][]byte{DataKey: k('a', 32), OldKey: k('o', 32), NextKey: k('n', 16), "other": k('x', 3)},
			want: Keys{Primary: k('a', 32), Secondary: [][]byte{k('n', 16), k('o', 32)}},
		},
		{
			name: "duplicates dropped",
			data: map[string][]byte{DataKey: k('a', 32), OldKey: k('a', 32), SecondaryPrefix + "x": k('b', 32), SecondaryPrefix + "y": k('b', 32)},
			want: Keys{Primary: k('a', 32), Secondary: [][]byte{k('b', 32)}},
		},
		{name: "no primary", data: map[string][]byte{NextKey: k('n', 32)}, wantErr: `has no key "secretkey"`},
		{name: "bad secondary named", data: map[string][]byte{DataKey: k('a', 32), NextKey: k('n', 31)}, wantErr: `key "secretkey.next" is 31 bytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KeysFromSecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m"}, Data: tc.data})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("KeysFromSecret error = %v, want ErrBadKey containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRotationSteps(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m"}, Data: map[string][]byte{DataKey: oldKey}}
	keys := func() Keys {
		t.Helper()
		ks, err := KeysFromSecret(sec)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	if err := Promote(sec); !errors.Is(err, ErrRotationStep) {
		t.Errorf("Promote before Stage: %v, want %v", err, ErrRotationStep)
	}
	if err := Retire(sec); !errors.Is(err, ErrRotationStep) {
		t.Errorf("Retire before Stage: %v, want %v", err, ErrRotationStep)
	}
	if err := Stage(sec, []byte("short")); !errors.Is(err, ErrBadKey) {
		t.Errorf("Stage of a 5-byte key: %v, want %v", err, ErrBadKey)
	}

	if err := Stage(sec, newKey); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if diff := cmp.Diff(Keys{Primary: oldKey, Secondary: [][]byte{newKey}}, keys()); diff != "" {
		t.Errorf("after Stage (-want +got):\n%s", diff)
	}
	if err := Stage(sec, newKey); !errors.Is(err, ErrRotationStep) {
		t.Errorf("second Stage: %v, want %v", err, ErrRotationStep)
	}
	if err := Retire(sec); !errors.Is(err, ErrRotationStep) {
		t.Errorf("Retire before Promote: %v, want %v", err, ErrRotationStep)
	}

	if err := Promote(sec); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if diff := cmp.Diff(Keys{Primary: newKey, Secondary: [][]byte{oldKey}}, keys()); diff != "" {
		t.Errorf("after Promote (-want +got):\n%s", diff)
	}

	if err := Retire(sec); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	if diff := cmp.Diff(Keys{Primary: newKey}, keys()); diff != "" {
		t.Errorf("after Retire (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{DataKey}, slices.Sorted(maps.Keys(sec.Data))); diff != "" {
		t.Errorf("data keys left (-want +got):\n%s", diff)
	}
}

func TestKeysEqual(t *testing.T) {
	a, b := bytes.Repeat([]byte("A"), 32), bytes.Repeat([]byte("B"), 32)
	for _, tc := range []struct {
		x, y Keys
		want bool
	}{
		{Keys{Primary: a}, Keys{Primary: bytes.Clone(a)}, true},
		{Keys{Primary: a, Secondary: [][]byte{b}}, Keys{Primary: a, Secondary: [][]byte{bytes.Clone(b)}}, true},
		{Keys{Primary: a}, Keys{Primary: b}, false},
		{Keys{Primary: a}, Keys{Primary: a, Secondary: [][]byte{b}}, false},
		{Keys{Primary: a, Secondary: [][]byte{b}}, Keys{Primary: b, Secondary: [][]byte{a}}, false},
	} {
		if got := tc.x.Equal(tc.y); got != tc.want {
			t.Errorf("%v.Equal(%v) = %v, want %v", tc.x, tc.y, got, tc.want)
		}
	}
}
