package allocator

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func cidr(s string) Range { return PrefixRange(netip.MustParsePrefix(s)) }

func span(first, last string) Range {
	return Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}

func pool(name string, ranges ...Range) Pool {
	return Pool{Name: name, Ranges: ranges, AutoAssign: true}
}

// labelIs returns a Match that selects Services with label k=v.
func labelIs(k, v string) func(*Service) bool {
	return func(s *Service) bool { return s.Labels[k] == v }
}

func tcp(ports ...int32) []Port {
	var out []Port
	for _, p := range ports {
		out = append(out, Port{Port: p, Protocol: "TCP"})
	}
	return out
}

// fmtAssigned renders assignments as "ip@pool", released ones as "svc ip@pool".
func fmtAssigned(as []Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s@%s", a.IP, a.Pool))
	}
	return out
}

func fmtReleased(as []Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s@%s", a.Service, a.IP, a.Pool))
	}
	return out
}

// step is one call in a scenario, with what it must return.
type step struct {
	op      string // assign (default), reserve, release, pools
	svc     Service
	ips     []netip.Addr // reserve
	pools   []Pool       // pools
	want    []string     // Result.Assigned / Assignments after release, as "ip@pool"
	rel     []string     // released, as "svc ip@pool"
	missing []Family
	err     error  // sentinel the error must wrap, nil for no error
	errMsg  string // substring the error message must contain
}

func runSteps(t *testing.T, pools []Pool, steps []step) *Allocator {
	t.Helper()
	a, err := New(pools)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for i, s := range steps {
		var res Result
		var err error
		switch s.op {
		case "", "assign":
			res, err = a.Assign(&s.svc)
		case "reserve":
			res, err = a.Reserve(&s.svc, s.ips)
		case "release":
			res.Released = a.Release(s.svc.Key)
		case "pools":
			res.Released, err = a.SetPools(s.pools)
			res.Assigned = a.Assignments(s.svc.Key)
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		checkErr(t, fmt.Sprintf("step %d (%s %s)", i, s.op, s.svc.Key), err, s.err, s.errMsg)
		if s.op != "release" {
			if diff := cmp.Diff(s.want, fmtAssigned(res.Assigned)); diff != "" {
				t.Errorf("step %d (%s %s): assigned (-want +got):\n%s", i, s.op, s.svc.Key, diff)
			}
		}
		if diff := cmp.Diff(s.rel, fmtReleased(res.Released)); diff != "" {
			t.Errorf("step %d (%s %s): released (-want +got):\n%s", i, s.op, s.svc.Key, diff)
		}
		if diff := cmp.Diff(s.missing, res.Missing); diff != "" {
			t.Errorf("step %d (%s %s): missing (-want +got):\n%s", i, s.op, s.svc.Key, diff)
		}
		if err := checkInvariants(a); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return a
}

func checkErr(t *testing.T, what string, err, want error, msg string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: unexpected error: %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: error %v, want one wrapping %v", what, err, want)
	case msg != "" && (err == nil || !strings.Contains(err.Error(), msg)):
		t.Errorf("%s: error %v, want one containing %q", what, err, msg)
	}
}
