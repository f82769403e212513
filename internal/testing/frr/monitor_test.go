package frr

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRouteMonitor(t *testing.T) {
	in := `[2026-12-03T09:40:28.824202] id 11 via 10.9.0.2 dev d0 scope link 
[2026-12-03T09:40:28.834010] 10.8.0.1 nhid 11 via 10.9.0.2 dev d0 proto bgp 
[2026-12-03T09:40:28.836655] 10.8.0.1 nhid 20 proto bgp 
	nexthop via 10.9.0.3 dev d0 weight 1 
	nexthop via 10.9.0.2 dev d0 weight 1 
[2026-12-03T09:40:28.898601] 203.0.113.0/24 nhid 20 via inet6 fe80::1 dev d0 proto bgp 
[2026-12-03T09:40:28.900513] Deleted 10.8.0.1 nhid 20 via 10.9.0.3 dev d0 proto bgp 
[2026-12-03T09:40:30.271751] local fe80::3037:bcff:fe47:1ba2 dev d0 table local proto kernel metric 0 pref medium
[2026-12-03T09:40:30.300000] 2001:db8:3::5 nhid 7 via 2001:db8::11 dev eth0 proto bgp metric 20 pref medium
[2026-12-03T09:40:31.000000] id 31 via 10.9.0.4 dev d0 scope link proto zebra
[2026-12-03T09:40:31.000001] id 32 via 10.9.0.5 dev d0 scope link proto zebra
[2026-12-03T09:40:31.000002] id 40 group 31/32 proto zebra
[2026-12-03T09:40:31.000003] 10.8.0.9 nhid 40 proto bgp metric 20
[2026-12-03T09:40:31.500000] id 40 group 32 proto zebra
[2026-12-03T09:40:31.600000] Deleted id 32 via 10.9.0.5 dev d0 scope link proto zebra
`
	at := func(s string) time.Time {
		ts, err := time.ParseInLocation("2006-01-02T15:04:05.000000", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	a := netip.MustParseAddr
	h := netip.MustParsePrefix("10.8.0.1/32")
	want := []KernelRouteEvent{
		{At: at("2026-12-03T09:40:28.834010"), Prefix: h, Hops: []netip.Addr{a("10.9.0.2")}},
		{At: at("2026-12-03T09:40:28.836655"), Prefix: h, Hops: []netip.Addr{a("10.9.0.2"), a("10.9.0.3")}},
		{At: at("2026-12-03T09:40:28.898601"), Prefix: netip.MustParsePrefix("203.0.113.0/24"), Hops: []netip.Addr{a("fe80::1")}},
		{At: at("2026-12-03T09:40:28.900513"), Prefix: h, Deleted: true},
		{At: at("2026-12-03T09:40:30.300000"), Prefix: netip.MustParsePrefix("2001:db8:3::5/128"), Hops: []netip.Addr{a("2001:db8::11")}},
		// A route on a nexthop group that lists no next hops, then changed by its group.
		{At: at("2026-12-03T09:40:31.000003"), Prefix: netip.MustParsePrefix("10.8.0.9/32"), Hops: []netip.Addr{a("10.9.0.4"), a("10.9.0.5")}},
		{At: at("2026-12-03T09:40:31.500000"), Prefix: netip.MustParsePrefix("10.8.0.9/32"), Hops: []netip.Addr{a("10.9.0.5")}},
		{At: at("2026-12-03T09:40:31.600000"), Prefix: netip.MustParsePrefix("10.8.0.9/32")},
	}
	var got []KernelRouteEvent
	if err := parseRouteMonitor(strings.NewReader(in), func(ev KernelRouteEvent) { got = append(got, ev) }); err != nil {
		t.Fatal(err)
	}
	opts := cmp.Options{cmp.Comparer(func(x, y netip.Addr) bool { return x == y }), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// FuzzParseRouteMonitor: any output parses without panicking, and every event has a valid prefix
// and no next hops when deleted.
func FuzzParseRouteMonitor(f *testing.F) {
	f.Add("[2026-12-03T09:40:28.834010] 10.8.0.1 nhid 11 via 10.9.0.2 dev d0 proto bgp\n\tnexthop via 10.9.0.3 dev d0\n")
	f.Add("[2026-12-03T09:40:28.900513] Deleted 10.8.0.1 nhid 20 via 10.9.0.3 dev d0 proto bgp\n")
	f.Add("[x] via\n\tnexthop via\n[")
	f.Fuzz(func(t *testing.T, in string) {
		_ = parseRouteMonitor(strings.NewReader(in), func(ev KernelRouteEvent) {
			if !ev.Prefix.IsValid() || ev.Deleted && len(ev.Hops) > 0 {
				t.Fatalf("bad event %+v", ev)
			}
		})
	})
}
