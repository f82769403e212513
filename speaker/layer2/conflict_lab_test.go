package layer2

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/speaker/election"
)

// conflictAnnouncerIn runs an Announcer with duplicate address detection for node, its sockets
// opened inside ns.
func conflictAnnouncerIn(t *testing.T, ns, node string) *Announcer {
	t.Helper()
	return startAnnouncer(t, Config{
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", node),
		Dial:      dialIn(ns),
		Conflicts: &ConflictConfig{Node: node},
	})
}

// waitConflicts polls a.Conflicts until ok accepts them, and returns the last ones seen.
func waitConflicts(t *testing.T, a *Announcer, within time.Duration, ok func([]Conflict) bool) ([]Conflict, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c := a.Conflicts()
		if ok(c) {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		<-tick.C
	}
}

// arpingMACs sends count ARP requests for ip from ns and returns the MAC of every reply.
func arpingMACs(t *testing.T, l *testLab, ns string, ip netip.Addr, count string) []string {
	t.Helper()
	out, _ := l.Exec(ns, "arping", "-c", count, "-w", "10", "-I", "eth0", ip.String())
	var macs []string
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "["); i >= 0 && strings.Contains(line, "reply from") {
			if j := strings.Index(line[i:], "]"); j > 0 {
				macs = append(macs, strings.ToLower(line[i+1:i+j]))
			}
		}
	}
	return macs
}

// TestLabForeignHostKeepsItsAddress: a host on the segment already has the pool address when a
// node comes to own it for the first time. The probe before the first announcement finds it: the
// node reports the conflict and never answers nor announces the address, over IPv4 and IPv6, and
// announces it once the host has given it up.
func TestLabForeignHostKeepsItsAddress(t *testing.T) {
	l, node1, _, client := twoNodes(t)
	squatter := l.host(t, "squatter", "eth0", "br0", labV4.String()+"/24", labV6.String()+"/64")
	cp := captureIn(t, client.ns, "eth0")
	a := conflictAnnouncerIn(t, node1.ns, "node1")
	setOwnedFresh := map[netip.Addr][]string{labV4: {"eth0"}, labV6: {"eth0"}}
	if err := a.SetOwnedFresh(setOwnedFresh, map[netip.Addr]bool{labV4: true, labV6: true}); err != nil {
		t.Fatal(err)
	}
	got, ok := waitConflicts(t, a, 3*time.Second, func(c []Conflict) bool { return len(c) == 2 })
	if !ok {
		t.Fatalf("Conflicts() = %+v, want one per family with the squatter's %s", got, squatter.mac)
	}
	for _, c := range got {
		if c.MAC.String() != squatter.mac.String() || c.Node != "" || c.Answering || !c.NeverAnnounced || c.Interface != "eth0" {
			t.Errorf("conflict %+v: want %s not announced because of %s", c, c.IP, squatter.mac)
		}
	}
	// The client's requests get the squatter's answers only.
	for _, m := range arpingMACs(t, l, client.ns, labV4, "3") {
		if m != squatter.mac.String() {
			t.Errorf("ARP reply for %s from %s: want only the squatter %s", labV4, m, squatter.mac)
		}
	}
	_, _ = l.Exec(client.ns, "ping", "-6", "-c", "1", "-W", "1", labV6.String())
	if line, ok := neighbour(t, l, client.ns, labV6, squatter.mac, 2*time.Second); !ok {
		t.Errorf("client's neighbour entry for %s = %q, want the squatter's %s", labV6, line, squatter.mac)
	}
	for _, f := range cp.collect(200*time.Millisecond, 0, func(b []byte) bool {
		if f, p := arpOf(b); p != nil {
			return p.SenderIP == labV4 && f.Source.String() == node1.mac.String()
		}
		return isNA(labV6, node1.mac, false, allNodes)(b) || isNA(labV6, node1.mac, true, netip.Addr{})(b)
	}) {
		t.Errorf("node1 announced or answered an address the squatter has: % x", f[:min(len(f), 64)])
	}

	// The squatter gives the addresses up: node1 announces them after two unanswered checks.
	for _, a := range []string{labV4.String() + "/24", labV6.String() + "/64"} {
		if _, err := l.Exec(squatter.ns, "ip", "addr", "del", a, "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := waitConflicts(t, a, 15*time.Second, func(c []Conflict) bool { return len(c) == 0 }); !ok {
		t.Fatalf("Conflicts() = %+v after the squatter left, want none", got)
	}
	if macs := arpingMACs(t, l, client.ns, labV4, "2"); len(macs) == 0 || slices.ContainsFunc(macs, func(m string) bool { return m != node1.mac.String() }) {
		t.Errorf("ARP replies for %s from %v after the squatter left: want node1's %s only", labV4, macs, node1.mac)
	}
}

// TestLabTwoAnnouncersOneKeeps: two nodes answer for one address (each believes it owns it: a
// split brain), each knowing the other's MAC as a Herald speaker's. Within seconds exactly one
// answers, the one the rule picks, and both report the conflict; the client sees one MAC only.
func TestLabTwoAnnouncersOneKeeps(t *testing.T) {
	l, node1, node2, client := twoNodes(t)
	a1, a2 := conflictAnnouncerIn(t, node1.ns, "node1"), conflictAnnouncerIn(t, node2.ns, "node2")
	peers := map[string]string{node1.mac.String(): "node1", node2.mac.String(): "node2"}
	a1.SetPeerMACs(peers)
	a2.SetPeerMACs(peers)
	owned := map[netip.Addr][]string{labV4: {"eth0"}}
	setOwned(t, a1, owned)
	setOwned(t, a2, owned)

	win, _ := election.Owner(labV4, []string{"node1", "node2"})
	winner, loser, winMAC := a1, a2, node1.mac
	if win == "node2" {
		winner, loser, winMAC = a2, a1, node2.mac
	}
	got, ok := waitConflicts(t, loser, 5*time.Second, func(c []Conflict) bool { return len(c) == 1 && !c[0].Answering })
	if !ok {
		t.Fatalf("loser's Conflicts() = %+v, want it yielded to %s", got, win)
	}
	if got[0].Node != win || got[0].MAC.String() != winMAC.String() {
		t.Errorf("loser's conflict %+v: want one with %s (%s)", got[0], win, winMAC)
	}
	// The winner's conflict ends once the loser is silent.
	if got, ok := waitConflicts(t, winner, 5*time.Second, func(c []Conflict) bool { return len(c) == 0 }); !ok {
		t.Errorf("winner's Conflicts() = %+v, want none once the loser yielded", got)
	}
	// For a while: every request answered once, by the winner.
	macs := arpingMACs(t, l, client.ns, labV4, "5")
	if len(macs) != 5 || slices.ContainsFunc(macs, func(m string) bool { return m != winMAC.String() }) {
		t.Errorf("ARP replies to 5 requests for %s: %v; want 5, all from %s (%s)", labV4, macs, win, winMAC)
	}
	_, _ = l.Exec(client.ns, "ping", "-c", "1", "-W", "1", labV4.String())
	if line, ok := neighbour(t, l, client.ns, labV4, winMAC, 2*time.Second); !ok {
		t.Errorf("client's neighbour entry for %s = %q, want %s's %s", labV4, line, win, winMAC)
	}
	// The loser still yields (the winner answers its checks).
	if c := loser.Conflicts(); len(c) != 1 || c[0].Answering {
		t.Errorf("loser's Conflicts() = %+v, want still yielded", c)
	}
}
