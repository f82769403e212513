package layer2

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/speaker/election"
)

// This file is the pure core of duplicate address detection: the state of one owned address on one
// interface (a guard), driven by the claims other stations make for it, the probes sent for it and
// the passing of time; and the rule that settles a conflict. It does no I/O and reads no clock: the
// Announcer feeds it (conflicts.go).

// phase is where a guarded address is in its life.
type phase uint8

const (
	// phaseProbing: owned but never announced here, and not yet known to be free. Not answered;
	// probed a few times before the first announcement (RFC 5227 section 2.1.1).
	phaseProbing phase = iota
	// phaseClear: no other station claims the address.
	phaseClear
	// phaseSuspect: another station claimed the address; waiting for it to claim it again after
	// guardTiming.Confirm, to tell a real conflict from the few milliseconds two speakers overlap
	// while an address moves between them.
	phaseSuspect
	// phaseConflict: another station keeps claiming the address. This node answers or not as
	// keeps decides, and keeps probing until the other station is gone.
	phaseConflict
)

// missLimit is how many probes in a row a station may leave unanswered before it counts as gone.
const missLimit = 2

// guardTiming is the schedule of the checks; see ConflictConfig for the meaning of each field.
type guardTiming struct {
	NewProbes  int
	NewWait    time.Duration
	FirstCheck time.Duration
	Interval   time.Duration
	Confirm    time.Duration
	Recheck    time.Duration
	ReplyWait  time.Duration
	// clock stamps the guards' instants (set by the Announcer that runs them).
	clock clock
}

// station is another station that claimed the address.
type station struct {
	last   stamp // when it last claimed the address
	misses int   // probes since then that it left unanswered
}

// guard is the duplicate-address state of one owned address on one interface. A speaker may
// guard 10,000: the fields are ordered to pack.
type guard struct {
	ip netip.Addr
	t  *guardTiming
	// since is when the phase began; in phaseConflict, when the other station was first seen.
	since time.Time
	// stations are the other stations claiming the address, by hardware address (as a string of
	// its bytes); nil until one does (most addresses are never claimed by another station).
	stations map[string]*station
	// nextProbe is when the next paced probe is due (zero: none; phaseProbing schedules its own),
	// urgent whether it checks a suspicion or a conflict rather than a quiet address.
	nextProbe stamp
	// pending is when the last probe went out while its answers may still arrive (zero: none).
	pending stamp
	// backoff is the next interval between probes while yielding to a host that is not a Herald
	// speaker: it doubles from Recheck up to Interval, as such a host may hold the address for good.
	backoff time.Duration
	// preSent counts the probes sent in phaseProbing.
	preSent int32
	phase   phase
	urgent  bool
	// answering is whether this node answers for the address.
	answering bool
	// kept is whether the last decision in the current conflict was to go on answering.
	kept bool
	// announced is whether this node has answered for the address since it came to own it.
	announced bool
}

// newGuard starts guarding ip, owned from now on. A fresh address (one nobody announced before)
// is probed before it is answered; any other (a takeover) is answered at once and checked after
// FirstCheck, by when an owner that is in fact alive (a split brain) has answered.
func newGuard(ip netip.Addr, fresh bool, now time.Time, t *guardTiming) guard {
	g := guard{ip: ip, t: t, since: now, backoff: t.Recheck}
	if fresh {
		g.phase = phaseProbing
		return g
	}
	g.phase, g.answering, g.announced = phaseClear, true, true
	g.nextProbe = t.clock.stamp(now).add(t.FirstCheck)
	return g
}

// stepResult is what a step asks of the caller.
type stepResult struct {
	// probe: send a probe now (phaseProbing's own schedule, not paced) and call probed.
	probe bool
	// start/stop: the address is to be answered (and announced) again, or no longer.
	start, stop bool
	// defend: announce the address again (a new burst of gratuitous announcements), as this node
	// keeps it against another station whose announcements may have misled the neighbours (RFC 5227
	// section 2.4 (b)), or as the other station has gone.
	defend bool
}

// saw records that another station, with hardware address mac, claimed the address at now.
// The caller calls step next.
func (g *guard) saw(now time.Time, mac string) {
	st := g.stations[mac]
	if st == nil {
		if g.stations == nil {
			g.stations = map[string]*station{}
		}
		st = &station{}
		g.stations[mac] = st
	}
	st.last, st.misses = g.t.clock.stamp(now), 0
}

// probed records that a probe for the address went out at now and schedules the next one. who
// names the Herald node with a hardware address, "" for any other host.
func (g *guard) probed(now time.Time, who func(mac string) string) {
	g.settle()
	n := g.t.clock.stamp(now)
	g.pending = n
	switch g.phase {
	case phaseProbing:
		g.preSent++
		g.nextProbe = 0
	case phaseClear:
		g.nextProbe, g.urgent = n.add(g.t.Interval), false
	case phaseSuspect:
		g.nextProbe, g.urgent = n.add(g.t.Recheck), true
	case phaseConflict:
		d := g.t.Recheck
		if !g.answering && slices.Contains(g.nodes(who), "") {
			d = g.backoff
			g.backoff = min(2*g.backoff, max(g.t.Interval, g.t.Recheck))
		}
		g.nextProbe, g.urgent = n.add(d), true
	}
}

// settle closes the reply window of the last probe: every station that did not claim the address
// since counts one miss, and is forgotten after missLimit of them. Stations seen while probing
// before the first announcement are never forgotten: any answer then means the address is taken.
func (g *guard) settle() {
	if g.pending == 0 {
		return
	}
	if g.phase != phaseProbing {
		for mac, st := range g.stations {
			if st.last < g.pending {
				if st.misses++; st.misses >= missLimit {
					delete(g.stations, mac)
				}
			}
		}
	}
	g.pending = 0
}

