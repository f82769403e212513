package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/internal/kube/client"
)

// EventSink writes a broadcaster's Events through a client (record.EventSink), in the namespace
// of each Event, as client-go's typed events client does.
type EventSink struct{ Client client.Writer }

// Create implements record.EventSink.
func (s EventSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out := e.DeepCopy()
	out.ResourceVersion = ""
	return out, s.Client.Create(context.Background(), out)
}

// Update implements record.EventSink.
func (s EventSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out := e.DeepCopy()
	return out, s.Client.Update(context.Background(), out)
}

// Patch implements record.EventSink (a strategic merge patch, as the typed client sends).
func (s EventSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	out := e.DeepCopy()
	return out, s.Client.Patch(context.Background(), out, types.StrategicMergePatchType, data)
}
