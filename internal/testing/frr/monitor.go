package frr

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// KernelRouteEvent is one change of a route in the router's kernel table, as `ip monitor route`
// reports it: the route's next hops after the change, none when it was deleted.
type KernelRouteEvent struct {
	// At is when `ip monitor` received the kernel's notification.
	At     time.Time
	Prefix netip.Prefix
	Hops   []netip.Addr
	// Deleted is true when the route was removed.
	Deleted bool
}

// RouteWatch follows the router's kernel routes as they change, without polling.
type RouteWatch struct {
	cmd    *exec.Cmd
	events chan KernelRouteEvent
	done   chan struct{}
	once   sync.Once
}

// WatchKernelRoutes starts following the kernel routes of the router's namespace. Events come on
// Events until ctx ends or Stop is called; call Stop when done. The routes and nexthop objects
// that exist when the watch starts are read first, so that later changes of them are understood;
// they are not events.
func (r *Router) WatchKernelRoutes(ctx context.Context) (*RouteWatch, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, "ip", "-ts", "monitor", "route", "nexthop")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ip monitor in %s: %w", r.ns, err)
	}
	var seed strings.Builder
	for _, args := range [][]string{{"nexthop", "show"}, {"-4", "route", "show"}, {"-6", "route", "show"}} {
		b, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", r.ns, "ip"}, args...)...).Output()
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("reading the kernel routes of %s: ip %s: %w", r.ns, strings.Join(args, " "), err)
		}
		for line := range strings.Lines(string(b)) {
			if !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
				seed.WriteString("[" + seedTime.Format("2006-01-02T15:04:05.000000") + "] ")
			}
			seed.WriteString(line)
		}
	}
	w := &RouteWatch{cmd: cmd, events: make(chan KernelRouteEvent, 1024), done: make(chan struct{})}
	go func() {
		defer close(w.events)
		_ = parseRouteMonitor(io.MultiReader(strings.NewReader(seed.String()), out), func(ev KernelRouteEvent) {
			if ev.At.Equal(seedTime) {
				return
			}
			select {
			case w.events <- ev:
			case <-w.done:
			}
		})
	}()
	return w, nil
}

// seedTime marks the lines of the state read when a watch starts.
var seedTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.Local)

// Events delivers the route changes in the order the kernel made them; it is closed when the
// watch ends.
func (w *RouteWatch) Events() <-chan KernelRouteEvent { return w.events }

// Stop ends the watch.
func (w *RouteWatch) Stop() {
	w.once.Do(func() {
		close(w.done)
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	})
}

// parseRouteMonitor reads the output of `ip -ts monitor route nexthop` and calls emit for every
// route event it understands. A route is a line "[timestamp] [Deleted ]PREFIX [nhid N] [via ADDR]
// ...", followed, for a multipath route, by indented lines "nexthop via ADDR ...". A route that
// uses a nexthop object ("nhid N") without listing its next hops gets them from the nexthop
// objects seen before ("id N via ADDR", "id N group A/B"), and a change of a nexthop object is
// an event of every route that uses it: zebra may move a route to other next hops by changing
// the nexthop group it uses.
func parseRouteMonitor(r io.Reader, emit func(KernelRouteEvent)) error {
	// The indented lines of a route come in the same write as its first line, so a route is
	// complete when the next line starts another event or no line follows for a moment.
	const idle = 2 * time.Millisecond
	lines := make(chan string)
	var scanErr error
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		scanErr = sc.Err()
	}()
	m := routeMonitor{single: map[string][]netip.Addr{}, groups: map[string][]string{}, routeNH: map[netip.Prefix]string{}}
	var cur *KernelRouteEvent
	var curNH string
	flush := func() {
		if cur == nil {
			return
		}
		switch {
		case cur.Deleted:
			delete(m.routeNH, cur.Prefix)
		case curNH != "":
			m.routeNH[cur.Prefix] = curNH
			if len(cur.Hops) == 0 {
				cur.Hops = m.resolve(curNH)
			}
		default:
			delete(m.routeNH, cur.Prefix)
		}
		slices.SortFunc(cur.Hops, netip.Addr.Compare)
		emit(*cur)
		cur, curNH = nil, ""
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var line string
		var ok bool
		if cur == nil {
			line, ok = <-lines
		} else {
			timer.Reset(idle)
			select {
			case line, ok = <-lines:
			case <-timer.C:
				flush()
				continue
			}
		}
		if !ok {
			flush()
			return scanErr
		}
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, " ") {
			if cur != nil && !cur.Deleted {
				cur.Hops = append(cur.Hops, viaAddrs(strings.Fields(line))...)
			}
			continue
		}
		flush()
		at, f, ok := splitMonitorLine(line)
		if !ok {
			continue
		}
		if len(f) >= 2 && f[0] == "id" || len(f) >= 3 && f[0] == "Deleted" && f[1] == "id" {
			for _, ev := range m.nexthop(at, f) {
				emit(ev)
			}
			continue
		}
		if ev, nh, ok := parseRouteFields(at, f); ok {
			cur, curNH = &ev, nh
		}
	}
}

