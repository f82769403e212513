package bgp

// This file gives tests a real BGP router in the test process: a second GoBGP server that
// listens on a loopback address, accepts the speaker's sessions (passive neighbours) and keeps
// what it receives, so tests can read exactly which routes and attributes each session carried.
// Nothing leaves the machine.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	gobgpserver "github.com/osrg/gobgp/v4/pkg/server"
)

// speakerSource is the loopback address the speaker's sessions to test routers come from.
var speakerSource = netip.MustParseAddr("127.0.0.1")

// testRouter is a GoBGP server on a loopback address with the speaker as a passive neighbour.
type testRouter struct {
	addr netip.Addr
	port uint16
	asn  uint32
	srv  *gobgpserver.BgpServer

	mu     sync.Mutex
	states []routerState // every state change of its neighbour, in order
}

// routerState is a state change the router saw, and when.
type routerState struct {
	state gobgp.FSMState
	at    time.Time
}

// newTestRouter starts a router of AS asn on addr (a 127/8 address other than speakerSource)
// whose neighbour is the speaker at speakerSource with AS 64512; it stops when the test ends.
func newTestRouter(t testing.TB, addr netip.Addr, asn uint32) *testRouter {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	r := &testRouter{addr: addr, port: port, asn: asn, srv: gobgpserver.NewBgpServer()}
	go r.srv.Serve()
	ctx := context.Background()
	err = r.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: addr.String(), ListenPort: int32(port), ListenAddresses: []string{addr.String()}}})
	if err != nil {
		r.srv.Stop()
		t.Fatalf("starting test router on %v: %v", addr, err)
	}
	t.Cleanup(r.srv.Stop)
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: speakerSource.String(), PeerAsn: 64512},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: addr.String()},
		Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: familyIPv4, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: familyIPv6, Enabled: true}},
		},
	}
	if err := r.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
		t.Fatalf("adding the speaker as neighbour of test router %v: %v", addr, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	err = r.srv.WatchEvent(wctx, gobgpserver.WatchEventMessageCallbacks{OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
		if ev.Type != apiutil.PEER_EVENT_STATE {
			return
		}
		r.mu.Lock()
		r.states = append(r.states, routerState{state: ev.Peer.State.SessionState, at: at})
		r.mu.Unlock()
	}}, gobgpserver.WatchPeer())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// peer is a Peer of the speaker to this router.
func (r *testRouter) peer(name string) Peer {
	return Peer{Name: name, MyASN: 64512, PeerASN: r.asn, Address: r.addr, Port: r.port, SourceAddress: speakerSource,
		HoldTime: 3 * time.Second, KeepaliveTime: time.Second, ConnectTime: time.Second}
}

// established returns when the router's session to the speaker was last established, and the
// number of times it was.
func (r *testRouter) established() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	n := 0
	for _, s := range r.states {
		if s.state == gobgp.BGP_FSM_ESTABLISHED {
			last = s.at
			n++
		}
	}
	return last, n
}

// history is every state change the router saw, with the time of each, for failure messages.
func (r *testRouter) history() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.states {
		fmt.Fprintf(&b, " %v@%s", s.state, s.at.Format("15:04:05.000"))
	}
	return b.String()
}

// waitEstablished polls until the router has seen its session to the speaker established at
// least once, or fails the test after 20 s, and returns what established returns then. The
// router's state events reach its watcher asynchronously: routes can be in its table before
// the event that the session came up is delivered.
func (r *testRouter) waitEstablished(t testing.TB) (time.Time, int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if up, n := r.established(); n > 0 {
			return up, n
		}
		if time.Now().After(deadline) {
			t.Fatalf("test router %v never saw its session to the speaker established", r.addr)
		}
		<-tick.C
	}
}

// received returns what the router holds from the speaker: each prefix with its next hop and
// attributes, as readable text.
func (r *testRouter) received(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC} {
		err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: speakerSource.String(), Family: f},
			func(prefix gobgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					out[prefix.String()] = describeAttrs(p.Attrs)
				}
			})
		if err != nil {
			t.Fatalf("listing the routes of test router %v: %v", r.addr, err)
		}
	}
	return out
}

// describeAttrs prints the attributes Herald sets: next hop, communities, large communities and
// local preference, in that order.
func describeAttrs(as []gobgp.PathAttributeInterface) string {
	var nh, comms, large, lp string
	for _, a := range as {
		switch a := a.(type) {
		case *gobgp.PathAttributeNextHop:
			nh = a.Value.String()
		case *gobgp.PathAttributeMpReachNLRI:
			nh = a.Nexthop.String()
		case *gobgp.PathAttributeCommunities:
			var cs []string
			for _, c := range a.Value {
				cs = append(cs, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
			comms = " communities " + strings.Join(cs, ",")
		case *gobgp.PathAttributeLargeCommunities:
			var cs []string
			for _, c := range a.Values {
				cs = append(cs, c.String())
			}
			slices.Sort(cs)
			large = " large " + strings.Join(cs, ",")
		case *gobgp.PathAttributeLocalPref:
			lp = fmt.Sprintf(" localpref %d", a.Value)
		}
	}
	return "via " + nh + comms + large + lp
}

// waitReceived polls until the router holds exactly want, or fails the test after 20 s.
func (r *testRouter) waitReceived(t testing.TB, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := r.received(t)
		if mapsEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("test router %v holds %v, want %v", r.addr, got, want)
		}
		<-tick.C
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
