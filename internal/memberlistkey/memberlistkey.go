// Package memberlistkey owns the Secret that holds the speakers' memberlist encryption keys: the
// controller creates it with a random key when it is missing (so a plain install is encrypted),
// and the speakers read the keys from it, at start and whenever it changes. Both binaries share
// the format defined here.
//
// # Format
//
// The primary key is under DataKey ("secretkey"): every speaker encrypts what it sends with it.
// Keys under names starting with SecondaryPrefix ("secretkey.", for example "secretkey.next" or
// "secretkey.old") are secondary: accepted on what a speaker receives, never used to send. Each
// key is 16, 24 or 32 bytes (AES-128/192/256; the controller makes 32).
//
// # Rotation
//
// A rotation goes in three steps, each applied by every speaker before the next (the speakers'
// herald_speaker_memberlist_keys and herald_speaker_memberlist_primary_key metrics show it):
// Stage adds the new key as "secretkey.next"; Promote makes it primary and keeps the old one
// as "secretkey.old"; Retire removes "secretkey.old". At every moment every speaker accepts the
// key every other speaker sends with, so the speakers never split.
package memberlistkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
)

// DataKey is the key of the Secret's data that holds the primary memberlist key.
const DataKey = "secretkey"

// SecondaryPrefix starts the names of the Secret's data keys that hold secondary keys.
const SecondaryPrefix = DataKey + "."

// Names of the secondary keys the rotation steps use.
const (
	NextKey = SecondaryPrefix + "next"
	OldKey  = SecondaryPrefix + "old"
)

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
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
		v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue,
	}}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, sec, types.MergePatchType, patch); err != nil {
		return fmt.Errorf("labelling Secret %s/%s %s=%s for the speakers: %w", sec.Namespace, sec.Name,
			v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue, err)
	}
	return nil
}

// FromSecret returns the primary memberlist key of the Secret: 16, 24 or 32 bytes (AES-128/192/256).
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
	if err := checkLen(sec, DataKey, k); err != nil {
		return nil, err
	}
	return k, nil
}

// Keys are the memberlist keys a Secret holds.
type Keys struct {
	// Primary encrypts what the speakers send.
	Primary []byte
	// Secondary are also accepted on what they receive, in the order of their names.
	Secondary [][]byte
}

// Equal reports whether k and o hold the same keys in the same roles and order.
func (k Keys) Equal(o Keys) bool {
	return bytes.Equal(k.Primary, o.Primary) && slices.EqualFunc(k.Secondary, o.Secondary, bytes.Equal)
}

// KeysFromSecret returns every key of the Secret, checked: the primary key and the secondary
// keys (data keys starting with SecondaryPrefix, sorted by name, duplicates of the primary or of
// each other dropped). Any unusable key is an error matching ErrBadKey that names it.
func KeysFromSecret(sec *corev1.Secret) (Keys, error) {
	primary, err := FromSecret(sec)
	if err != nil {
		return Keys{}, err
	}
	ks := Keys{Primary: primary}
	names := make([]string, 0, len(sec.Data))
	for name := range sec.Data {
		if strings.HasPrefix(name, SecondaryPrefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		k := sec.Data[name]
		if err := checkLen(sec, name, k); err != nil {
			errs = append(errs, err)
			continue
		}
		if bytes.Equal(k, primary) || slices.ContainsFunc(ks.Secondary, func(o []byte) bool { return bytes.Equal(o, k) }) {
			continue
		}
		ks.Secondary = append(ks.Secondary, k)
	}
	if err := errors.Join(errs...); err != nil {
		return Keys{}, err
	}
	return ks, nil
}

func checkLen(sec *corev1.Secret, name string, k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: Secret %s/%s key %q is %d bytes; it must be 16, 24 or 32 bytes (32 recommended)", ErrBadKey, sec.Namespace, sec.Name, name, len(k))
}

// ErrRotationStep is wrapped by Stage, Promote and Retire when the Secret is not in the state
// their step starts from.
var ErrRotationStep = errors.New("memberlist key rotation out of order")

// Stage is rotation step 1: it adds key as the secondary key NextKey. The Secret must hold no
// secondary key yet (a rotation in progress is finished first).
func Stage(sec *corev1.Secret, key []byte) error {
	ks, err := KeysFromSecret(sec)
	if err != nil {
		return err
	}
	if len(ks.Secondary) > 0 {
		return fmt.Errorf("%w: Secret %s/%s already holds %d secondary key(s): finish or undo that rotation first", ErrRotationStep, sec.Namespace, sec.Name, len(ks.Secondary))
	}
	if err := checkLen(sec, NextKey, key); err != nil {
		return err
	}
	sec.Data[NextKey] = slices.Clone(key)
	return nil
}

// Promote is rotation step 2: NextKey becomes the primary key and the old primary key is kept
// as the secondary key OldKey.
func Promote(sec *corev1.Secret) error {
	if _, err := KeysFromSecret(sec); err != nil {
		return err
	}
	next, ok := sec.Data[NextKey]
	if !ok {
		return fmt.Errorf("%w: Secret %s/%s has no %q to promote (stage it first)", ErrRotationStep, sec.Namespace, sec.Name, NextKey)
	}
	sec.Data[OldKey] = sec.Data[DataKey]
	sec.Data[DataKey] = next
	delete(sec.Data, NextKey)
	return nil
}

// Retire is rotation step 3: it removes OldKey, the key the speakers no longer send with.
func Retire(sec *corev1.Secret) error {
	if _, err := KeysFromSecret(sec); err != nil {
		return err
	}
	if _, ok := sec.Data[NextKey]; ok {
		return fmt.Errorf("%w: Secret %s/%s still stages %q: promote it before retiring the old key", ErrRotationStep, sec.Namespace, sec.Name, NextKey)
	}
	if _, ok := sec.Data[OldKey]; !ok {
		return fmt.Errorf("%w: Secret %s/%s has no %q to retire", ErrRotationStep, sec.Namespace, sec.Name, OldKey)
	}
	delete(sec.Data, OldKey)
	return nil
}
