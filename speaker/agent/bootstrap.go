package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/memberlistkey"
)

// MemberlistKey reads the memberlist encryption key from the named Secret. The controller creates
// that Secret on a fresh install, so a missing Secret is waited for up to wait; after that the
// speaker runs unencrypted and says so. An empty name means unencrypted on purpose.
func MemberlistKey(ctx context.Context, c client.Reader, ns, name string, wait time.Duration, log *slog.Logger) ([]byte, error) {
	if name == "" {
		log.Warn("memberlist traffic is NOT encrypted: no --memberlist-secret given")
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		var s corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s)
		switch {
		case err == nil:
			key, err := memberlistkey.FromSecret(&s)
			if err != nil {
				return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
			}
			return key, nil
		case apierrors.IsNotFound(err) && time.Now().After(deadline):
			log.Warn("memberlist traffic is NOT encrypted: the key Secret does not exist", "secret", ns+"/"+name)
			return nil, nil
		case !apierrors.IsNotFound(err) && time.Now().After(deadline):
			return nil, fmt.Errorf("reading memberlist key from secret %s/%s: %w", ns, name, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
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
