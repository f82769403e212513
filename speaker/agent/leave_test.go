package agent

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/config"
)

func TestDecideStop(t *testing.T) {
	now := metav1.Now()
	node := func(mod func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		if mod != nil {
			mod(n)
		}
		return n
	}
	pod := func(gen string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "speaker-x", Labels: map[string]string{}}}
		if gen != "" {
			p.Labels[podTemplateGeneration] = gen
		}
		return p
	}
	ds := func(gen int64, deleting bool) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "herald-speaker", Generation: gen}}
		if deleting {
			d.DeletionTimestamp = &now
		}
		return d
	}
	for _, tc := range []struct {
		name        string
		facts       stopFacts
		wantRestart bool
		wantWhy     string
	}{
		{"rolling update", stopFacts{Node: node(nil), Pod: pod("3"), DaemonSet: ds(4, false)}, true, "rolling update"},
		{"pod of the current template deleted", stopFacts{Node: node(nil), Pod: pod("4"), DaemonSet: ds(4, false)}, false, "no replacement is known to come"},
		{"DaemonSet deleted", stopFacts{Node: node(nil), Pod: pod("3"), DaemonSet: ds(4, true)}, false, "being deleted"},
		{"node cordoned during a rolling update", stopFacts{Node: node(func(n *corev1.Node) { n.Spec.Unschedulable = true }), Pod: pod("3"), DaemonSet: ds(4, false)}, false, "cordoned"},
		{"node being deleted", stopFacts{Node: node(func(n *corev1.Node) { n.DeletionTimestamp = &now }), Pod: pod("3"), DaemonSet: ds(4, false)}, false, "node is being deleted"},
		{"node gone", stopFacts{Pod: pod("3"), DaemonSet: ds(4, false)}, false, "node is gone"},
		{"autoscaler removes the node", stopFacts{Node: node(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "ToBeDeletedByClusterAutoscaler", Effect: corev1.TaintEffectNoSchedule}}
		}), Pod: pod("3"), DaemonSet: ds(4, false)}, false, "ToBeDeletedByClusterAutoscaler"},
		{"node out of service", stopFacts{Node: node(func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "node.kubernetes.io/out-of-service", Effect: corev1.TaintEffectNoExecute}}
		}), Pod: pod("3"), DaemonSet: ds(4, false)}, false, "out-of-service"},
		{"no pod known (not run by a DaemonSet)", stopFacts{Node: node(nil)}, false, "no DaemonSet Pod"},
		{"pod without generation label", stopFacts{Node: node(nil), Pod: pod(""), DaemonSet: ds(4, false)}, false, "no pod-template-generation label"},
		{"API server unreachable", stopFacts{Err: errors.New("timeout")}, false, "cannot tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restart, why := decideStop(tc.facts)
			if restart != tc.wantRestart || !strings.Contains(why, tc.wantWhy) {
				t.Errorf("decideStop = %v, %q; want %v, containing %q", restart, why, tc.wantRestart, tc.wantWhy)
			}
		})
	}
}

// TestShutdownTimeout: a stop for good leaves the BGP speaker the longest graceful shutdown time
// of the node's peers on top of the usual bound, so the routes with the GRACEFUL_SHUTDOWN
// community are still withdrawn and the sessions closed before the deadline.
func TestShutdownTimeout(t *testing.T) {
	tests := []struct {
		name  string
		peers []*config.Peer
		want  time.Duration
	}{
		{name: "no peers", want: baseShutdownTimeout},
		{name: "no graceful shutdown", peers: []*config.Peer{{Name: "a"}}, want: baseShutdownTimeout},
		{name: "the longest graceful shutdown time", peers: []*config.Peer{
			{Name: "a", GracefulShutdown: true, GracefulShutdownTime: 5 * time.Second},
			{Name: "b", GracefulShutdown: true, GracefulShutdownTime: 20 * time.Second},
			{Name: "c"},
		}, want: baseShutdownTimeout + 20*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shutdownTimeout(tt.peers); got != tt.want {
				t.Errorf("shutdownTimeout = %v, want %v", got, tt.want)
			}
		})
	}
}
