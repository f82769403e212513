package layer2

import (
	"container/heap"
	"time"
)

// pace is the loop of a paced sender, until Close: it calls step under a.mu, then waits for the
// time step returns (zero: no time), a kick, or a claim. A nil claims never delivers; a claim is
// fed to its guard under a.mu, with what else is queued.
func (a *Announcer) pace(step func(now time.Time) time.Time, kick <-chan struct{}, claims <-chan seenClaim) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		a.mu.Lock()
		next := step(time.Now())
		a.mu.Unlock()
		var due <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			due = timer.C
		}
		select {
		case c := <-claims:
			a.mu.Lock()
			a.guardClaim(c, time.Now())
			for range 256 { // take what else is queued, under the same lock
				select {
				case c := <-claims:
					a.guardClaim(c, time.Now())
					continue
				default:
				}
				break
			}
			a.mu.Unlock()
		case <-due:
		case <-kick:
		case <-a.stop:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// stamp is an instant as the time since its clock's base, 0 for none: a third of the size of a
// time.Time, for the timers and schedules an Announcer keeps for each owned address. Stamps of one
// clock compare as the instants do, by the monotonic clock when the instants have its reading.
type stamp int64

// clock converts between instants and stamps. Its base is an hour before the Announcer was made,
// so that no instant the Announcer uses is stamped 0.
type clock struct{ base time.Time }

func newClock(now time.Time) clock { return clock{base: now.Add(-time.Hour)} }

func (c clock) stamp(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.Sub(c.base))
}

func (c clock) time(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.base.Add(time.Duration(s))
}

// add is the stamp d after s.
func (s stamp) add(d time.Duration) stamp { return s + stamp(d) }

// timed is what a timerQueue holds: something due at a stamp.
type timed interface{ when() stamp }

// timerQueue is a min-heap of timers. Timers that were rescheduled stay in it until they come up,
// and are then dropped by their generation.
type timerQueue[T timed] struct{ items timerHeap[T] }

type timerHeap[T timed] []T

func (h timerHeap[T]) Len() int           { return len(h) }
func (h timerHeap[T]) Less(i, j int) bool { return h[i].when() < h[j].when() }
func (h timerHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap[T]) Push(x any)        { *h = append(*h, x.(T)) }
func (h *timerHeap[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero // let what it points to go
	*h = old[:len(old)-1]
	return it
}

func (q *timerQueue[T]) add(it T) { heap.Push(&q.items, it) }

// due pops the earliest timer if it is due at now.
func (q *timerQueue[T]) due(now stamp) (T, bool) {
	it, ok := q.peekDue(now)
	if ok {
		q.pop()
	}
	return it, ok
}

// peekDue returns the earliest timer if it is due at now, without popping it.
func (q *timerQueue[T]) peekDue(now stamp) (T, bool) {
	it, ok := q.peek()
	if !ok || it.when() > now {
		var zero T
		return zero, false
	}
	return it, true
}

// peek returns the earliest timer, due or not; false when there is none.
func (q *timerQueue[T]) peek() (T, bool) {
	if len(q.items) == 0 {
		var zero T
		return zero, false
	}
	return q.items[0], true
}

func (q *timerQueue[T]) pop() { heap.Pop(&q.items) }

// next is when the earliest timer is due (0: none).
func (q *timerQueue[T]) next() stamp {
	it, ok := q.peek()
	if !ok {
		return 0
	}
	return it.when()
}

// tokenBucket paces probes: rate tokens a second, at most burst saved up.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	at          time.Time
}

func (b *tokenBucket) refill(now time.Time) {
	if b.at.IsZero() {
		b.tokens, b.at = b.burst, now
		return
	}
	if now.After(b.at) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
		b.at = now
	}
}

// take spends a token if there is one.
func (b *tokenBucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// nextToken is when the next token is there (at least 10ms on, to batch wake-ups).
func (b *tokenBucket) nextToken(now time.Time) time.Time {
	b.refill(now)
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return now.Add(max(wait, 10*time.Millisecond))
}
