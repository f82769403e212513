package layer2

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/speaker/election"
)

func TestKeeps(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	// Which of n1 and n2 the election prefers for ip, as every speaker computes it.
	win, _ := election.Owner(ip, []string{"n1", "n2"})
	lose := "n1"
	if win == "n1" {
		lose = "n2"
	}
	tests := []struct {
		name   string
		self   string
		others []string
		want   bool
	}{
		{name: "nobody else", self: win, want: true},
		{name: "winner against the loser", self: win, others: []string{lose}, want: true},
		{name: "loser against the winner", self: lose, others: []string{win}, want: false},
		{name: "a host that is not a Herald speaker", self: win, others: []string{""}, want: false},
		{name: "winner, but also a foreign host", self: win, others: []string{lose, ""}, want: false},
		{name: "own MAC on another interface", self: lose, others: []string{lose}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keeps(ip, tt.self, tt.others); got != tt.want {
				t.Errorf("keeps(%s, %q, %q) = %v, want %v", ip, tt.self, tt.others, got, tt.want)
			}
		})
	}
}

// TestKeepsExactlyOne: whatever the set of Herald speakers claiming an address, exactly one of
// them keeps it, and it is the one the election would pick among them.
func TestKeepsExactlyOne(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "node-a", "node-b"}
	for i := range 64 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		for size := 2; size <= len(nodes); size++ {
			set := nodes[:size]
			var keepers []string
			for _, self := range set {
				others := slices.DeleteFunc(slices.Clone(set), func(n string) bool { return n == self })
				if keeps(ip, self, others) {
					keepers = append(keepers, self)
				}
			}
			want, _ := election.Owner(ip, set)
			if len(keepers) != 1 || keepers[0] != want {
				t.Fatalf("%s among %v: kept by %v, want only %s", ip, set, keepers, want)
			}
		}
	}
}

var testTiming = guardTiming{
	NewProbes: 3, NewWait: 300 * time.Millisecond, FirstCheck: time.Second, Interval: 8 * time.Second,
	Confirm: time.Second, Recheck: time.Second, ReplyWait: 250 * time.Millisecond,
	clock: newClock(time.Unix(1_000_000, 0)), // the simulations' start
}

// simSpeaker is a Herald speaker in the simulation: it owns the address from start until stop
// (zero: the end), fresh or as a takeover.
type simSpeaker struct {
	name, mac   string
	fresh       bool
	start, stop time.Duration
}

// simHost is a host that is not a Herald speaker, holding the address from start until stop.
type simHost struct {
	mac         string
	start, stop time.Duration
}

// simulate runs a guard per speaker for one address on one segment, in 1ms steps, as the
// Announcer drives them (without pacing): a speaker's probe is answered 1ms later by every
// speaker answering then and every host holding the address; a speaker that starts answering
// sends gratuitous announcements (DefaultBurst). It returns what each speaker did, as
// "<time> <what>", where what is answer, silent, conflict-kept, conflict-yielded,
// conflict-not-announced or clear.
func simulate(t *testing.T, ip netip.Addr, speakers []simSpeaker, hosts []simHost, known bool, until time.Duration) map[string][]string {
	t.Helper()
	type delivery struct {
		at    time.Duration
		to    string // speaker
		from  string // MAC
		epoch int    // announcements: the sender's answering epoch they belong to (0: an answer)
	}
	names, macs := map[string]string{}, map[string]string{}
	for _, s := range speakers {
		names[s.mac] = s.name
		if known {
			macs[s.mac] = s.name
		}
	}
	who := func(mac string) string { return macs[mac] }
	epoch := map[string]int{}
	base := time.Unix(1_000_000, 0)
	guards := map[string]*guard{}
	answering := map[string]bool{}
	sig, act := map[string]string{}, map[string]string{}
	var queue []delivery
	out := map[string][]string{}
	record := func(name string, at time.Duration, what string) {
		out[name] = append(out[name], fmt.Sprintf("%v %s", at, what))
	}
	announce := func(s simSpeaker, at time.Duration) {
		epoch[s.name]++
		offsets := append([]time.Duration{0}, DefaultBurst...)
		for _, o := range offsets {
			for _, other := range speakers {
				if other.name != s.name {
					queue = append(queue, delivery{at: at + o + time.Millisecond, to: other.name, from: s.mac, epoch: epoch[s.name]})
				}
			}
		}
	}
	holders := func(at time.Duration, asker string) []string {
		var macs []string
		for _, s := range speakers {
			if s.name != asker && answering[s.name] {
				macs = append(macs, s.mac)
			}
		}
		for _, h := range hosts {
			if at >= h.start && (h.stop == 0 || at < h.stop) {
				macs = append(macs, h.mac)
			}
		}
		return macs
	}
	apply := func(s simSpeaker, g *guard, at time.Duration, res stepResult) {
		now := base.Add(at)
		if res.probe || (g.nextProbe != 0 && g.t.clock.stamp(now) >= g.nextProbe) {
			g.probed(now, who)
			for _, mac := range holders(at, s.name) {
				queue = append(queue, delivery{at: at + time.Millisecond, to: s.name, from: mac})
			}
		}
		switch {
		case res.start:
			answering[s.name] = true
			record(s.name, at, "answer")
			announce(s, at)
		case res.stop:
			answering[s.name] = false
			record(s.name, at, "silent")
		case res.defend:
			record(s.name, at, "defend")
			announce(s, at)
		}
		if ns := g.signature(who); ns != sig[s.name] {
			action := ""
			if ns != "" {
				action = conflictOf(guardKey{}, g, nil, "").Action()
			}
			switch {
			case action == "":
				record(s.name, at, "clear")
			case action != act[s.name]:
				record(s.name, at, "conflict-"+action)
			}
			sig[s.name], act[s.name] = ns, action
		}
	}
	for at := time.Duration(0); at <= until; at += time.Millisecond {
		now := base.Add(at)
		for _, s := range speakers {
			g := guards[s.name]
			switch {
			case at == s.start:
				ng := newGuard(ip, s.fresh, now, &testTiming)
				g = &ng
				guards[s.name] = g
				if g.answering {
					answering[s.name] = true
					record(s.name, at, "answer")
					announce(s, at)
				}
			case s.stop != 0 && at == s.stop:
				delete(guards, s.name)
				answering[s.name] = false
				record(s.name, at, "gone")
				continue
			}
			if g == nil {
				continue
			}
			for _, d := range queue {
				// Announcements of a speaker that stopped answering since are not sent.
				sender := names[d.from]
				if d.at == at && d.to == s.name && (d.epoch == 0 || (answering[sender] && epoch[sender] == d.epoch)) {
					g.saw(now, d.from)
				}
			}
			apply(s, g, at, g.step(now, s.name, who))
		}
		queue = slices.DeleteFunc(queue, func(d delivery) bool { return d.at <= at })
	}
	return out
}

