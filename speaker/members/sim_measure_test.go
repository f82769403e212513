package members

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestBenchMembershipSimulation measures the membership layer alone at growing cluster sizes, in
// the simulation of sim_test.go (real memberlist, Herald's configuration, virtual time, modelled
// network and CPU):
//
//   - detection of a killed member: for each of several kills (no Leave), the time from the kill
//     until each live member saw it gone; the median and the worst over every (kill, member) pair,
//     with the timers the speaker uses for that size (TimersFor) and, for comparison up to 200
//     members, with the fixed DefaultTimers;
//   - gossip: datagrams and bytes (UDP and TCP) each member sends per second, idle;
//   - false deaths: live members declared dead (all members hearing of one death count once),
//     over a stretch of virtual time (10 minutes with HERALD_BENCH=1) on a network that drops 0.1%
//     of the datagrams and delays each by 0.1 to 1ms, in two conditions: quiet (the speaker's CPU
//     limit is not reached: the normal case), and throttled, where in a random tenth of the seconds
//     each member is
//     held to a 500m CPU quota while it wants more: with two busy threads (GOMAXPROCS is 2 under
//     a 500m limit) it spends the 50ms quota in the first 25ms of each 100ms CFS period and is
//     frozen for the other 75ms (the DaemonSet's limit under an event storm, with no pacing). What
//     a frozen member sends and receives waits until it thaws while its timers run on, so a frozen
//     member may declare others dead whose refutations it has not read yet: the model errs on the
//     side of false deaths. make bench also runs throttled with the fixed 70ms timers, for comparison.
//
// make test runs 3 and 50 members, one minute quiet and 15 seconds throttled at 50; make bench (HERALD_BENCH=1)
// runs 3, 50, 200 and 1,000 members, ten minutes quiet at 200 and ten minutes throttled at 50, and
// prints BENCHJSON lines.
func TestBenchMembershipSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates clusters of memberlist instances")
	}
	bench := os.Getenv("HERALD_BENCH") == "1"
	// Ten kills at every size: the median over fewer varies too much from run to run (memberlist
	// draws its own random numbers) to be compared with a target.
	sizes, kills, endurance, enduranceN := []int{3, 50}, 10, time.Minute, 50
	if bench {
		sizes, endurance, enduranceN = []int{3, 50, 200, 1000}, 10*time.Minute, 200
	}
	// HERALD_SIM_SIZES=3,50,200 chooses the sizes (the 1,000-member run is the longest of make bench).
	if v := os.Getenv("HERALD_SIM_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				t.Fatalf("HERALD_SIM_SIZES=%q: want member counts of at least 2, comma-separated", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			scaled := simDetect(t, n, TimersFor(n), kills, true)
			t.Logf("%d members, probe interval %s: detection median %s, worst %s; idle %.1f datagrams/s, %.0f B/s per member",
				n, TimersFor(n).ProbeInterval, scaled.median, scaled.worst, scaled.idle.pkts, scaled.idle.udpBytes+scaled.idle.tcpBytes)
			// The comparison with the fixed timers is left out at 1,000 members: it would double
			// the longest simulation.
			var fixed simDetection
			if n <= 200 {
				fixed = simDetect(t, n, DefaultTimers(), kills, false)
				t.Logf("%d members, fixed %s interval: detection median %s, worst %s", n, DefaultTimers().ProbeInterval, fixed.median, fixed.worst)
			}
			// Live members declared dead while members are killed one after the other are
			// counted, not failed on: now and then (about one kill in 30 at 50 members) a single
			// member suspects a live one that the others still reach, hears neither its
			// refutation nor any confirmation, and declares it dead when the suspicion times out.
			// The cause is not known yet (the simulation or memberlist); quiet operation, below,
			// must have none.
			if scaled.falseDeaths > 0 {
				t.Logf("%d false deaths while %d members were killed one after the other at %d members", scaled.falseDeaths, min(kills, n-2), n)
			}
			if scaled.median > 500*time.Millisecond {
				t.Errorf("a killed member is detected in %s (median) at %d members, want at most 500ms", scaled.median, n)
			}
			if bound := 3 / TimersFor(n).ProbeInterval.Seconds(); scaled.idle.pkts > bound {
				t.Errorf("idle: %.1f datagrams/s per member at %d members, want at most %.1f (3 per probe interval)", scaled.idle.pkts, n, bound)
			}
			if bench {
				benchLine(fmt.Sprintf("members_%d_detect_median_ms", n), ms(scaled.median), "ms")
				benchLine(fmt.Sprintf("members_%d_detect_worst_ms", n), ms(scaled.worst), "ms")
				if fixed.median > 0 {
					benchLine(fmt.Sprintf("members_%d_detect_median_ms_fixed_timers", n), ms(fixed.median), "ms")
				}
				benchLine(fmt.Sprintf("members_%d_false_deaths_during_kills", n), float64(scaled.falseDeaths), "events")
				benchLine(fmt.Sprintf("members_%d_gossip_pkts_per_node_s", n), scaled.idle.pkts, "pkts/s")
				benchLine(fmt.Sprintf("members_%d_gossip_bytes_per_node_s", n), scaled.idle.udpBytes+scaled.idle.tcpBytes, "B/s")
			}
		})
	}
	// The throttled runs cost far more to simulate (every freeze reschedules deliveries, and the
	// suspicions it causes are gossiped): they run at 50 members.
	// make test runs the throttled case for a short while only (it is a comparison, not a bound)
	// and leaves the fixed timers' run to make bench.
	throttledFor := endurance
	if !bench {
		throttledFor = 15 * time.Second
	}
	for _, c := range []struct {
		name      string
		n         int
		throttled bool
		timers    Timers
		suffix    string
		d         time.Duration
		benchOnly bool
	}{
		{"quiet", enduranceN, false, TimersFor(enduranceN), "", endurance, false},
		{"throttled", 50, true, TimersFor(50), "_throttled", throttledFor, false},
		{"throttled, fixed timers", 50, true, DefaultTimers(), "_throttled_fixed_timers", throttledFor, true},
	} {
		if c.benchOnly && !bench {
			continue
		}
		t.Run(fmt.Sprintf("%d members %s for %s", c.n, c.name, c.d), func(t *testing.T) {
			r := simEndurance(t, c.n, c.d, c.throttled, c.timers)
			t.Logf("%d members, %s (probe interval %s), %s: %d false deaths, %d suspicions (%d refuted)",
				c.n, c.name, c.timers.ProbeInterval, c.d, r.falseDeaths, r.suspicions, r.refutations)
			if !c.throttled && r.falseDeaths > 0 {
				t.Errorf("%d false deaths in %s at %d members", r.falseDeaths, c.d, c.n)
			}
			if bench {
				benchLine(fmt.Sprintf("members_%d_false_deaths%s", c.n, c.suffix), float64(r.falseDeaths), "events")
				benchLine(fmt.Sprintf("members_%d_false_suspicions%s", c.n, c.suffix), float64(r.suspicions), "events")
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type simDetection struct {
	median, worst time.Duration
	idle          rates
	falseDeaths   int
}

// simDetect starts n members with timers, measures the idle gossip, then kills members one at a
// time and measures how long the others take to see each gone.
func simDetect(t *testing.T, n int, timers Timers, kills int, measureIdle bool) simDetection {
	var r simDetection
	synctest.Test(t, func(t *testing.T) {
		begin, wall := time.Now(), nowWall()
		defer func() {
			t.Logf("%d members: simulated %s in %s", n, time.Since(begin).Round(time.Second), sinceWall(wall).Round(time.Millisecond))
		}()
		net := newSimNet(uint64(n))
		net.latency = func(rng *rand.Rand) time.Duration {
			return 100*time.Microsecond + time.Duration(rng.Int64N(int64(900*time.Microsecond)))
		}
		c := newSimCluster(t, n, timers, net)
		defer c.shutdown()
		// The joins' broadcasts drain and a push/pull round passes.
		time.Sleep(timers.PushPullInterval)
		if measureIdle {
			r.idle = c.rate(30 * time.Second)
		}
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		var all []time.Duration
		for k := range min(kills, n-2) {
			victim := 1 + rng.IntN(n-1)
			for c.eps[victim].down.Load() {
				victim = 1 + rng.IntN(n-1)
			}
			since := time.Now()
			c.kill(victim)
			all = append(all, c.detection(victim, since, 10*time.Second)...)
			_ = k
			time.Sleep(3 * time.Second)
		}
		r.median, r.worst = quantile(all, 0.5), quantile(all, 1)
		r.falseDeaths = c.falseDeaths()
	})
	return r
}

type simEnduranceResult struct {
	falseDeaths, suspicions, refutations int
}

// simEndurance runs n members for d on a lossy network, throttled or not, and counts the live
// members seen gone.
func simEndurance(t *testing.T, n int, d time.Duration, throttled bool, timers Timers) simEnduranceResult {
	var r simEnduranceResult
	synctest.Test(t, func(t *testing.T) {
		begin, wall := time.Now(), nowWall()
		defer func() {
			t.Logf("%d members: simulated %s in %s", n, time.Since(begin).Round(time.Second), sinceWall(wall).Round(time.Millisecond))
		}()
		net := newSimNet(uint64(n) + 11)
		net.latency = func(rng *rand.Rand) time.Duration {
			return 100*time.Microsecond + time.Duration(rng.Int64N(int64(900*time.Microsecond)))
		}
		c := newSimCluster(t, n, timers, net)
		defer c.shutdown()
		time.Sleep(timers.PushPullInterval)
		before := c.falseDeaths()
		s0, r0 := c.log.suspicions.Load(), c.log.refutations.Load()
		net.mu.Lock()
		net.loss = 0.001
		if throttled {
			net.frozen = throttle(time.Now(), 0.1)
		}
		net.mu.Unlock()
		time.Sleep(d)
		net.mu.Lock()
		net.loss, net.frozen = 0, nil
		net.mu.Unlock()
		r.falseDeaths = c.falseDeaths() - before
		r.suspicions = int(c.log.suspicions.Load() - s0)
		r.refutations = int(c.log.refutations.Load() - r0)
	})
	return r
}

// throttle returns a freeze schedule: in a share of the seconds after epoch (chosen at random per
// member and second), the member runs for 25ms of every 100ms CFS period, as a process with two
// busy threads under a 500m quota, and is frozen for the other 75ms.
func throttle(epoch time.Time, share float64) func(member int, t time.Time) time.Time {
	return func(member int, t time.Time) time.Time {
		since := t.Sub(epoch)
		sec := uint64(since / time.Second)
		if splitmix(uint64(member)<<32|sec)%1000 >= uint64(share*1000) {
			return time.Time{}
		}
		period := since / (100 * time.Millisecond)
		if since%(100*time.Millisecond) < 25*time.Millisecond {
			return time.Time{} // running
		}
		return epoch.Add((period + 1) * 100 * time.Millisecond)
	}
}

// splitmix is the SplitMix64 finalizer: a well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
