// Package memberlistkey owns the Secret that holds the speakers' memberlist encryption key: the
// controller creates it with a random key when it is missing (so a plain install is encrypted),
// and the speaker reads the key from it. Both binaries share the format defined here.
package memberlistkey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
)

// DataKey is the key of the Secret's data that holds the memberlist key.
const DataKey = "secretkey"

// Size is the length of a generated key: 32 bytes selects AES-256 in memberlist.
const Size = 32

// ErrBadKey means the Secret has no usable key (missing, or not 16, 24 or 32 bytes long).
var ErrBadKey = errors.New("no usable memberlist key")

// EnsureSecret creates the Secret namespace/name with a random Size-byte key under DataKey when
// no such Secret exists, labelled v1beta1.LabelSpeakerSecret=true so that the speakers can read
// it. An existing Secret keeps its key (an administrator may have set it), which is only checked
// (an error matching ErrBadKey when it is unusable), and gets the label if it lacks it.
// Concurrent callers are safe: the loser of a create race reads the winner's Secret.
func EnsureSecret(ctx context.Context, c client.Client, namespace, name string) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var sec corev1.Secret
	err := c.Get(ctx, key, &sec)
	if apierrors.IsNotFound(err) {
		k := make([]byte, Size)
		if _, err := rand.Read(k); err != nil {
			return fmt.Errorf("generating the memberlist key: %w", err)
		}
		sec = corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{DataKey: k}}
		sec.Namespace, sec.Name = namespace, name
		sec.Labels = map[string]string{"app.kubernetes.io/name": "herald", "app.kubernetes.io/component": "speaker",
			v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue}
		err = c.Create(ctx, &sec)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Secret %s: %w", key, err)
		}
		err = c.Get(ctx, key, &sec)
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if _, err := FromSecret(&sec); err != nil {
		return err
	}
	return labelForSpeakers(ctx, c, &sec)
}

// labelForSpeakers adds v1beta1.LabelSpeakerSecret to an existing Secret that lacks it (made by
// an administrator or an older version), since the speakers read only Secrets with that label.
func labelForSpeakers(ctx context.Context, c client.Client, sec *corev1.Secret) error {
	if sec.Labels[v1beta1.LabelSpeakerSecret] == v1beta1.LabelSpeakerSecretValue {
		return nil
	}
	orig := sec.DeepCopy()
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[v1beta1.LabelSpeakerSecret] = v1beta1.LabelSpeakerSecretValue
	if err := c.Patch(ctx, sec, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("labelling Secret %s/%s %s=%s for the speakers: %w", sec.Namespace, sec.Name,
			v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue, err)
	}
	return nil
}

// FromSecret returns the memberlist key of the Secret: 16, 24 or 32 bytes (AES-128/192/256).
func FromSecret(sec *corev1.Secret) ([]byte, error) {
	k, ok := sec.Data[DataKey]
	if !ok {
		if s, ok2 := sec.StringData[DataKey]; ok2 {
			k, ok = []byte(s), true
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: Secret %s/%s has no key %q", ErrBadKey, sec.Namespace, sec.Name, DataKey)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%w: Secret %s/%s key %q is %d bytes; it must be 16, 24 or 32 bytes (32 recommended)", ErrBadKey, sec.Namespace, sec.Name, DataKey, len(k))
}
