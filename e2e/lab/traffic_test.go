package lab

import (
	"errors"
	"testing"
	"time"
)

func TestGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	fail := errors.New("timeout")
	ok := func(start, end int) Sample { return Sample{Start: ms(start), End: ms(end)} }
	bad := func(start, end int) Sample { return Sample{Start: ms(start), End: ms(end), Err: fail} }
	tests := []struct {
		name    string
		samples []Sample
		event   time.Time
		want    time.Duration
	}{
		{"no failure", []Sample{ok(0, 5), ok(20, 25), ok(40, 45)}, ms(10), 0},
		{"outage", []Sample{ok(0, 5), ok(20, 25), bad(40, 240), bad(60, 260), ok(80, 300), ok(100, 105)}, ms(30), 275 * time.Millisecond},
		{"never recovers", []Sample{ok(0, 5), bad(20, 220)}, ms(10), -1},
		{"failure before the event does not count", []Sample{bad(0, 200), ok(20, 25), ok(40, 45)}, ms(30), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Gap(tc.samples, tc.event); got != tc.want {
				t.Errorf("Gap = %v, want %v", got, tc.want)
			}
		})
	}
}
