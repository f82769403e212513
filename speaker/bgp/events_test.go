package bgp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v4/api"
)

func TestExplain(t *testing.T) {
	p := Peer{Name: "tor", PeerASN: 64500, MaxPrefixes: 50}
	ev := func(s State, reason api.PeerState_DisconnectReason, msg string) peerEvent {
		return peerEvent{state: s, reason: reason, message: msg}
	}
	for _, tc := range []struct {
		name    string
		prev    State
		ev      peerEvent
		want    string
		changes bool
	}{
		{"established clears", StateOpenConfirm, ev(StateEstablished, 0, ""), "", true},
		{"connecting says nothing new", StateIdle, ev(StateActive, api.PeerState_DISCONNECT_REASON_IDLE_TIMER_EXPIRED, "idle-hold-timer-expired"), "", false},
		{"notification received, with code and subcode", StateEstablished,
			ev(StateIdle, api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED, "notification-received code 6(cease) subcode 2(administrative shutdown)"),
			"session went down: the peer sent a NOTIFICATION: code 6(cease) subcode 2(administrative shutdown)", true},
		{"notification sent", StateEstablished,
			ev(StateIdle, api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT, "notification-sent code 4(hold timer expired) subcode 0(undefined)"),
			"session went down: the speaker sent a NOTIFICATION: code 4(hold timer expired) subcode 0(undefined)", true},
		{"hold timer", StateEstablished, ev(StateIdle, api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED, "hold-timer-expired"),
			"session went down: hold timer expired: nothing came from the peer within the hold time (it stopped, or the path to it is broken)", true},
		{"connection closed", StateEstablished, ev(StateIdle, api.PeerState_DISCONNECT_REASON_READ_FAILED, "read-failed"),
			"session went down: the TCP connection was closed or reset by the peer", true},
		{"graceful restart", StateEstablished, ev(StateIdle, api.PeerState_DISCONNECT_REASON_GRACEFUL_RESTART, "graceful-restart"),
			"session went down: the TCP connection failed; the peer keeps the routes for the graceful restart time", true},
		{"OPEN refused", StateOpenConfirm, ev(StateIdle, api.PeerState_DISCONNECT_REASON_BAD_PEER_AS, "bad-peer-as"),
			"session failed in OpenConfirm: the peer's OPEN names another AS than peerASN 64500", true},
		{"unknown reason", StateEstablished, ev(StateIdle, api.PeerState_DISCONNECT_REASON_UNSPECIFIED, ""),
			"session went down: no reason given", true},
		{"prefix limit", StateEstablished, peerEvent{state: StateIdle, admin: api.PeerState_ADMIN_STATE_PFX_CT, reason: api.PeerState_DISCONNECT_REASON_READ_FAILED},
			"the peer sent more than 50 prefixes of one address family (maxPrefixes): session closed with a Cease NOTIFICATION (maximum number of prefixes reached); it opens again in 1m0s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changes := explain(tc.prev, tc.ev, p, time.Minute)
			if got != tc.want || changes != tc.changes {
				t.Errorf("explain = %q, %v; want %q, %v", got, changes, tc.want, tc.changes)
			}
		})
	}
}

func TestDescribeConnectError(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name     string
		err      error
		password bool
		want     string
	}{
		{"timeout with password", timeout, true, "TCP MD5 password mismatch"},
		{"timeout without password", timeout, false, "it may expect a TCP MD5 password"},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false, "nothing listens on the peer's BGP port"},
		{"no route", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, false, "no route to the peer"},
		{"other", errors.New("boom"), false, "no TCP connection: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeConnectError(tc.err, tc.password); !strings.Contains(got, tc.want) || !strings.HasPrefix(got, "no TCP connection: ") {
				t.Errorf("describeConnectError = %q, want it to say %q", got, tc.want)
			}
		})
	}
}

// TestCheckConnect: the connection check finds a closed port (refused), a listening one, and a
// TCP MD5 key the listener does not expect (the kernel drops the signed SYNs: no answer), on the
// loopback address.
func TestCheckConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	open := uint16(l.Addr().(*net.TCPAddr).Port)
	p := Peer{Name: "lo", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("127.0.0.1")}
	ctx := context.Background()
	p.Port = 1
	if got := checkConnect(ctx, p, time.Second); !strings.Contains(got, "connection refused") {
		t.Errorf("closed port: %q, want connection refused", got)
	}
	p.Port = open
	if got := checkConnect(ctx, p, time.Second); got != connectOK {
		t.Errorf("listening port: %q, want %q", got, connectOK)
	}
	p.Password = "secret"
	if got := checkConnect(ctx, p, 500*time.Millisecond); !strings.Contains(got, "TCP MD5 password mismatch") {
		t.Errorf("listening port without the MD5 key: %q, want no answer and the hint", got)
	}
}