// routeMonitor is what parseRouteMonitor remembers of the nexthop objects and of the routes that
// use them.
type routeMonitor struct {
	single  map[string][]netip.Addr // nexthop id -> its next hop
	groups  map[string][]string     // group id -> member ids
	routeNH map[netip.Prefix]string // route -> the nexthop id it uses
}

// resolve returns the next hops of nexthop object id, sorted.
func (m *routeMonitor) resolve(id string) []netip.Addr {
	var out []netip.Addr
	if members, ok := m.groups[id]; ok {
		for _, member := range members {
			out = append(out, m.single[member]...)
		}
	} else {
		out = append(out, m.single[id]...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// nexthop records a nexthop object line and returns the events of the routes it changes.
func (m *routeMonitor) nexthop(at time.Time, f []string) []KernelRouteEvent {
	deleted := f[0] == "Deleted"
	if deleted {
		f = f[1:]
	}
	id := f[1]
	before := map[netip.Prefix][]netip.Addr{}
	for p, nh := range m.routeNH {
		before[p] = m.resolve(nh)
	}
	delete(m.single, id)
	delete(m.groups, id)
	if !deleted {
		for i := 2; i+1 < len(f); i++ {
			if f[i] == "group" {
				var members []string
				for _, g := range strings.Split(f[i+1], "/") {
					member, _, _ := strings.Cut(g, ",") // "id,weight"
					members = append(members, member)
				}
				m.groups[id] = members
			}
		}
		if _, group := m.groups[id]; !group {
			m.single[id] = viaAddrs(f[2:])
		}
	}
	var out []KernelRouteEvent
	for p, nh := range m.routeNH {
		if hops := m.resolve(nh); !slices.Equal(hops, before[p]) {
			out = append(out, KernelRouteEvent{At: at, Prefix: p, Hops: hops})
		}
	}
	slices.SortFunc(out, func(a, b KernelRouteEvent) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return out
}

// splitMonitorLine splits "[timestamp] fields..." into the time and the fields.
func splitMonitorLine(line string) (time.Time, []string, bool) {
	if !strings.HasPrefix(line, "[") {
		return time.Time{}, nil, false
	}
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return time.Time{}, nil, false
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", line[1:end], time.Local)
	if err != nil {
		return time.Time{}, nil, false
	}
	return at, strings.Fields(line[end+1:]), true
}

// parseRouteFields parses the first line of one route event, without its timestamp, and returns
// the nexthop id the route uses ("" when none).
func parseRouteFields(at time.Time, f []string) (KernelRouteEvent, string, bool) {
	ev := KernelRouteEvent{At: at}
	if len(f) > 0 && f[0] == "Deleted" {
		ev.Deleted = true
		f = f[1:]
	}
	if len(f) == 0 {
		return KernelRouteEvent{}, "", false
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil {
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return KernelRouteEvent{}, "", false // local, broadcast, multicast, unreachable... routes
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	ev.Prefix = p
	nh := ""
	for i := 1; i+1 < len(f); i++ {
		if f[i] == "nhid" {
			nh = f[i+1]
		}
	}
	if !ev.Deleted {
		ev.Hops = viaAddrs(f[1:])
	}
	return ev, nh, true
}

// viaAddrs returns the addresses after "via" among fields.
func viaAddrs(f []string) []netip.Addr {
	var out []netip.Addr
	for i := 0; i+1 < len(f); i++ {
		if f[i] != "via" {
			continue
		}
		addr := f[i+1]
		if (addr == "inet" || addr == "inet6") && i+2 < len(f) {
			addr = f[i+2]
		}
		if a, err := netip.ParseAddr(addr); err == nil {
			out = append(out, a)
		}
	}
	return out
}