// step moves the guard on to now: it closes a reply window that is over, ends probing, confirms or
// drops a suspicion, settles a conflict with keeps, or ends it. who names the Herald node with a
// hardware address, "" for any other host; self is this node.
func (g *guard) step(now time.Time, self string, who func(mac string) string) stepResult {
	var out stepResult
	n := g.t.clock.stamp(now)
	if g.pending != 0 && n >= g.pending.add(g.t.ReplyWait) {
		g.settle()
	}
	switch g.phase {
	case phaseProbing:
		if int(g.preSent) < g.t.NewProbes && n >= g.preProbeAt() {
			out.probe = true
		}
		if now.Before(g.since.Add(g.t.NewWait)) {
			break
		}
		out.probe = false
		if len(g.stations) == 0 {
			g.clear(now, &out)
			break
		}
		g.phase, g.since = phaseConflict, now
		g.nextProbe, g.urgent = n.add(g.t.Recheck), true
		g.decide(self, who, &out)
	case phaseClear:
		if len(g.stations) > 0 {
			g.phase, g.since = phaseSuspect, now
			g.nextProbe, g.urgent = n.add(g.t.Confirm), true
		}
	case phaseSuspect:
		if len(g.stations) == 0 {
			g.clear(now, &out)
			break
		}
		for _, st := range g.stations {
			if st.last >= g.t.clock.stamp(g.since).add(g.t.Confirm) {
				g.phase = phaseConflict
				g.decide(self, who, &out)
				break
			}
		}
	case phaseConflict:
		if len(g.stations) == 0 {
			g.clear(now, &out)
			break
		}
		g.decide(self, who, &out)
	}
	return out
}

// clear ends probing, a suspicion or a conflict: the address is answered again.
func (g *guard) clear(now time.Time, out *stepResult) {
	if g.answering && (g.phase == phaseSuspect || g.phase == phaseConflict) {
		out.defend = true
	}
	g.phase, g.since, g.kept = phaseClear, now, false
	clear(g.stations)
	g.nextProbe, g.urgent = g.t.clock.stamp(now).add(g.t.Interval), false
	g.backoff = g.t.Recheck
	if !g.answering {
		g.answering, g.announced = true, true
		out.start = true
	}
}

// decide applies keeps to the stations claiming the address.
func (g *guard) decide(self string, who func(string) string, out *stepResult) {
	keep := keeps(g.ip, self, g.nodes(who))
	switch {
	case keep && !g.answering:
		g.answering, g.announced = true, true
		out.start = true
	case keep && !g.kept:
		out.defend = true
	case !keep && g.answering:
		g.answering = false
		out.stop = true
	}
	g.kept = keep
}

// nodes names the Herald node of each station claiming the address ("" for other hosts), in the
// order of their hardware addresses.
func (g *guard) nodes(who func(string) string) []string {
	macs := make([]string, 0, len(g.stations))
	for mac := range g.stations {
		macs = append(macs, mac)
	}
	slices.Sort(macs)
	out := make([]string, len(macs))
	for i, mac := range macs {
		out[i] = who(mac)
	}
	return out
}

// preProbeAt is when the next probe before the first announcement is due: NewProbes of them,
// spread evenly over NewWait.
func (g *guard) preProbeAt() stamp {
	return g.t.clock.stamp(g.since).add(time.Duration(g.preSent) * g.t.NewWait / time.Duration(max(g.t.NewProbes, 1)))
}

// evalAt is when step has something to do by itself (zero: nothing until a claim or a probe).
func (g *guard) evalAt() stamp {
	var at stamp
	earliest := func(t stamp) {
		if at == 0 || t < at {
			at = t
		}
	}
	if g.pending != 0 {
		earliest(g.pending.add(g.t.ReplyWait))
	}
	if g.phase == phaseProbing {
		if int(g.preSent) < g.t.NewProbes {
			earliest(g.preProbeAt())
		}
		earliest(g.t.clock.stamp(g.since).add(g.t.NewWait))
	}
	return at
}

// inConflict reports whether the guard is in a confirmed conflict.
func (g *guard) inConflict() bool { return g.phase == phaseConflict }

// signature summarises what a report shows of the guard, to tell when it changes.
func (g *guard) signature(who func(string) string) string {
	if g.phase != phaseConflict {
		return ""
	}
	var b strings.Builder
	if g.answering {
		b.WriteString("kept")
	} else {
		b.WriteString("yielded")
	}
	macs := make([]string, 0, len(g.stations))
	for mac := range g.stations {
		macs = append(macs, mac)
	}
	slices.Sort(macs)
	for _, mac := range macs {
		b.WriteString("|" + mac + "=" + who(mac))
	}
	return b.String()
}

// keeps is the rule that settles a conflict over ip: whether self goes on answering for it while
// the stations of others (Herald node names; "" for a host that is not a Herald speaker) claim it
// too. Herald never fights a host that is not a Herald speaker: it yields to it. Between Herald
// speakers, both sides apply the same rule, election.Owner over the two names, so exactly one of
// them goes on answering; and since rendezvous weights order all nodes the same way for ip, the
// node the full cluster would elect among them wins every pairwise contest.
func keeps(ip netip.Addr, self string, others []string) bool {
	for _, n := range others {
		switch n {
		case "":
			return false
		case self:
			continue
		}
		if w, _ := election.Owner(ip, []string{self, n}); w != self {
			return false
		}
	}
	return true
}
