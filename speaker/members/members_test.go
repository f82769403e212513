package members

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// syncBuffer collects log output; memberlist goroutines may log after the test returned, when
// t.Log would panic, so logs are kept here and printed only when the test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventLog records the events a member reports, with the time they arrived.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) kinds(node string) []EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventKind
	for _, ev := range l.events {
		if ev.Node == node {
			out = append(out, ev.Kind)
		}
	}
	return out
}

type testMember struct {
	*Members
	name   string
	port   int
	events *eventLog
}

// start starts a member on 127.0.0.1 on a free port (port 0) or the given port, joining join.
func start(t *testing.T, name string, port int, key []byte, join ...*testMember) *testMember {
	t.Helper()
	return startWith(t, name, port, func(c *Config) { c.SecretKey = key }, join...)
}

// startWith is start with a Config changed by set before New.
func startWith(t *testing.T, name string, port int, set func(*Config), join ...*testMember) *testMember {
	t.Helper()
	var addrs []string
	for _, j := range join {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", j.port))
	}
	fixed := port != 0
	var lastErr error
	for range 5 {
		if !fixed {
			port = testenv.FreePort(t)
		}
		events := &eventLog{}
		cfg := Config{
			NodeName: name,
			BindAddr: netip.MustParseAddr("127.0.0.1"),
			BindPort: port,
			Join:     addrs,
			Logger:   testLogger(t),
			Notify:   events.add,
		}
		set(&cfg)
		m, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%s): %v", name, err)
		}
		if lastErr = m.Start(); lastErr != nil {
			if fixed || !strings.Contains(lastErr.Error(), "address already in use") {
				break
			}
			continue
		}
		t.Cleanup(func() { m.Shutdown() })
		return &testMember{Members: m, name: name, port: port, events: events}
	}
	t.Fatalf("starting %s: %v", name, lastErr)
	return nil
}

// waitFor polls cond on every member until it holds for all of them, and returns how long
// that took. It fails the test at the deadline.
func waitFor(t *testing.T, deadline time.Duration, what string, ms []*testMember, cond func(*testMember) bool) time.Duration {
	t.Helper()
	begin := time.Now()
	timeout := time.NewTimer(deadline)
	defer timeout.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if !slices.ContainsFunc(ms, func(m *testMember) bool { return !cond(m) }) {
			return time.Since(begin)
		}
		select {
		case <-tick.C:
		case <-timeout.C:
			var views []string
			for _, m := range ms {
				views = append(views, fmt.Sprintf("%s sees %v", m.name, m.Members.Members()))
			}
			t.Fatalf("%s: not done after %s: %s", what, deadline, strings.Join(views, "; "))
		}
	}
}

func sees(want ...string) func(*testMember) bool {
	slices.Sort(want)
	return func(m *testMember) bool { return slices.Equal(m.Members.Members(), want) }
}

func lacks(name string) func(*testMember) bool {
	return func(m *testMember) bool { return !slices.Contains(m.Members.Members(), name) }
}

// cluster starts three members, b and c joining a, and waits for them to converge.
func cluster(t *testing.T, key []byte) (a, b, c *testMember) {
	t.Helper()
	a = start(t, "a", 0, key)
	b = start(t, "b", 0, key, a)
	c = start(t, "c", 0, key, a, b)
	d := waitFor(t, 5*time.Second, "three members converge", []*testMember{a, b, c}, sees("a", "b", "c"))
	t.Logf("three members converged in %s", d)
	return a, b, c
}

func TestConverge(t *testing.T) {
	a, b, c := cluster(t, nil)
	for _, m := range []*testMember{a, b, c} {
		select {
		case <-m.Changes():
		default:
			t.Errorf("%s: no change notification after the others joined", m.name)
		}
	}
	if diff := cmp.Diff([]EventKind{Joined}, a.events.kinds("b")); diff != "" {
		t.Errorf("a's events about b (-want +got):\n%s", diff)
	}
	addr, err := a.LocalAddr()
	if err != nil || addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(a.port)) {
		t.Errorf("a.LocalAddr() = %v, %v; want 127.0.0.1:%d", addr, err, a.port)
	}
}