func TestGuardSimulation(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	win, _ := election.Owner(ip, []string{"n1", "n2"})
	lose := "n1"
	if win == "n1" {
		lose = "n2"
	}
	mac := map[string]string{win: "\x02\x00\x00\x00\x00\x01", lose: "\x02\x00\x00\x00\x00\x02"}
	host := "\x02\x00\x00\x00\x00\x99"
	tests := []struct {
		name     string
		speakers []simSpeaker
		hosts    []simHost
		unknown  bool // speakers do not know each other's MACs
		until    time.Duration
		want     map[string][]string
	}{
		{
			name:     "takeover, nobody else: answered at once",
			speakers: []simSpeaker{{name: win, mac: mac[win]}},
			until:    20 * time.Second,
			want:     map[string][]string{win: {"0s answer"}},
		},
		{
			name:     "fresh address, free: answered after the probes",
			speakers: []simSpeaker{{name: win, mac: mac[win], fresh: true}},
			until:    5 * time.Second,
			want:     map[string][]string{win: {"300ms answer"}},
		},
		{
			name:     "fresh address held by a host: never answered",
			speakers: []simSpeaker{{name: win, mac: mac[win], fresh: true}},
			hosts:    []simHost{{mac: host}},
			until:    20 * time.Second,
			want:     map[string][]string{win: {"300ms conflict-not-announced"}},
		},
		{
			// Checks at 1.3s, then every 1, 2, 4, 8 (Interval) seconds: 2.3, 4.3, 8.3, 16.3, 24.3.
			// The host leaves at 9s: the checks at 16.3 and 24.3 go unanswered.
			name:     "fresh address held by a host that leaves: answered two checks later",
			speakers: []simSpeaker{{name: win, mac: mac[win], fresh: true}},
			hosts:    []simHost{{mac: host, stop: 9 * time.Second}},
			until:    30 * time.Second,
			want:     map[string][]string{win: {"300ms conflict-not-announced", "24.55s answer", "24.55s clear"}},
		},
		{
			// The host starts answering at 3s; the periodic probe at 9s (1s FirstCheck + 8s
			// Interval) finds it; it answers the check 1s later again: a conflict, yielded to it.
			name:     "a host takes the address later: found by a periodic probe",
			speakers: []simSpeaker{{name: win, mac: mac[win]}},
			hosts:    []simHost{{mac: host, start: 3 * time.Second}},
			until:    15 * time.Second,
			want:     map[string][]string{win: {"0s answer", "10.002s silent", "10.002s conflict-yielded"}},
		},
		{
			// The loser takes over at 5s while the winner answers (it sees the winner as dead: a
			// split brain). The winner sees the loser's announcements (1ms on the wire) and
			// confirms with the one 1s later: it keeps the address and announces it again. The
			// loser sees the winner's answer to its check 1s after the takeover and confirms
			// with the next check: it yields, and keeps checking. The winner's conflict ends
			// after two checks the loser leaves unanswered, and it announces once more.
			name:     "split brain between two speakers: the rule leaves one",
			speakers: []simSpeaker{{name: win, mac: mac[win]}, {name: lose, mac: mac[lose], start: 5 * time.Second}},
			until:    20 * time.Second,
			want: map[string][]string{
				win:  {"0s answer", "6.001s defend", "6.001s conflict-kept", "9.251s defend", "9.251s clear"},
				lose: {"5s answer", "7.002s silent", "7.002s conflict-yielded"},
			},
		},
		{
			name: "the winner goes away during the conflict: the loser answers again",
			speakers: []simSpeaker{{name: win, mac: mac[win], stop: 10 * time.Second},
				{name: lose, mac: mac[lose], start: 5 * time.Second}},
			until: 20 * time.Second,
			want: map[string][]string{
				win:  {"0s answer", "6.001s defend", "6.001s conflict-kept", "9.251s defend", "9.251s clear", "10s gone"},
				lose: {"5s answer", "7.002s silent", "7.002s conflict-yielded", "11.251s answer", "11.251s clear"},
			},
		},
		{
			// A graceful move: the old owner stops 20ms after the new one took over; the new one
			// sees nothing (the old one stops before its first check), the old one a few of the
			// new one's announcements before it lets go, which confirms nothing.
			name:     "handover overlap of 20ms is no conflict",
			speakers: []simSpeaker{{name: lose, mac: mac[lose], stop: 5020 * time.Millisecond}, {name: win, mac: mac[win], start: 5 * time.Second}},
			until:    20 * time.Second,
			want: map[string][]string{
				lose: {"0s answer", "5.02s gone"},
				win:  {"5s answer"},
			},
		},
		{
			name:     "both fresh in a split brain: one answers",
			speakers: []simSpeaker{{name: win, mac: mac[win], fresh: true}, {name: lose, mac: mac[lose], fresh: true, start: 2 * time.Second}},
			until:    15 * time.Second,
			want: map[string][]string{
				win:  {"300ms answer"},
				lose: {"2.3s conflict-not-announced"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := simulate(t, ip, tt.speakers, tt.hosts, !tt.unknown, tt.until)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("what each speaker did (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGuardTimingDefaultsAndErrors(t *testing.T) {
	tm, rate, err := ConflictConfig{}.timing()
	if err != nil {
		t.Fatal(err)
	}
	want := guardTiming{NewProbes: DefaultNewProbes, NewWait: DefaultNewProbeWait, FirstCheck: DefaultFirstCheck,
		Interval: DefaultProbeInterval, Confirm: DefaultConfirm, Recheck: DefaultRecheck, ReplyWait: DefaultReplyWait}
	if diff := cmp.Diff(want, tm, cmp.AllowUnexported(guardTiming{}, clock{})); diff != "" || rate != DefaultProbeRate {
		t.Errorf("defaults (-want +got):\n%s\nrate %v", diff, rate)
	}
	for _, c := range []ConflictConfig{
		{NewProbes: -1}, {Interval: -time.Second}, {ReplyWait: 2 * time.Second}, {Rate: -1},
	} {
		if _, _, err := c.timing(); err == nil {
			t.Errorf("%+v accepted, want ErrInvalidConflictConfig", c)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	start := time.Unix(0, 0)
	b := tokenBucket{rate: 100, burst: 10}
	sent := 0
	for at := time.Duration(0); at < 10*time.Second; at += time.Millisecond {
		for b.take(start.Add(at)) {
			sent++
		}
	}
	// 10 at once, then 100 a second.
	if sent < 1000 || sent > 1010 {
		t.Errorf("%d probes in 10s at 100/s with a burst of 10", sent)
	}
	if next := b.nextToken(start.Add(10 * time.Second)); next.Before(start.Add(10*time.Second + 10*time.Millisecond)) {
		t.Errorf("next token at %v: want wake-ups at least 10ms apart", next.Sub(start))
	}
}

// TestGuardSimulationConverges: however many speakers take an address over at different times
// (each sees the others as dead), in the end exactly one answers, the one the election prefers
// among them, and it has no conflict left.
func TestGuardSimulationConverges(t *testing.T) {
	for i := range 8 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		names := []string{"n1", "n2", "n3"}
		var speakers []simSpeaker
		for j, n := range names {
			speakers = append(speakers, simSpeaker{name: n, mac: fmt.Sprintf("\x02\x00\x00\x00\x00%c", rune(j+1)),
				start: time.Duration(j) * 1500 * time.Millisecond, fresh: i%2 == 0 && j == 0})
		}
		got := simulate(t, ip, speakers, nil, true, 25*time.Second)
		want, _ := election.Owner(ip, names)
		for _, n := range names {
			last := got[n][len(got[n])-1]
			// A guard that clears answers; one that yields ends silent or yielded.
			answering := strings.HasSuffix(last, " answer") || strings.HasSuffix(last, " clear") || strings.HasSuffix(last, " defend")
			if (n == want) != answering {
				t.Errorf("%s: %s ends with %q (events %q); want only %s answering", ip, n, last, got[n], want)
			}
		}
	}
}
