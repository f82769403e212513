package members

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
)

// ErrNotEncrypted is returned by SetKeys on members started without a key: memberlist cannot
// turn encryption on (or off) while it runs.
var ErrNotEncrypted = errors.New("memberlist runs unencrypted; keys can only be changed on encrypted members")

// Key rotation
//
// Every member encrypts what it sends with its primary key and accepts what any key of its
// keyring decrypts. A rotation from key A to key B therefore never splits the cluster when it
// goes in three steps, each applied by every member before the next begins:
//
//  1. install B as a secondary key (members send with A, accept A and B);
//  2. make B primary and keep A as secondary (members send with B, accept A and B);
//  3. remove A (members send and accept B).
//
// Between steps 1 and 2 a member that already switched sends with B, which the others accept
// since step 1; between 2 and 3 a member that still sends with A is understood by those that
// switched, since they kept A. Skipping a step (A straight to B) splits the members that
// applied it from those that did not until all have.

// SetKeys replaces the keyring: primary encrypts everything this member sends from now on,
// primary and secondary are accepted on what it receives, and every other key is dropped. The
// order of the changes (add, switch, remove) keeps every key that was or will be in use
// accepted at every moment on this member. It returns whether anything changed.
func (m *Members) SetKeys(primary []byte, secondary [][]byte) (bool, error) {
	if m.keyring == nil {
		return false, fmt.Errorf("setting the keys of %s: %w", m.cfg.NodeName, ErrNotEncrypted)
	}
	want := append([][]byte{primary}, secondary...)
	for i, k := range want {
		if err := memberlist.ValidateKey(k); err != nil {
			return false, fmt.Errorf("setting the keys of %s: key %d (%s) of %d bytes: %w", m.cfg.NodeName, i, Fingerprint(k), len(k), err)
		}
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	before := m.keyFingerprints()
	for _, k := range want {
		if err := m.keyring.AddKey(slices.Clone(k)); err != nil {
			return false, fmt.Errorf("installing key %s on %s: %w", Fingerprint(k), m.cfg.NodeName, err)
		}
	}
	if err := m.keyring.UseKey(primary); err != nil {
		return false, fmt.Errorf("making key %s primary on %s: %w", Fingerprint(primary), m.cfg.NodeName, err)
	}
	for _, k := range cloneKeys(m.keyring.GetKeys()) {
		if slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, k) }) {
			continue
		}
		if err := m.keyring.RemoveKey(k); err != nil {
			return false, fmt.Errorf("removing key %s from %s: %w", Fingerprint(k), m.cfg.NodeName, err)
		}
	}
	after := m.keyFingerprints()
	changed := !slices.Equal(before, after)
	if changed {
		m.log.Info("memberlist keyring changed", "primary", after[0], "keys", after, "before", before)
		m.setKeyMetrics()
	}
	return changed, nil
}

// KeyFingerprints returns the fingerprints (see Fingerprint) of the keys in use, the primary key
// first; nil when unencrypted.
func (m *Members) KeyFingerprints() []string {
	if m.keyring == nil {
		return nil
	}
	return m.keyFingerprints()
}

func (m *Members) keyFingerprints() []string {
	if m.keyring == nil {
		return nil
	}
	keys := cloneKeys(m.keyring.GetKeys())
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, Fingerprint(k))
	}
	return out
}

// Fingerprint names a key in logs and metrics without revealing it: the first 8 bytes of its
// SHA-256, in hex.
func Fingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

func newKeyring(primary []byte, secondary [][]byte) (*memberlist.Keyring, error) {
	kr, err := memberlist.NewKeyring(cloneKeys(secondary), slices.Clone(primary))
	if err != nil {
		return nil, fmt.Errorf("building the memberlist keyring: %w", err)
	}
	return kr, nil
}

// cloneKeys copies keys; memberlist's keyring hands out and keeps its own slices.
func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		out = append(out, slices.Clone(k))
	}
	return out
}