func TestFailureDetection(t *testing.T) {
	// With 3 members memberlist expects no confirmation of a suspicion; with 5 it waits for 2
	// (see DefaultTimers). Both must detect a killed member well under a second.
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", size), func(t *testing.T) {
			ms := []*testMember{start(t, "m0", 0, nil)}
			var names []string
			for i := range size {
				names = append(names, fmt.Sprintf("m%d", i))
				if i > 0 {
					ms = append(ms, start(t, names[i], 0, nil, ms[0]))
				}
			}
			waitFor(t, 5*time.Second, "members converge", ms, sees(names...))
			victim, rest := ms[size-1], ms[:size-1]
			// Shutdown without Leave: the peers learn nothing, as with kill -9.
			if err := victim.Shutdown(); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			d := waitFor(t, 1500*time.Millisecond, "killed member declared dead", rest, lacks(victim.name))
			t.Logf("killed member detected dead by all %d peers after %s", len(rest), d)
			for _, m := range rest {
				if diff := cmp.Diff([]EventKind{Joined, Gone}, m.events.kinds(victim.name)); diff != "" {
					t.Errorf("%s's events about %s (-want +got):\n%s", m.name, victim.name, diff)
				}
			}
		})
	}
}

func TestLeave(t *testing.T) {
	a, b, c := cluster(t, nil)
	begin := time.Now()
	if err := c.Leave(time.Second); err != nil {
		t.Fatalf("c.Leave: %v", err)
	}
	d := waitFor(t, 500*time.Millisecond, "leaving member gone", []*testMember{a, b}, lacks("c"))
	t.Logf("left member gone from both peers %s after Leave returned (%s after it was called)", d, time.Since(begin))
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrStopped) {
		t.Errorf("Leave after Shutdown: %v, want %v", err, ErrStopped)
	}
	if err := c.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	for _, m := range []*testMember{a, b} {
		if diff := cmp.Diff([]EventKind{Joined, Gone}, m.events.kinds("c")); diff != "" {
			t.Errorf("%s's events about c (-want +got):\n%s", m.name, diff)
		}
	}
}

func TestRestartRejoins(t *testing.T) {
	a, b, c := cluster(t, nil)
	if err := c.Shutdown(); err != nil {
		t.Fatalf("c.Shutdown: %v", err)
	}
	waitFor(t, 2*time.Second, "killed member declared dead", []*testMember{a, b}, lacks("c"))
	c2 := start(t, "c", c.port, nil, a)
	d := waitFor(t, 3*time.Second, "restarted member back", []*testMember{a, b, c2}, sees("a", "b", "c"))
	t.Logf("restarted member seen by all after %s", d)
}

func TestEncryption(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a := start(t, "a", 0, key)
	b := start(t, "b", 0, key, a)
	waitFor(t, 5*time.Second, "members with the same key converge", []*testMember{a, b}, sees("a", "b"))

	other := start(t, "other-key", 0, []byte("fedcba9876543210"))
	if n, err := other.Join([]string{fmt.Sprintf("127.0.0.1:%d", a.port)}); !errors.Is(err, ErrNoPeerReached) {
		t.Errorf("joining with another key: Join = %d, %v; want %v", n, err, ErrNoPeerReached)
	}
	plain := start(t, "plain", 0, nil)
	if n, err := plain.Join([]string{fmt.Sprintf("127.0.0.1:%d", a.port)}); !errors.Is(err, ErrNoPeerReached) {
		t.Errorf("joining without a key: Join = %d, %v; want %v", n, err, ErrNoPeerReached)
	}
	for _, m := range []*testMember{a, b} {
		if diff := cmp.Diff([]string{"a", "b"}, m.Members.Members()); diff != "" {
			t.Errorf("%s's members after foreign joins (-want +got):\n%s", m.name, diff)
		}
	}
	if diff := cmp.Diff([]string{"other-key"}, other.Members.Members()); diff != "" {
		t.Errorf("other-key's members (-want +got):\n%s", diff)
	}
}

// spinEnv, when set in the environment of the test binary, turns TestSpinHelper into a CPU
// hog that runs for that duration.
const spinEnv = "HERALD_MEMBERS_TEST_SPIN_FOR"

// TestSpinHelper is not a test: TestCPULoad runs the test binary again with spinEnv set, and
// then this keeps every core busy with runtime.NumCPU() spinning goroutines and exits.
func TestSpinHelper(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv(spinEnv))
	if err != nil {
		t.Skip("helper process for TestCPULoad")
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			x := uint64(1)
			for ctx.Err() == nil {
				for range 100000 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		})
	}
	wg.Wait()
}

