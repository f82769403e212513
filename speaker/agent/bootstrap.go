package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/internal/memberlistkey"
)

// ErrUnencryptedRefused is returned by MemberlistKeys when no key is configured and running
// without encryption was not explicitly allowed.
var ErrUnencryptedRefused = errors.New("refusing to run memberlist unencrypted")

// KeySource says where the memberlist keys come from.
type KeySource struct {
	// Namespace and Secret name the Secret holding the keys (package memberlistkey's format).
	// An empty Secret means no encryption, which AllowUnencrypted must then allow.
	Namespace, Secret string
	// Wait bounds the wait for a Secret that does not exist yet (the controller creates it on a
	// fresh install). After it the speaker fails: it never falls back to unencrypted gossip.
	Wait time.Duration
	// AllowUnencrypted allows an empty Secret name, that is gossip anyone on the network can read
	// and forge.
	AllowUnencrypted bool
}

// MemberlistKeys reads the memberlist keys at start. A missing or unusable Secret is an error
// once Wait has passed, naming the Secret and the fix: a speaker that ran unencrypted beside
// encrypted ones would split the cluster (each side electing owners for every IP).
func MemberlistKeys(ctx context.Context, c client.Reader, src KeySource, log *slog.Logger) (memberlistkey.Keys, error) {
	if src.Secret == "" {
		if !src.AllowUnencrypted {
			return memberlistkey.Keys{}, fmt.Errorf("%w: no memberlist Secret is configured; name one with --memberlist-secret "+
				"(the controller creates it), or pass --memberlist-allow-unencrypted to run without encryption on purpose", ErrUnencryptedRefused)
		}
		log.Warn("memberlist traffic is NOT encrypted (--memberlist-allow-unencrypted and no --memberlist-secret)")
		return memberlistkey.Keys{}, nil
	}
	key := client.ObjectKey{Namespace: src.Namespace, Name: src.Secret}
	deadline := time.Now().Add(src.Wait)
	logged := false
	for {
		var s corev1.Secret
		err := c.Get(ctx, key, &s)
		if err == nil {
			keys, err := memberlistkey.KeysFromSecret(&s)
			if err != nil {
				return memberlistkey.Keys{}, fmt.Errorf("reading the memberlist keys: %w", err)
			}
			return keys, nil
		}
		if time.Now().After(deadline) {
			if apierrors.IsNotFound(err) {
				return memberlistkey.Keys{}, fmt.Errorf("%w: the memberlist key Secret %s does not exist after waiting %s "+
					"(herald-controller creates it at its first start; is it running, with the same --memberlist-secret?)", ErrUnencryptedRefused, key, src.Wait)
			}
			return memberlistkey.Keys{}, fmt.Errorf("reading the memberlist key Secret %s: %w", key, err)
		}
		if !logged {
			log.Info("waiting for the memberlist key Secret", "secret", key.String(), "error", err, "upTo", src.Wait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return memberlistkey.Keys{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Addresses are this node's addresses as the speaker uses them.
type Addresses struct {
	// V4 and V6 are the node's InternalIP of each family (BGP router ID and next hops).
	V4, V6 netip.Addr
	// Host is the address memberlist advertises: --host-ip, else V4, else V6.
	Host netip.Addr
}

// NodeAddresses returns the node's InternalIP of each family, falling back to hostIP for a family
// the Node does not list, and the address to advertise to the other speakers.
func NodeAddresses(ctx context.Context, c client.Reader, node string, hostIP netip.Addr) (Addresses, error) {
	var a Addresses
	var n corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
		return a, fmt.Errorf("reading Node %s: %w", node, err)
	}
	for _, addr := range n.Status.Addresses {
		if addr.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(addr.Address)
		if err != nil {
			continue
		}
		if ip.Is4() && !a.V4.IsValid() {
			a.V4 = ip
		} else if ip.Is6() && !a.V6.IsValid() {
			a.V6 = ip
		}
	}
	if hostIP.Is4() && !a.V4.IsValid() {
		a.V4 = hostIP
	}
	if hostIP.Is6() && !a.V6.IsValid() {
		a.V6 = hostIP
	}
	switch {
	case hostIP.IsValid():
		a.Host = hostIP
	case a.V4.IsValid():
		a.Host = a.V4
	case a.V6.IsValid():
		a.Host = a.V6
	default:
		return a, fmt.Errorf("node %s has no InternalIP and no --host-ip was given", node)
	}
	return a, nil
}

// NodeCount returns how many Nodes the cluster has, reading their metadata only: the speaker sizes
// its memberlist timers by it (members.TimersFor).
func NodeCount(ctx context.Context, c client.Reader) (int, error) {
	var l metav1.PartialObjectMetadataList
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := c.List(ctx, &l); err != nil {
		return 0, fmt.Errorf("counting Nodes: %w", err)
	}
	return len(l.Items), nil
}
