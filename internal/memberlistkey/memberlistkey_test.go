package memberlistkey

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/herald-lb/herald/api/v1beta1"
)

func TestEnsureSecretCreatesAndKeeps(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	if err := EnsureSecret(t.Context(), c, "herald-system", "herald-memberlist"); err != nil {
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
	if err := EnsureSecret(t.Context(), c, "herald-system", "herald-memberlist"); err != nil {
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
	if err := EnsureSecret(t.Context(), c, "ns", "m"); err != nil {
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
	if err := EnsureSecret(t.Context(), c, "ns", "m"); !errors.Is(err, ErrBadKey) {
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