// TestCPULoad keeps every core busy for a few seconds and checks that no member is declared
// dead, not even for a moment, while all are alive.
//
// The spinning goroutines run in a separate process, as load does in production: the speaker
// is its own process and competes with other processes for the CPU. Spinning goroutines inside
// the process under test would measure something else, the Go scheduler starving
// memberlist's own goroutines, which no timer setting fixes at sub-second detection (on a
// 2-core machine with a load average of 13 it caused occasional false suspicions).
func TestCPULoad(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every core for seconds")
	}
	a, b, c := cluster(t, nil)
	all := []*testMember{a, b, c}

	const loadFor = 4 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), loadFor+5*time.Second)
	defer cancel()
	hog := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSpinHelper$", "-test.count=1")
	hog.Env = append(os.Environ(), spinEnv+"="+loadFor.String())
	var hogOut bytes.Buffer
	hog.Stdout, hog.Stderr = &hogOut, &hogOut
	if err := hog.Start(); err != nil {
		t.Fatalf("starting the CPU hog: %v", err)
	}
	hogDone := make(chan error, 1)
	go func() { hogDone <- hog.Wait() }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	checks := 0
	var hogErr error
loop:
	for {
		select {
		case <-tick.C:
		case hogErr = <-hogDone:
			break loop
		}
		checks++
		for _, m := range all {
			if got := m.Members.Members(); len(got) != 3 {
				t.Errorf("under CPU load %s sees %v, want all three", m.name, got)
			}
		}
	}
	if hogErr != nil {
		t.Fatalf("CPU hog: %v\n%s", hogErr, hogOut.String())
	}
	lost := 0
	for _, m := range all {
		for _, other := range all {
			if kinds := m.events.kinds(other.name); slices.Contains(kinds, Gone) {
				lost++
				t.Errorf("%s saw %s go away under CPU load: %v", m.name, other.name, kinds)
			}
		}
	}
	t.Logf("%d membership checks while %d goroutines spun for %s in another process; %d false failures",
		checks, runtime.NumCPU(), loadFor, lost)
}

func TestJoin(t *testing.T) {
	a := start(t, "a", 0, nil)
	self := fmt.Sprintf("127.0.0.1:%d", a.port)
	if n, err := a.Join([]string{self}); n != 0 || err != nil {
		t.Errorf("Join(self) = %d, %v; want 0, nil", n, err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if _, err := a.Join([]string{self, nobody}); !errors.Is(err, ErrNoPeerReached) {
		t.Errorf("Join(nobody) error = %v, want %v", err, ErrNoPeerReached)
	}
	if _, err := a.Join([]string{"speaker-1.example.org"}); err == nil {
		t.Errorf("Join(host name) succeeded, want an error")
	}
	b := start(t, "b", 0, nil)
	if n, err := b.Join([]string{self, nobody}); n != 1 || err != nil {
		t.Errorf("Join(a and nobody) = %d, %v; want 1, nil", n, err)
	}
	waitFor(t, 5*time.Second, "converge", []*testMember{a, b}, sees("a", "b"))
}

func TestNotStarted(t *testing.T) {
	m, err := New(Config{NodeName: "a", Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := m.Members(); got != nil {
		t.Errorf("Members() before Start = %v, want nil", got)
	}
	if _, err := m.Join([]string{"192.0.2.1"}); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Join before Start: %v, want %v", err, ErrNotStarted)
	}
	if err := m.Leave(time.Second); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Leave before Start: %v, want %v", err, ErrNotStarted)
	}
	if err := m.Shutdown(); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
}

func TestMeta(t *testing.T) {
	a := start(t, "a", 0, nil)
	b := start(t, "b", 0, nil, a)
	waitFor(t, 5*time.Second, "converge", []*testMember{a, b}, sees("a", "b"))
	if err := a.SetMeta([]byte("eth0,vlan10"), time.Second); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	waitFor(t, 2*time.Second, "metadata gossiped", []*testMember{b}, func(m *testMember) bool {
		return string(m.MemberMeta()["a"]) == "eth0,vlan10"
	})
	if err := a.SetMeta(make([]byte, 513), time.Second); err == nil {
		t.Errorf("SetMeta(513 bytes) succeeded, want an error")
	}
}
