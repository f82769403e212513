package scale

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
)

// A failover's timeline
//
// The client's figure (kill -> first answer from the new owner) is the sum of several steps on
// several processes. After each kill the test reads the surviving speakers' logs and puts, for
// the IPs that moved, each step on one time line measured from the kill:
//
//   - suspected: memberlist on some survivor found the victim silent ("Suspect ... has failed";
//     memberlist logs it at debug level, so only with -scale.log-level=debug);
//   - dead: memberlist declared it dead ("Marking ... as failed", debug), then each survivor
//     dropped it ("member gone", info);
//   - re-elected: the new owner's recomputation after that change ended ("re-elected after a
//     membership change", with how long planning and handing the IPs to the announcer took);
//   - taken over: the new owner's announcer started answering for the IP ("taking over"); its
//     first gratuitous announcement goes out then or, when paced, soon after;
//   - answered: the segment client got the first answer from the new owner, solicited (it asked)
//     or unsolicited (the gratuitous announcement).
//
// With it goes what the CPU did from the kill to the last answer: how busy the machine was, and how
// often the survivors' CFS quota (the DaemonSet's CPU limit) held them back.

// answer is one Neighbor Advertisement the segment client saw (a line of ndpprobe).
type answer struct {
	at        time.Time
	ip        string
	mac       string
	solicited bool
}

// parseAnswer parses "<unix ns> <ip> <mac> [s|u]".
func parseAnswer(line string) (answer, bool) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return answer{}, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return answer{}, false
	}
	return answer{at: time.Unix(0, ns), ip: f[1], mac: f[2], solicited: len(f) > 3 && f[3] == "s"}, true
}

// failoverRun is one kill: the first answer from a new owner for each IP the victim owned.
type failoverRun struct {
	victim  string
	killed  time.Time
	answers []answer
	macs    map[string]string // MAC -> node
	cpu     cpuDelta
}

// gaps returns, for each moved IP, the time from the kill to its first answer from a new owner.
func (r *failoverRun) gaps() []time.Duration {
	out := make([]time.Duration, 0, len(r.answers))
	for _, a := range r.answers {
		out = append(out, a.at.Sub(r.killed))
	}
	return out
}

// logEvent is one line of a speaker's JSON log that the timeline uses.
type logEvent struct {
	at   time.Time
	msg  string
	rec  map[string]any
	node string // whose log
}

// readEvents returns the records of node's speaker log written from since on.
func readEvents(path, node string, since time.Time) ([]logEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the log of %s: %w", node, err)
	}
	defer f.Close()
	var out []logEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	for sc.Scan() {
		ev, ok := parseLogLine(sc.Bytes(), node)
		if ok && !ev.at.Before(since) {
			out = append(out, ev)
		}
	}
	return out, sc.Err()
}

// parseLogLine parses one JSON record of slog's JSONHandler.
func parseLogLine(line []byte, node string) (logEvent, bool) {
	if len(line) == 0 || line[0] != '{' {
		return logEvent{}, false
	}
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		return logEvent{}, false
	}
	ts, _ := rec["time"].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return logEvent{}, false
	}
	msg, _ := rec["msg"].(string)
	return logEvent{at: at, msg: msg, rec: rec, node: node}, true
}

func (e logEvent) str(key string) string {
	v, _ := e.rec[key].(string)
	return v
}

// dur reads a duration, which slog's JSONHandler writes in nanoseconds.
func (e logEvent) dur(key string) time.Duration {
	v, _ := e.rec[key].(float64)
	return time.Duration(v).Round(100 * time.Microsecond)
}

// failoverSteps are the times of the steps of one failover, read from the speakers' logs.
type failoverSteps struct {
	suspected, marked map[string]time.Time // by survivor: memberlist's suspicion, declaration
	confirmations     map[string]string    // by survivor that declared the victim dead
	gone              map[string]time.Time // by survivor: "member gone"
	reelected         map[string]logEvent  // by survivor: the first re-election after gone
	takeover          map[string]time.Time // by IP: "taking over" on its new owner
	// others counts the declarations of other members gone meanwhile (false deaths, unless the
	// logs read reach past the window).
	others int
}

