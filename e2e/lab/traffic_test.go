package lab

import (
	"context"
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

func TestWaitSteady(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	fail := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		samples []Sample
		steady  bool
	}{
		{"no request yet", nil, false},
		{"successes for longer than the span", []Sample{{Start: at(-3 * time.Second), End: at(-3 * time.Second)}, {Start: at(-time.Second), End: at(-time.Second)}}, true},
		{"a failure a moment ago", []Sample{{Start: at(-3 * time.Second), End: at(-3 * time.Second)}, {Start: at(-100 * time.Millisecond), End: at(-50 * time.Millisecond), Err: fail}}, false},
		{"a failure long ago, successes since", []Sample{{Start: at(-5 * time.Second), End: at(-4 * time.Second), Err: fail}, {Start: at(-time.Second), End: at(-time.Second)}}, true},
		{"a failure long ago, nothing since", []Sample{{Start: at(-5 * time.Second), End: at(-4 * time.Second), Err: fail}}, false},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		err := (&Stream{samples: tc.samples}).WaitSteady(ctx, 2*time.Second)
		cancel()
		if (err == nil) != tc.steady {
			t.Errorf("%s: WaitSteady = %v, want steady %v", tc.name, err, tc.steady)
		}
	}
	if got := From([]Sample{{Start: at(-time.Second)}, {Start: now}, {Start: at(time.Second)}}, now); len(got) != 2 {
		t.Errorf("From kept %d samples, want the 2 that started at or after t", len(got))
	}
}
