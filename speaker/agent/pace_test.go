package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type run struct{ start, end int } // a recomputation, in ms after t0
	tests := []struct {
		name string
		runs []run
		ask  int // ms after t0
		want time.Duration
	}{
		{name: "first ever runs at once", ask: 0, want: 0},
		{name: "cheap sync: minimum gap", runs: []run{{0, 1}}, ask: 2, want: 9 * time.Millisecond},
		{name: "10ms sync owes 90ms", runs: []run{{0, 10}}, ask: 10, want: 90 * time.Millisecond},
		{name: "part of the gap passed", runs: []run{{0, 10}}, ask: 60, want: 40 * time.Millisecond},
		{name: "after a quiet moment runs at once", runs: []run{{0, 10}}, ask: 100, want: 0},
		{name: "slow sync: gap capped", runs: []run{{0, 1000}}, ask: 1000, want: 2 * time.Second},
		{name: "the last run counts", runs: []run{{0, 100}, {1000, 1001}}, ask: 1001, want: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer()
			for _, r := range tt.runs {
				p.done(at(r.start), at(r.end))
			}
			if got := p.wait(at(tt.ask)); got != tt.want {
				t.Errorf("wait = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPacerBudget runs a storm of requests through the pacer against a simulated clock and
// checks the share of time spent recomputing, whatever a recomputation costs.
func TestPacerBudget(t *testing.T) {
	for _, cost := range []time.Duration{100 * time.Microsecond, 5 * time.Millisecond, 40 * time.Millisecond, 300 * time.Millisecond} {
		p := newPacer()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		begin := now
		var busy time.Duration
		// A request every millisecond for a minute: it runs when the pacer allows.
		for now.Sub(begin) < time.Minute {
			if p.wait(now) == 0 {
				p.done(now, now.Add(cost))
				now = now.Add(cost)
				busy += cost
				continue
			}
			now = now.Add(time.Millisecond)
		}
		share := busy.Seconds() / now.Sub(begin).Seconds()
		// The share is cost/(cost+gap): the budget, unless the gap's bounds cut in.
		gap := min(max(cost.Seconds()*(1-syncBudget)/syncBudget, minSyncGap.Seconds()), maxSyncGap.Seconds())
		want := cost.Seconds() / (cost.Seconds() + gap)
		if want > syncBudget && gap < maxSyncGap.Seconds() {
			t.Fatalf("sync of %s: expected share %.3f above the budget", cost, want)
		}
		if share > want*1.05 {
			t.Errorf("sync of %s: %.3f of the time recomputing, want at most %.3f", cost, share, want)
		}
	}
}

func TestRelevantUpdate(t *testing.T) {
	node := func(rv string, f func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: rv, Labels: map[string]string{"zone": "a"}},
			Status: corev1.NodeStatus{
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Unix(1, 0)}},
			}}
		if f != nil {
			f(n)
		}
		return n
	}
	tests := []struct {
		name     string
		old, new any
		want     bool
	}{
		{name: "resync of the same version", old: node("5", nil), new: node("5", nil), want: false},
		{name: "node: heartbeat only", old: node("5", nil), new: node("6", func(n *corev1.Node) {
			n.Status.Conditions[0].LastHeartbeatTime = metav1.Unix(99, 0)
			n.Annotations = map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}
		}), want: false},
		{name: "node: not ready", old: node("5", nil), new: node("6", func(n *corev1.Node) {
			n.Status.Conditions[0].Status = corev1.ConditionFalse
		}), want: true},
		{name: "node: label", old: node("5", nil), new: node("6", func(n *corev1.Node) {
			n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
		}), want: true},
		{name: "node: address", old: node("5", nil), new: node("6", func(n *corev1.Node) {
			n.Status.Addresses[0].Address = "192.0.2.9"
		}), want: true},
		{name: "node: being deleted", old: node("5", nil), new: node("6", func(n *corev1.Node) {
			n.DeletionTimestamp = ptr.To(metav1.Unix(5, 0))
		}), want: true},
		{name: "service: any change", old: &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}},
			new: &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "2"}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := relevantUpdate(tt.old, tt.new); got != tt.want {
				t.Errorf("relevantUpdate = %v, want %v", got, tt.want)
			}
		})
	}
}
