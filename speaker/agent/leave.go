package agent

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/internal/kube/client"
)

// When the speaker is asked to stop (SIGTERM), it either stops for a restart or for good:
//
//   - For a restart, a new speaker is about to start on this node: BGP sessions with graceful
//     restart end without withdrawing (bgp.Speaker.StopForRestart), and the routers keep
//     forwarding to this node, whose Services still work, until the new speaker has sent its
//     routes again.
//   - For good, the node goes away, or no new speaker is known to come: routes are withdrawn
//     before the sessions close (bgp.Speaker.Shutdown), so the routers move the traffic first.
//
// It is a restart only when the speaker knows a newer speaker Pod replaces it: its DaemonSet's
// template is newer than its own Pod's (a rolling update, also `kubectl rollout restart`), and
// the node is neither being deleted nor cordoned (a drain cordons it first) nor tainted for
// removal. Anything else — the node going away, the DaemonSet deleted, the Pod deleted without a
// newer template (no replacement is known to come, e.g. the node left the DaemonSet's node
// selector), or the API server not answering within a second — stops for good, which never
// keeps a router forwarding to a node that is gone. A speaker that dies (kill -9, OOM) closes
// its sessions without a NOTIFICATION, which the routers take as a restart.

// stopFacts are what decides how the speaker stops.
type stopFacts struct {
	// Node is this speaker's Node, nil when it does not exist.
	Node *corev1.Node
	// Pod is this speaker's Pod and DaemonSet its owner; nil when unknown (no --pod-name, not
	// found, not owned by a DaemonSet).
	Pod       *corev1.Pod
	DaemonSet *appsv1.DaemonSet
	// Err is set when they could not be read.
	Err error
}

// Taints that say the node is about to be removed.
var removalTaints = []string{
	"ToBeDeletedByClusterAutoscaler",
	"node.kubernetes.io/out-of-service",
	corev1.TaintNodeUnschedulable,
}

// podTemplateGeneration is the label the DaemonSet controller puts on its Pods: the DaemonSet's
// generation they were created from.
const podTemplateGeneration = "pod-template-generation"

// decideStop tells a stop for a restart (true) from a stop for good, and says why.
func decideStop(f stopFacts) (restart bool, why string) {
	switch {
	case f.Err != nil:
		return false, fmt.Sprintf("cannot tell whether a new speaker comes (%v): stopping for good", f.Err)
	case f.Node == nil:
		return false, "the node is gone"
	case f.Node.DeletionTimestamp != nil:
		return false, "the node is being deleted"
	case f.Node.Spec.Unschedulable:
		return false, "the node is cordoned (drained)"
	}
	for _, t := range f.Node.Spec.Taints {
		for _, r := range removalTaints {
			if t.Key == r {
				return false, fmt.Sprintf("the node has taint %s", t.Key)
			}
		}
	}
	switch {
	case f.Pod == nil || f.DaemonSet == nil:
		return false, "no DaemonSet Pod of this speaker is known, so no replacement is known to come"
	case f.DaemonSet.DeletionTimestamp != nil:
		return false, fmt.Sprintf("DaemonSet %s is being deleted", f.DaemonSet.Name)
	}
	gen, err := strconv.ParseInt(f.Pod.Labels[podTemplateGeneration], 10, 64)
	if err != nil {
		return false, fmt.Sprintf("Pod %s has no %s label", f.Pod.Name, podTemplateGeneration)
	}
	if gen < f.DaemonSet.Generation {
		return true, fmt.Sprintf("rolling update: Pod %s is of DaemonSet %s generation %d, the DaemonSet is at %d",
			f.Pod.Name, f.DaemonSet.Name, gen, f.DaemonSet.Generation)
	}
	return false, fmt.Sprintf("Pod %s is of the current template of DaemonSet %s: no replacement is known to come", f.Pod.Name, f.DaemonSet.Name)
}

// baseShutdownTimeout bounds the whole stop: the reads below, the withdrawals and the Cease
// NOTIFICATIONs.
const baseShutdownTimeout = 5 * time.Second

// shutdownTimeout bounds the stop of a speaker with peers: baseShutdownTimeout, plus the longest
// graceful shutdown time of its peers, during which a stop for good keeps their routes advertised
// with the GRACEFUL_SHUTDOWN community before withdrawing them.
func shutdownTimeout(peers []*config.Peer) time.Duration {
	var longest time.Duration
	for _, p := range peers {
		if p.GracefulShutdown {
			longest = max(longest, p.GracefulShutdownTime)
		}
	}
	return baseShutdownTimeout + longest
}

// stopTimeout bounds the reads that decide how the speaker stops.
const stopTimeout = time.Second

// readStopFacts reads the Node, and the Pod and its DaemonSet when the Pod's name is known,
// with the uncached reader (the cache holds no Pods or DaemonSets).
func (a *Agent) readStopFacts(ctx context.Context) stopFacts {
	r := a.opts.Reader
	if r == nil {
		r = a.opts.Client
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	var f stopFacts
	node := &corev1.Node{}
	switch err := r.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, node); {
	case apierrors.IsNotFound(err):
		return f
	case err != nil:
		f.Err = fmt.Errorf("reading Node %s: %w", a.opts.NodeName, err)
		return f
	}
	f.Node = node
	if a.opts.PodName == "" || a.opts.Reader == nil {
		return f
	}
	pod := &corev1.Pod{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: a.opts.Namespace, Name: a.opts.PodName}, pod); err != nil {
		if !apierrors.IsNotFound(err) {
			f.Err = fmt.Errorf("reading Pod %s/%s: %w", a.opts.Namespace, a.opts.PodName, err)
		}
		return f
	}
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "DaemonSet" {
		return f
	}
	ds := &appsv1.DaemonSet{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: owner.Name}, ds); err != nil {
		if !apierrors.IsNotFound(err) {
			f.Err = fmt.Errorf("reading DaemonSet %s/%s: %w", pod.Namespace, owner.Name, err)
		}
		return f
	}
	f.Pod, f.DaemonSet = pod, ds
	return f
}
