package layer2

import (
	"errors"
	"fmt"
	"time"
)

// DefaultBurst is when gratuitous announcements follow a takeover, after the one sent at once:
// 100ms, 500ms, 1s and 2s after it. Repeating covers frames lost while a switch or a peer is still
// settling, and spreads over the time a failover takes to be noticed.
var DefaultBurst = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// DefaultRefresh is how often an owned IP is announced again once the burst is over, so that
// switches (which age MAC tables, commonly after 300s) and neighbours keep pointing at this node.
const DefaultRefresh = time.Minute

// ErrInvalidSchedule is returned by NewAnnouncer for a burst that is not positive and strictly
// increasing, or a negative refresh interval.
var ErrInvalidSchedule = errors.New("invalid announcement schedule")

// schedule says when the announcements of one takeover are due, as offsets from the takeover.
type schedule struct {
	burst   []time.Duration // offsets of the follow-ups, strictly increasing
	refresh time.Duration
}

func newSchedule(burst []time.Duration, refresh time.Duration) (schedule, error) {
	if burst == nil {
		burst = DefaultBurst
	}
	if refresh == 0 {
		refresh = DefaultRefresh
	}
	if refresh < 0 {
		return schedule{}, fmt.Errorf("%w: refresh interval %s", ErrInvalidSchedule, refresh)
	}
	var prev time.Duration
	for i, d := range burst {
		if d <= prev {
			return schedule{}, fmt.Errorf("%w: burst offset %d is %s, not after %s", ErrInvalidSchedule, i, d, prev)
		}
		prev = d
	}
	return schedule{burst: append([]time.Duration(nil), burst...), refresh: refresh}, nil
}

// at returns the offset from the takeover of announcement n: 0 for the one sent at once, then the
// burst, then one every refresh interval after the last burst offset.
func (s schedule) at(n int) time.Duration {
	switch {
	case n <= 0:
		return 0
	case n <= len(s.burst):
		return s.burst[n-1]
	}
	var last time.Duration
	if len(s.burst) > 0 {
		last = s.burst[len(s.burst)-1]
	}
	return last + time.Duration(n-len(s.burst))*s.refresh
}
