package service

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/controller/allocator"
)

func TestAssignLog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assign := func(pool string, n int) []allocator.Assignment {
		out := make([]allocator.Assignment, n)
		for i := range out {
			out[i] = allocator.Assignment{Pool: pool, Service: fmt.Sprintf("ns/s%d", i), IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})}
		}
		return out
	}
	type take struct {
		pool     string
		at       time.Duration // after t0
		wantMsg  string
		wantWait time.Duration
	}
	tests := []struct {
		name  string
		add   map[time.Duration][]allocator.Assignment // added at these times, before the takes at or after them
		takes []take
	}{
		{
			name:  "nothing assigned: nothing to say",
			takes: []take{{pool: "a", at: 0}},
		},
		{
			name: "the first assignment is reported at once",
			add:  map[time.Duration][]allocator.Assignment{0: assign("a", 1)},
			takes: []take{
				{pool: "a", at: 0, wantMsg: "Assigned 1 address: 198.51.100.1 to ns/s0"},
				{pool: "a", at: time.Second}, // reported: nothing left
			},
		},
		{
			name: "a burst is one event per interval, listing ten",
			add: map[time.Duration][]allocator.Assignment{
				0:               assign("a", 1),
				time.Second:     assign("a", 12),
				3 * time.Second: assign("b", 2),
			},
			takes: []take{
				{pool: "a", at: 0, wantMsg: "Assigned 1 address: 198.51.100.1 to ns/s0"},
				{pool: "a", at: time.Second, wantWait: 9 * time.Second},
				{pool: "b", at: 3 * time.Second, wantMsg: "Assigned 2 addresses: 198.51.100.1 to ns/s0, 198.51.100.2 to ns/s1"},
				{pool: "a", at: 10 * time.Second, wantMsg: "Assigned 12 addresses: 198.51.100.1 to ns/s0, 198.51.100.2 to ns/s1, " +
					"198.51.100.3 to ns/s2, 198.51.100.4 to ns/s3, 198.51.100.5 to ns/s4, 198.51.100.6 to ns/s5, 198.51.100.7 to ns/s6, " +
					"198.51.100.8 to ns/s7, 198.51.100.9 to ns/s8, 198.51.100.10 to ns/s9, and 2 more"},
			},
		},
		{
			name: "after a quiet interval, at once again",
			add:  map[time.Duration][]allocator.Assignment{0: assign("a", 1), time.Minute: assign("a", 1)},
			takes: []take{
				{pool: "a", at: 0, wantMsg: "Assigned 1 address: 198.51.100.1 to ns/s0"},
				{pool: "a", at: time.Minute, wantMsg: "Assigned 1 address: 198.51.100.1 to ns/s0"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newAssignLog(10 * time.Second)
			added := map[time.Duration]bool{}
			for i, tk := range tc.takes {
				for at, as := range tc.add {
					if at <= tk.at && !added[at] {
						l.add(as)
						added[at] = true
					}
				}
				msg, wait := l.take(tk.pool, t0.Add(tk.at))
				if diff := cmp.Diff(tk.wantMsg, msg); diff != "" {
					t.Errorf("take %d (pool %s at %v): message (-want +got):\n%s", i, tk.pool, tk.at, diff)
				}
				if wait != tk.wantWait {
					t.Errorf("take %d (pool %s at %v): wait %v, want %v", i, tk.pool, tk.at, wait, tk.wantWait)
				}
			}
		})
	}
}

func TestAssignLogForget(t *testing.T) {
	l := newAssignLog(time.Second)
	l.add([]allocator.Assignment{{Pool: "gone", Service: "ns/a", IP: netip.MustParseAddr("192.0.2.1")}})
	l.forget("gone")
	if msg, wait := l.take("gone", time.Now()); msg != "" || wait != 0 {
		t.Errorf("a forgotten pool still reports %q (wait %v)", msg, wait)
	}
}
