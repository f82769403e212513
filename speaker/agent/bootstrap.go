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

// NodeAddresses returns the node's InternalIP of each family, falling back to hostIP for a family
// the Node does not list.
func NodeAddresses(ctx context.Context, c client.Reader, node string, hostIP netip.Addr) (v4, v6 netip.Addr, err error) {
	var n corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
		return v4, v6, fmt.Errorf("reading Node %s: %w", node, err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if ip.Is4() && !v4.IsValid() {
			v4 = ip
		} else if ip.Is6() && !v6.IsValid() {
			v6 = ip
		}
	}
	if hostIP.Is4() && !v4.IsValid() {
		v4 = hostIP
	}
	if hostIP.Is6() && !v6.IsValid() {
		v6 = hostIP
	}
	if !v4.IsValid() && !v6.IsValid() {
		return v4, v6, fmt.Errorf("node %s has no InternalIP and no --host-ip was given", node)
	}
	return v4, v6, nil
}
