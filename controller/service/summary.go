package service

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/herald-lb/herald/controller/allocator"
)

// maxListedAssignments bounds the assignments a summary event lists by name.
const maxListedAssignments = 10

// assignLog collects, per pool, the addresses assigned since the pool's last IPAllocated event and
// paces those events: the first assignment after a quiet interval is reported at once, and a burst
// is reported as one event per pool per interval, whatever its size. A Service's own assignment
// is visible in its status and its pool annotation; this keeps a burst of thousands of Services
// from writing thousands of events.
type assignLog struct {
	interval time.Duration

	mu    sync.Mutex
	pools map[string]*poolLog
}

type poolLog struct {
	count  int
	listed []string  // "IP to namespace/name", at most maxListedAssignments
	last   time.Time // when the last summary was taken
}

func newAssignLog(interval time.Duration) *assignLog {
	return &assignLog{interval: interval, pools: map[string]*poolLog{}}
}

// add records assignments (of any pools).
func (l *assignLog) add(as []allocator.Assignment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range as {
		p := l.pools[a.Pool]
		if p == nil {
			p = &poolLog{}
			l.pools[a.Pool] = p
		}
		p.count++
		if len(p.listed) < maxListedAssignments {
			p.listed = append(p.listed, a.IP.String()+" to "+a.Service)
		}
	}
}

// take returns the summary of pool's assignments when one is due at now, and resets it; when one
// is waiting but not due, it returns the time until it is. It returns "", 0 when nothing waits.
func (l *assignLog) take(pool string, now time.Time) (msg string, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pools[pool]
	if p == nil || p.count == 0 {
		return "", 0
	}
	if due := p.last.Add(l.interval); !p.last.IsZero() && now.Before(due) {
		return "", due.Sub(now)
	}
	msg = summarize(p.count, p.listed)
	p.count, p.listed, p.last = 0, nil, now
	return msg, 0
}

// forget drops a pool that no longer exists.
func (l *assignLog) forget(pool string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pools, pool)
}

func summarize(count int, listed []string) string {
	noun := "addresses"
	if count == 1 {
		noun = "address"
	}
	s := fmt.Sprintf("Assigned %d %s: %s", count, noun, strings.Join(listed, ", "))
	if more := count - len(listed); more > 0 {
		s += fmt.Sprintf(", and %d more", more)
	}
	return s
}
