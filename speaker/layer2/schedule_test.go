package layer2

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestScheduleAt(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		burst   []time.Duration
		refresh time.Duration
		want    []time.Duration // at(0), at(1), ...
	}{
		{
			name: "defaults",
			want: []time.Duration{0, 100 * ms, 500 * ms, time.Second, 2 * time.Second, 62 * time.Second, 122 * time.Second},
		},
		{
			name:    "custom",
			burst:   []time.Duration{10 * ms},
			refresh: time.Second,
			want:    []time.Duration{0, 10 * ms, 1010 * ms, 2010 * ms},
		},
		{
			name:    "no burst",
			burst:   []time.Duration{},
			refresh: 5 * time.Second,
			want:    []time.Duration{0, 5 * time.Second, 10 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newSchedule(tt.burst, tt.refresh)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for n := range tt.want {
				got = append(got, s.at(n))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("at(0..) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewScheduleRejects(t *testing.T) {
	tests := []struct {
		name    string
		burst   []time.Duration
		refresh time.Duration
	}{
		{name: "zero offset", burst: []time.Duration{0}},
		{name: "not increasing", burst: []time.Duration{time.Second, time.Second}},
		{name: "negative refresh", burst: nil, refresh: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newSchedule(tt.burst, tt.refresh); !errors.Is(err, ErrInvalidSchedule) {
				t.Errorf("newSchedule(%v, %v) error = %v, want ErrInvalidSchedule", tt.burst, tt.refresh, err)
			}
		})
	}
}
