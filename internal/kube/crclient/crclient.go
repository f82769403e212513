// Package crclient adapts controller-runtime's clients to internal/kube/client's interfaces (and
// gives them their scheme), for
// the controller and the command line tool, which keep controller-runtime, where they call
// packages they share with the speaker (which does not link controller-runtime).
package crclient

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/kube"
	"github.com/herald-lb/herald/internal/kube/client"
)

// Scheme returns kube.Scheme with client-go's built-in groups added: controller-runtime's client and
// leader election use groups beyond the few the speaker needs.
func Scheme() (*runtime.Scheme, error) {
	s, err := kube.Scheme()
	if err != nil {
		return nil, err
	}
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding Kubernetes types to the scheme: %w", err)
	}
	return s, nil
}

// Reader returns r as a client.Reader.
func Reader(r crclient.Reader) client.Reader { return reader{r} }

// Client returns c as a client.Client.
func Client(c crclient.Client) client.Client { return adapted{reader{c}, c} }

type reader struct{ r crclient.Reader }

func (a reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	return a.r.Get(ctx, key, obj)
}

func (a reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return a.r.List(ctx, list, listOptions(opts))
}

// listOptions translates opts.
func listOptions(opts []client.ListOption) *crclient.ListOptions {
	o := client.Apply(opts)
	lo := &crclient.ListOptions{Namespace: o.Namespace, LabelSelector: o.LabelSelector, Raw: o.Raw}
	if o.Raw != nil {
		lo.Limit, lo.Continue = o.Raw.Limit, o.Raw.Continue
	}
	if o.UnsafeDisableDeepCopy {
		t := true
		lo.UnsafeDisableDeepCopy = &t
	}
	return lo
}

type adapted struct {
	reader
	c crclient.Client
}

func (a adapted) Create(ctx context.Context, obj client.Object) error { return a.c.Create(ctx, obj) }
func (a adapted) Update(ctx context.Context, obj client.Object) error { return a.c.Update(ctx, obj) }
func (a adapted) Delete(ctx context.Context, obj client.Object) error { return a.c.Delete(ctx, obj) }

func (a adapted) Patch(ctx context.Context, obj client.Object, pt types.PatchType, data []byte) error {
	return a.c.Patch(ctx, obj, crclient.RawPatch(pt, data))
}

func (a adapted) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.ListOption) error {
	return a.c.DeleteAllOf(ctx, obj, &crclient.DeleteAllOfOptions{ListOptions: *listOptions(opts)})
}

func (a adapted) Status() client.StatusWriter { return status{a.c.Status()} }

type status struct{ s crclient.SubResourceWriter }

func (s status) Update(ctx context.Context, obj client.Object) error { return s.s.Update(ctx, obj) }
