package members

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// TestBenchGossipRate measures what one member sends, counted at its transport (UDP datagrams
// and their bytes, plus TCP bytes), in clusters of growing size on loopback, idle and in the
// seconds after one member is killed (no Leave). With HERALD_BENCH=1 (make bench) it measures 3,
// 50 and 200 members for 10 s each and prints BENCHJSON lines; otherwise 3 and 10 members for
// 2 s, as a check.
//
// The bound it checks is what SWIM promises, independent of the cluster size: each member probes
// one other per probe interval and acks the probes it receives (about one per interval), so it
// sends about 2 datagrams per ProbeInterval, 3 at most; gossip rounds with nothing queued send
// nothing. A kill adds a few messages (suspect, dead) that each member sends at most
// RetransmitMult*ceil(log10(n+1)) times.
//
// Time is dilated for large clusters: every timer is multiplied by k (1 up to 20 members, then
// n/20 rounded up: 10 at 200) and the measured rates by k. SWIM's traffic is driven by its timers
// alone (a probe per probe interval, a gossip round per gossip interval when something is queued,
// a push/pull per push/pull interval; the number of transmissions per message is a count, not a
// time), so the dilated run sends the same packets in k times the time. It keeps the simulation
// honest: up to 200 members share one process and this machine's few cores, and at production
// speed their waits for the CPU, not the protocol, would decide who is suspected. False deaths
// during the measurement are counted and reported.
func TestBenchGossipRate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clusters of memberlist instances for seconds")
	}
	sizes, window := []int{3, 10}, 2*time.Second // small enough not to starve beside other tests
	bench := os.Getenv("HERALD_BENCH") == "1"
	if bench {
		sizes, window = []int{3, 50, 200}, 5*time.Second
	}
	timers := DefaultTimers()
	idleBound := 3 / timers.ProbeInterval.Seconds()
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			k := dilation(n)
			ms := gossipCluster(t, n, k)
			// The joins' broadcasts drain: wait until the rate stops falling.
			prev := rateOver(ms, window/4, k)
			for range 12 {
				cur := rateOver(ms, window/4, k)
				if cur.pkts > 0.9*prev.pkts {
					break
				}
				prev = cur
			}

			gone := goneEvents(ms)
			idle := rateOver(ms, window, k)
			falseDeaths := goneEvents(ms) - gone
			t.Logf("%d members idle: %.1f datagrams/s, %.0f UDP B/s, %.0f TCP B/s per member; %d false deaths seen meanwhile",
				n, idle.pkts, idle.udpBytes, idle.tcpBytes, falseDeaths)

			victim, rest := ms[len(ms)-1], ms[:len(ms)-1]
			killed := time.Now()
			if err := victim.Shutdown(); err != nil {
				t.Fatalf("killing %s: %v", victim.name, err)
			}
			after := rateOver(rest, window, k)
			var slow []string
			for _, m := range rest {
				if !lacks(victim.name)(m) {
					slow = append(slow, m.name)
				}
			}
			if len(slow) > 0 {
				t.Errorf("%d members still list %s %s after it was killed", len(slow), victim.name, time.Since(killed))
			}
			t.Logf("timers dilated %d times; rates are per second of production time", k)
			t.Logf("%d members, %s after a kill: %.1f datagrams/s, %.0f UDP B/s, %.0f TCP B/s per member",
				n, window, after.pkts, after.udpBytes, after.tcpBytes)

			if idle.pkts > idleBound {
				t.Errorf("idle: %.1f datagrams/s per member, want at most %.1f (3 per probe interval)", idle.pkts, idleBound)
			}
			retransmits := float64(timers.RetransmitMult) * math.Ceil(math.Log10(float64(n+1)))
			killBound := idleBound + 4*retransmits/window.Seconds()
			if after.pkts > killBound {
				t.Errorf("after a kill: %.1f datagrams/s per member, want at most %.1f", after.pkts, killBound)
			}
			if bench {
				benchLine(fmt.Sprintf("members_gossip_pkts_per_node_s_%d", n), idle.pkts, "pkts/s")
				benchLine(fmt.Sprintf("members_gossip_bytes_per_node_s_%d", n), idle.udpBytes+idle.tcpBytes, "B/s")
				benchLine(fmt.Sprintf("members_gossip_pkts_per_node_s_%d_after_kill", n), after.pkts, "pkts/s")
				benchLine(fmt.Sprintf("members_gossip_bytes_per_node_s_%d_after_kill", n), after.udpBytes+after.tcpBytes, "B/s")
				benchLine(fmt.Sprintf("members_gossip_false_deaths_%d", n), float64(falseDeaths), "events")
			}
		})
	}
}

// dilation is the factor the timers of an n-member simulation are stretched by.
func dilation(n int) int { return max(1, (n+19)/20) }