// steps reads the victim's failover from the survivors' log events.
func steps(victim string, events []logEvent, newOwner map[string]string) failoverSteps {
	st := failoverSteps{suspected: map[string]time.Time{}, marked: map[string]time.Time{}, confirmations: map[string]string{},
		gone: map[string]time.Time{}, reelected: map[string]logEvent{}, takeover: map[string]time.Time{}}
	first := func(m map[string]time.Time, k string, at time.Time) {
		if old, ok := m[k]; !ok || at.Before(old) {
			m[k] = at
		}
	}
	slices.SortFunc(events, func(a, b logEvent) int { return a.at.Compare(b.at) })
	for _, e := range events {
		switch {
		case strings.HasPrefix(e.msg, "Suspect "+victim+" has failed"):
			first(st.suspected, e.node, e.at)
		case strings.HasPrefix(e.msg, "Marking "+victim+" as failed"):
			first(st.marked, e.node, e.at)
			if _, c, ok := strings.Cut(e.msg, "("); ok {
				st.confirmations[e.node] = strings.TrimSuffix(c, ")")
			}
		case e.msg == "member gone" && e.str("member") == victim:
			first(st.gone, e.node, e.at)
		case e.msg == "member gone":
			st.others++
		case e.msg == "re-elected after a membership change":
			if g, ok := st.gone[e.node]; ok && !e.at.Before(g) {
				if _, done := st.reelected[e.node]; !done {
					st.reelected[e.node] = e
				}
			}
		case e.msg == "taking over":
			if ip := e.str("ip"); newOwner[ip] == e.node {
				first(st.takeover, ip, e.at)
			}
		}
	}
	return st
}

// timeline reads the survivors' logs and describes the failover step by step.
func (r *failoverRun) timeline(l *lab.Lab) string {
	var events []logEvent
	var errs []string
	for _, n := range l.Nodes {
		if n.Name == r.victim {
			continue
		}
		p := l.Proc("speaker-" + n.Name)
		if p == nil {
			continue
		}
		evs, err := readEvents(p.LogPath, n.Name, r.killed)
		if err != nil {
			errs = append(errs, err.Error())
		}
		events = append(events, evs...)
	}
	newOwner := map[string]string{}
	for _, a := range r.answers {
		newOwner[a.ip] = r.macs[a.mac]
	}
	return r.describe(steps(r.victim, events, newOwner), newOwner) + strings.Join(errs, "\n")
}

// describe writes the steps as offsets from the kill: earliest, median and latest over the
// survivors (or the new owners, or the IPs).
func (r *failoverRun) describe(st failoverSteps, newOwner map[string]string) string {
	owners := map[string]bool{}
	for _, n := range newOwner {
		owners[n] = true
	}
	var b strings.Builder
	line := func(what string, ts []time.Time) {
		if len(ts) == 0 {
			fmt.Fprintf(&b, "  %-58s (not in the logs)\n", what)
			return
		}
		ds := make([]time.Duration, 0, len(ts))
		for _, t := range ts {
			ds = append(ds, t.Sub(r.killed))
		}
		slices.Sort(ds)
		ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
		fmt.Fprintf(&b, "  %-58s %5s %5s %5s ms (n=%d)\n", what, ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]), len(ds))
	}
	values := func(m map[string]time.Time, keep func(string) bool) []time.Time {
		var out []time.Time
		for k, t := range m {
			if keep(k) {
				out = append(out, t)
			}
		}
		return out
	}
	all := func(string) bool { return true }
	isOwner := func(n string) bool { return owners[n] }
	fmt.Fprintf(&b, "  %-58s %5s %5s %5s\n", "step (from the kill)", "first", "med", "last")
	line("memberlist suspects it (survivors)", values(st.suspected, all))
	line("memberlist declares it dead (survivors that did)", values(st.marked, all))
	line("member gone (survivors)", values(st.gone, all))
	line("member gone (new owners)", values(st.gone, isOwner))
	var reelected []time.Time
	var costs []string
	for n, e := range st.reelected {
		if owners[n] {
			reelected = append(reelected, e.at)
			costs = append(costs, fmt.Sprintf("%s takeover %s plan %s announce %s took %s", n, e.dur("takeover"), e.dur("plan"), e.dur("announce"), e.dur("took")))
		}
	}
	line("re-elected (new owners)", reelected)
	line("taken over (IPs, on their new owner)", values(st.takeover, all))
	var answered, solicited []time.Time
	for _, a := range r.answers {
		answered = append(answered, a.at)
		if a.solicited {
			solicited = append(solicited, a.at)
		}
	}
	line("first answer at the client (IPs)", answered)
	fmt.Fprintf(&b, "  first answers that were answers to a solicitation: %d of %d (the others: gratuitous)\n", len(solicited), len(answered))
	var confs []string
	for n, c := range st.confirmations {
		confs = append(confs, n+": "+c)
	}
	slices.Sort(confs)
	if len(confs) > 0 {
		fmt.Fprintf(&b, "  declared dead with: %s\n", strings.Join(confs, "; "))
	}
	if len(st.suspected) > 0 {
		// Each survivor's own view, in the order they dropped the victim.
		var rows []string
		ms := func(m map[string]time.Time, n string) string {
			if t, ok := m[n]; ok {
				return strconv.FormatInt(t.Sub(r.killed).Milliseconds(), 10)
			}
			return "-"
		}
		for n := range st.gone {
			rows = append(rows, fmt.Sprintf("%s suspect %s dead %s gone %s", n, ms(st.suspected, n), ms(st.marked, n), ms(st.gone, n)))
		}
		slices.SortFunc(rows, func(a, b string) int { return st.gone[strings.Fields(a)[0]].Compare(st.gone[strings.Fields(b)[0]]) })
		fmt.Fprintf(&b, "  by survivor (ms): %s\n", strings.Join(rows, "; "))
	}
	slices.Sort(costs)
	if len(costs) > 0 {
		fmt.Fprintf(&b, "  re-election cost: %s\n", strings.Join(costs, "; "))
	}
	fmt.Fprintf(&b, "  other members declared gone by survivors since the kill (false deaths): %d\n", st.others)
	fmt.Fprintf(&b, "  CPU from the kill to the last answer: %s\n", r.cpu)
	return b.String()
}