// TestGoBGPLogsAtDebug: GoBGP's records reach the speaker's logger at Debug whatever their level,
// and not at all when the logger is at Info.
func TestGoBGPLogsAtDebug(t *testing.T) {
	var b bytes.Buffer
	debug := newGoBGPLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	debug.With("Topic", "Peer").Warn("hold timer expired", "Key", "198.51.100.1")
	if got := b.String(); !strings.Contains(got, `level=DEBUG msg="gobgp: hold timer expired" Topic=Peer Key=198.51.100.1`) {
		t.Errorf("logged %q", got)
	}
	b.Reset()
	info := newGoBGPLogger(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	info.Error("failed to connect")
	if b.Len() != 0 {
		t.Errorf("logged %q at Info level, want nothing", b.String())
	}
}

func TestServerPolicies(t *testing.T) {
	v4 := Peer{Name: "v4", MyASN: 64512, PeerASN: 64500, Address: netip.MustParseAddr("198.51.100.1")}
	ibgp6 := Peer{Name: "v6", MyASN: 64512, PeerASN: 64512, Address: netip.MustParseAddr("2001:db8::1")}
	n4, n6 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")
	req := serverPolicies([]exportPeer{
		{peer: ibgp6, routes: table{
			pfx("198.51.100.100/32"): {localPref: u32(0)},
			pfx("2001:db8:5::1/128"): {communities: []uint32{64512<<16 | 1}},
			pfx("2001:db8:5::2/128"): {communities: []uint32{64512<<16 | 1}},
		}},
		{peer: v4, routes: table{
			pfx("198.51.100.100/32"): {communities: []uint32{64512<<16 | 1, 65535<<16 | 65281}, large: [][3]uint32{{64512, 1, 2}}, localPref: u32(300)},
			pfx("2001:db8:5::1/128"): {},
		}},
		{peer: Peer{Name: "none", Address: netip.MustParseAddr("198.51.100.3")}},
	}, n4, n6)
	var got []string
	for _, d := range req.DefinedSets {
		var items []string
		for _, p := range d.Prefixes {
			items = append(items, fmt.Sprintf("%s %d-%d", p.IpPrefix, p.MaskLengthMin, p.MaskLengthMax))
		}
		got = append(got, fmt.Sprintf("set %s: %s%s", d.Name, strings.Join(d.List, ","), strings.Join(items, ",")))
	}
	for _, p := range req.Policies {
		for _, s := range p.Statements {
			c, a := s.Conditions, s.Actions
			line := fmt.Sprintf("%s/%s: neighbors %s prefixes %s route-type %v -> %v", p.Name, s.Name, c.GetNeighborSet().GetName(), c.GetPrefixSet().GetName(), c.GetRouteType(), a.GetRouteAction())
			if a.Community != nil {
				line += fmt.Sprintf(" communities %v %v", a.Community.Type, a.Community.Communities)
			}
			if a.LargeCommunity != nil {
				line += fmt.Sprintf(" large %v %v", a.LargeCommunity.Type, a.LargeCommunity.Communities)
			}
			if a.LocalPref != nil {
				line += fmt.Sprintf(" localpref %d", a.LocalPref.Value)
			}
			if a.Nexthop != nil {
				line += " nexthop " + a.Nexthop.Address
			}
			got = append(got, line)
		}
	}
	want := []string{
		// Sorted by address: 198.51.100.1 (v4), 198.51.100.3 (no routes), 2001:db8::1 (v6).
		"set n0: 198.51.100.1",
		"set n0-0: 198.51.100.100/32 32-32",
		"set n0-1: 2001:db8:5::1/128 128-128",
		"set n2: 2001:db8::1",
		"set n2-0: 198.51.100.100/32 32-32",
		"set n2-1: 2001:db8:5::1/128 128-128,2001:db8:5::2/128 128-128",
		"herald-import-local-only/accept-local: neighbors  prefixes  route-type ROUTE_TYPE_LOCAL -> ROUTE_ACTION_ACCEPT",
		// eBGP: no LOCAL_PREF; the IPv6 route gets the node's IPv6 address.
		"herald-export/n0-0: neighbors n0 prefixes n0-0 route-type ROUTE_TYPE_UNSPECIFIED -> ROUTE_ACTION_ACCEPT communities TYPE_REPLACE [64512:1 65535:65281] large TYPE_REPLACE [64512:1:2]",
		"herald-export/n0-1: neighbors n0 prefixes n0-1 route-type ROUTE_TYPE_UNSPECIFIED -> ROUTE_ACTION_ACCEPT nexthop 2001:db8::11",
		// iBGP: LOCAL_PREF 0 is the RIB path's own (no action), 100 by default; the IPv4 route
		// gets the node's IPv4 address.
		"herald-export/n2-0: neighbors n2 prefixes n2-0 route-type ROUTE_TYPE_UNSPECIFIED -> ROUTE_ACTION_ACCEPT nexthop 198.51.100.11",
		"herald-export/n2-1: neighbors n2 prefixes n2-1 route-type ROUTE_TYPE_UNSPECIFIED -> ROUTE_ACTION_ACCEPT communities TYPE_REPLACE [64512:1] localpref 100",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	if !policiesEqual(req, req) || policiesEqual(req, serverPolicies([]exportPeer{{peer: v4}, {peer: ibgp6}}, n4, n6)) {
		t.Errorf("policiesEqual does not tell policies apart")
	}
}
