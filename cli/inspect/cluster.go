// Package inspect explains what Herald does with a cluster, from the objects a client reads from
// the API server: for every Service and IP, the pool, the mode, who announces it and over which
// sessions, address conflicts, and, for an IP that nobody answers, why (kubectl herald status);
// and the use of every pool with the Services still waiting for an address (kubectl herald
// pools).
//
// It decides nothing itself: the reasons come from the code the speakers run (config.Parse,
// plan.Compute, plan.Elections and election.Explain), fed with what the API server shows. What
// only the speakers know (memberlist membership, the interfaces a speaker can answer on) is
// assumed to be fine, and the causes that depend on it are left out of the per-node reasons; when
// every node the API server shows as able to announce an IP is silent, the report says that the
// cause is one of those speaker-only facts, and quotes the speakers' own NotAnnounced event.
//
// The package is pure: no client-go, no sockets; the caller reads the objects into a Cluster.
package inspect

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// Cluster is what a client read from the API server.
type Cluster struct {
	// invalidConfig is set by Status when some configuration object is invalid: the speakers
	// then keep its last valid version, which the API server does not show.
	invalidConfig bool

	// Namespace is Herald's namespace (configuration and the speakers' status objects).
	Namespace string
	// LBClass is the load-balancer class Herald handles: Services of another class are not
	// Herald's and are left out. Empty: Services without spec.loadBalancerClass.
	LBClass string
	// Snapshot holds Herald's configuration objects and the Secrets the BGPPeers reference.
	Snapshot config.Snapshot
	// MissingSecrets names the Secrets that BGPPeers reference but the client may not read
	// (forbidden): the configuration's errors about them are not reported.
	MissingSecrets []string

	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	Nodes          []corev1.Node
	// Events are the events of the Services (and any others; those are ignored).
	Events []corev1.Event

	L2Statuses  []v1beta1.ServiceL2Status
	BGPStatuses []v1beta1.ServiceBGPStatus
	Sessions    []v1beta1.BGPSessionStatus

	// SpeakerPods maps a node name to the speaker Pod on it. Nil when speakers do not run as
	// Pods the client can see (no Pod matched); then nothing is known of them.
	SpeakerPods map[string]SpeakerPod

	// Now is the time of the report, for the age of events.
	Now time.Time
}

// SpeakerPod is the speaker Pod of one node.
type SpeakerPod struct {
	Name string
	// Ready is the Pod's Ready condition.
	Ready bool
	// State says what is wrong when it is not Ready: its phase, or the waiting reason of its
	// container (CrashLoopBackOff, ImagePullBackOff, ...).
	State string
}

// SpeakerPodFromKube describes a speaker Pod.
func SpeakerPodFromKube(p *corev1.Pod) SpeakerPod {
	out := SpeakerPod{Name: p.Name, State: string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			out.Ready = true
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			out.State = w.Reason
		}
	}
	if p.DeletionTimestamp != nil {
		out.State = "Terminating"
	}
	return out
}

// handles reports whether Herald (with c.LBClass) handles svc.
func (c *Cluster) handles(svc *corev1.Service) bool { return v1beta1.ManagedService(svc, c.LBClass) }

// latestEvent returns the newest event with one of the reasons about the Service, or nil.
func (c *Cluster) latestEvent(svc *corev1.Service, reasons ...string) *corev1.Event {
	var best *corev1.Event
	for i := range c.Events {
		e := &c.Events[i]
		o := e.InvolvedObject
		if o.Kind != "Service" || o.Namespace != svc.Namespace || o.Name != svc.Name || !slices.Contains(reasons, e.Reason) {
			continue
		}
		if o.UID != "" && svc.UID != "" && o.UID != svc.UID {
			continue // an event of an earlier Service of the same name
		}
		if best == nil || eventTime(e).After(eventTime(best)) {
			best = e
		}
	}
	return best
}

func eventTime(e *corev1.Event) time.Time {
	for _, t := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// age says how long ago t was, as kubectl does ("5m", "3h").
func age(now, t time.Time) string {
	if t.IsZero() || now.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return d.Truncate(time.Second).String()
	case d < 2*time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	case d < 48*time.Hour:
		return strings.TrimSuffix(strings.TrimSuffix(d.Truncate(time.Hour).String(), "0s"), "0m")
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// sortServices orders Services by namespace and name.
func sortServices(svcs []*corev1.Service) {
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}