// cpuSample is the machine's CPU counters and the survivors' CFS accounting at one moment.
type cpuSample struct {
	at          time.Time
	busy, total uint64 // jiffies of /proc/stat's cpu line
	cores       int
	speakers    map[string]lab.CPUStat
}

// cpuDelta is what the CPU did between two samples.
type cpuDelta struct {
	wall                        time.Duration
	busy                        float64 // share of the machine's CPU time used
	cores                       int
	periods, throttled          int64
	throttledTime, maxThrottled time.Duration
}

func (d cpuDelta) String() string {
	return fmt.Sprintf("(%s) machine %.0f%% busy (of %d cores); speakers throttled by their quota in %d of %d CFS periods (%s held back in all, %s at most one node)",
		d.wall.Round(time.Millisecond), 100*d.busy, d.cores, d.throttled, d.periods, d.throttledTime.Round(time.Millisecond), d.maxThrottled.Round(time.Millisecond))
}

// cpuNow samples the machine and the CPU-limited speakers other than skip.
func cpuNow(l *lab.Lab, skip string) cpuSample {
	s := cpuSample{at: time.Now(), speakers: map[string]lab.CPUStat{}}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 4 && f[0] == "cpu":
				for i, v := range f[1:] {
					n, _ := strconv.ParseUint(v, 10, 64)
					s.total += n
					if i != 3 && i != 4 { // idle, iowait
						s.busy += n
					}
				}
			case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
				s.cores++
			}
		}
	}
	for _, n := range l.Nodes {
		if n.Name == skip {
			continue
		}
		if st, err := l.SpeakerCPUStat(n.Name); err == nil {
			s.speakers[n.Name] = st
		}
	}
	return s
}

func (s cpuSample) since(before cpuSample) cpuDelta {
	d := cpuDelta{wall: s.at.Sub(before.at), cores: s.cores}
	if s.total > before.total {
		d.busy = float64(s.busy-before.busy) / float64(s.total-before.total)
	}
	for n, st := range s.speakers {
		b := before.speakers[n]
		d.periods += st.Periods - b.Periods
		d.throttled += st.Throttled - b.Throttled
		tt := st.ThrottledTime - b.ThrottledTime
		d.throttledTime += tt
		d.maxThrottled = max(d.maxThrottled, tt)
	}
	return d
}

// phaseDeaths is what falseDeaths found in one phase of a run.
type phaseDeaths struct {
	falseN, all int
	sample      []string // up to 5 of the false ones: when and where they happened
}

// falseDeaths counts, over every speaker's log (read once), the members declared gone ("member
// gone") that were not killed in the 5 seconds before, and all declarations, per phase: phase i
// holds the declarations made at or after bounds[i-1] and before bounds[i] (bounds ascending;
// len(bounds)+1 phases).
func falseDeaths(l *lab.Lab, killed map[string][]time.Time, bounds []time.Time) []phaseDeaths {
	out := make([]phaseDeaths, len(bounds)+1)
	for _, n := range l.Nodes {
		p := l.Proc("speaker-" + n.Name)
		if p == nil {
			continue
		}
		evs, err := readEvents(p.LogPath, n.Name, time.Time{})
		if err != nil {
			continue
		}
		for _, e := range evs {
			if e.msg != "member gone" {
				continue
			}
			ph := &out[sort.Search(len(bounds), func(i int) bool { return e.at.Before(bounds[i]) })]
			ph.all++
			if !slices.ContainsFunc(killed[e.str("member")], func(k time.Time) bool { return !e.at.Before(k) && e.at.Sub(k) < 5*time.Second }) {
				ph.falseN++
				if len(ph.sample) < 5 {
					ph.sample = append(ph.sample, fmt.Sprintf("%s declared %s gone at %s", n.Name, e.str("member"), e.at.Format("15:04:05.000")))
				}
			}
		}
	}
	return out
}