// dilate multiplies every timer by k.
func dilate(t Timers, k int) Timers {
	for _, d := range []*time.Duration{
		&t.ProbeInterval, &t.ProbeTimeout, &t.GossipInterval, &t.GossipToTheDeadTime,
		&t.PushPullInterval, &t.TCPTimeout, &t.DeadNodeReclaimTime,
	} {
		*d *= time.Duration(k)
	}
	return t
}

// gossipCluster starts n encrypted members with speaker-sized metadata and the default timers
// dilated k times, and waits until every member lists all of them. Members join in batches of 25,
// each member through a random earlier one, and the next batch waits until the last one is known
// to all, as a DaemonSet rollout adds speakers a few at a time (200 joins at once would flood the
// one process with the alive messages of every join). A member that gossip has not told about
// another by then pulls the full state from the first member: the anti-entropy memberlist does
// every push/pull interval, which the dilated timers would make minutes long.
func gossipCluster(t *testing.T, n, k int) []*testMember {
	t.Helper()
	meta := bytes.Repeat([]byte("m"), 64)
	// No debug logs: hundreds of members in one process share the machine's cores, and the
	// measurement is of the members, not of log formatting.
	set := func(c *Config) {
		c.SecretKey, c.Meta, c.Logger, c.Timers = keyA, meta, slog.New(slog.DiscardHandler), dilate(DefaultTimers(), k)
	}
	// Memberlist allocates a 64 KiB buffer per datagram received; with hundreds of members in one
	// process the collector would take the CPU the members need.
	old := debug.SetGCPercent(400)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	ms := []*testMember{startWith(t, "m000", 0, set)}
	begin := time.Now()
	for len(ms) < n {
		batch := min(25, n-len(ms))
		for range batch {
			ms = append(ms, startWith(t, fmt.Sprintf("m%03d", len(ms)), 0, set, ms[rand.IntN(len(ms))]))
		}
		converge(t, ms, time.Duration(k)*5*time.Second)
	}
	t.Logf("%d members joined and converged in %s", n, time.Since(begin).Round(time.Millisecond))
	return ms
}

// converge waits up to gossip for every member to list all of ms, then makes the members that do
// not pull the state of the first member, and waits for them.
func converge(t *testing.T, ms []*testMember, gossip time.Duration) {
	t.Helper()
	behind := func() []*testMember {
		var out []*testMember
		for _, m := range ms {
			if m.ml.NumMembers() != len(ms) {
				out = append(out, m)
			}
		}
		return out
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	wait := func(d time.Duration) []*testMember {
		deadline := time.NewTimer(d)
		defer deadline.Stop()
		for {
			b := behind()
			if len(b) == 0 {
				return nil
			}
			select {
			case <-tick.C:
			case <-deadline.C:
				return b
			}
		}
	}
	lagging := wait(gossip)
	seed := fmt.Sprintf("127.0.0.1:%d", ms[0].port)
	for _, m := range lagging {
		if _, err := m.Join([]string{seed}); err != nil {
			t.Fatalf("%s pulling the state of %s: %v", m.name, ms[0].name, err)
		}
	}
	if b := wait(gossip); len(b) > 0 {
		t.Fatalf("%d of %d members do not list all of them (%s lists %d)", len(b), len(ms), b[0].name, b[0].ml.NumMembers())
	}
}

// goneEvents counts the Gone events all members have reported so far.
func goneEvents(ms []*testMember) int {
	n := 0
	for _, m := range ms {
		m.events.mu.Lock()
		for _, ev := range m.events.events {
			if ev.Kind == Gone {
				n++
			}
		}
		m.events.mu.Unlock()
	}
	return n
}

type rates struct{ pkts, udpBytes, tcpBytes float64 }

// rateOver returns what the members sent per member and second during the next d of production
// time (d*k with timers dilated k times), in production time.
func rateOver(ms []*testMember, d time.Duration, k int) rates {
	sum := func() Traffic {
		var s Traffic
		for _, m := range ms {
			tr := m.Traffic()
			s.UDPPackets += tr.UDPPackets
			s.UDPBytes += tr.UDPBytes
			s.TCPBytes += tr.TCPBytes
		}
		return s
	}
	before, begin := sum(), time.Now()
	end := time.NewTimer(d * time.Duration(k))
	<-end.C
	got, took := sum().Sub(before), time.Since(begin).Seconds()/float64(k)
	per := float64(len(ms)) * took
	return rates{pkts: float64(got.UDPPackets) / per, udpBytes: float64(got.UDPBytes) / per, tcpBytes: float64(got.TCPBytes) / per}
}

// benchLine prints one figure for hack/benchreport.
func benchLine(name string, v float64, unit string) {
	line, _ := json.Marshal(struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	}{name, math.Round(v*10) / 10, unit})
	fmt.Printf("BENCHJSON %s\n", line)
}
