package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgpserver "github.com/osrg/gobgp/v4/pkg/server"
)

// serverKey identifies the GoBGP server that carries a session. Sessions of the same local AS
// and router ID share one server; a server has at most one neighbour per address, so a second
// session to an address already taken goes to the next slot.
type serverKey struct {
	asn      uint32
	routerID netip.Addr
	slot     int
}

func (k serverKey) String() string {
	return fmt.Sprintf("AS %d, router ID %v, slot %d", k.asn, k.routerID, k.slot)
}

// server is one GoBGP server and the sessions it carries. Its RIB holds every prefix one of its
// peers is sent, once and without attributes; its export policy gives each peer its own prefixes
// and attributes (serverPolicies).
type server struct {
	key       serverKey
	listen    listen // where it accepts connections (listen.go)
	bgp       *gobgpserver.BgpServer
	stopWatch context.CancelFunc

	// mu guards byAddr, which GoBGP's event callback reads.
	mu     sync.Mutex
	byAddr map[netip.Addr]*session

	// Owned by Speaker.mu.
	sessions map[string]*session
	rib      map[netip.Prefix]bool
	policy   *api.SetPoliciesRequest
}

// startServer starts a GoBGP server for k: its loop, its listener at l (none when l.port is 0),
// the policies, and the watch of its peer events. Stop ends all of it.
func startServer(ctx context.Context, k serverKey, l listen, log *slog.Logger) (*server, error) {
	sv := &server{
		key:      k,
		listen:   l,
		bgp:      gobgpserver.NewBgpServer(gobgpserver.LoggerOption(newGoBGPLogger(log.With("server", k.String())), nil)),
		byAddr:   map[netip.Addr]*session{},
		sessions: map[string]*session{},
		rib:      map[netip.Prefix]bool{},
	}
	go sv.bgp.Serve()
	err := sv.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: toAPIGlobal(k, l)})
	if err != nil {
		sv.bgp.Stop()
		return nil, fmt.Errorf("starting the GoBGP server for %v: %w", k, err)
	}
	sv.policy = serverPolicies(nil, netip.Addr{}, netip.Addr{})
	err = sv.bgp.SetPolicies(ctx, sv.policy)
	for _, a := range policyAssignments() {
		if err == nil {
			err = sv.bgp.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a})
		}
	}
	if err != nil {
		sv.bgp.Stop()
		return nil, fmt.Errorf("setting the policies of the GoBGP server for %v: %w", k, err)
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sv.stopWatch = cancel
	err = sv.bgp.WatchEvent(wctx, gobgpserver.WatchEventMessageCallbacks{OnPeerUpdate: sv.onPeerEvent}, gobgpserver.WatchPeer())
	if err != nil {
		cancel()
		sv.bgp.Stop()
		return nil, fmt.Errorf("watching the peers of the GoBGP server for %v: %w", k, err)
	}
	return sv, nil
}

// stop ends the server: its sessions (with a Cease "Peer De-configured" for any still up), its
// loop and goroutines, and the event watch.
func (sv *server) stop() {
	sv.bgp.Stop()
	sv.stopWatch()
}

// onPeerEvent hands GoBGP's state events to the session of the neighbour. It runs on GoBGP's
// watcher goroutine; GoBGP queues events without bound, so it never holds GoBGP up.
func (sv *server) onPeerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	sv.mu.Lock()
	ss := sv.byAddr[ev.Peer.State.NeighborAddress]
	sv.mu.Unlock()
	if ss != nil {
		ss.onEvent(fromAPIEvent(ev, at))
	}
}

func (sv *server) register(ss *session) {
	sv.mu.Lock()
	sv.byAddr[ss.peer.Address.Unmap()] = ss
	sv.mu.Unlock()
	sv.sessions[ss.peer.Name] = ss
}

func (sv *server) unregister(ss *session) {
	sv.mu.Lock()
	if sv.byAddr[ss.peer.Address.Unmap()] == ss {
		delete(sv.byAddr, ss.peer.Address.Unmap())
	}
	sv.mu.Unlock()
	delete(sv.sessions, ss.peer.Name)
}

// hasAddress reports whether the server has a session to addr (zones ignored: GoBGP's policies
// match neighbours by address alone).
func (sv *server) hasAddress(addr netip.Addr) bool {
	for _, ss := range sv.sessions {
		if ss.peer.Address.Unmap().WithZone("") == addr.Unmap().WithZone("") {
			return true
		}
	}
	return false
}

// apply brings the server's RIB and export policy from what its peers have to want, the tables
// by peer name (each already passed through sendable):
//  1. prefixes no peer wants any more are deleted from the RIB, under the old policy, which
//     withdraws them from exactly the peers that had them;
//  2. the new export policy is set;
//  3. prefixes new to the RIB are added, which sends them to exactly the peers that want them;
//  4. peers whose routes change on prefixes that stay get a soft reset out, which sends them
//     their new attributes and withdraws what the policy no longer gives them.
//
// No session is reset. On success every session's adv is its table (also of a session whose
// neighbour GoBGP does not have yet: it is sent its table when it comes up).
func (sv *server) apply(ctx context.Context, want map[string]table, nodeIPv4, nodeIPv6 netip.Addr) error {
	have := make(map[string]table, len(sv.sessions))
	peers := make([]exportPeer, 0, len(sv.sessions))
	for name, ss := range sv.sessions {
		have[name] = ss.adv
		peers = append(peers, exportPeer{peer: ss.peer, routes: want[name]})
	}
	ch := planRIB(sv.rib, have, want)
	pol := serverPolicies(peers, nodeIPv4, nodeIPv6)
	samePolicy := policiesEqual(pol, sv.policy)
	if ch.empty() && samePolicy {
		return nil
	}
	if len(ch.del) > 0 {
		paths, err := ribPaths(ch.del, true)
		if err == nil {
			err = sv.bgp.DeletePath(apiutil.DeletePathRequest{Paths: paths})
		}
		if err != nil {
			return fmt.Errorf("withdrawing %d prefixes: %w", len(ch.del), err)
		}
		for _, p := range ch.del {
			delete(sv.rib, p)
		}
	}
	if !samePolicy {
		if err := sv.bgp.SetPolicies(ctx, pol); err != nil {
			return fmt.Errorf("setting the export policy: %w", err)
		}
		sv.policy = pol
	}
	if len(ch.add) > 0 {
		paths, err := ribPaths(ch.add, false)
		if err == nil {
			_, err = sv.bgp.AddPath(apiutil.AddPathRequest{Paths: paths})
		}
		if err != nil {
			return fmt.Errorf("advertising %d prefixes: %w", len(ch.add), err)
		}
		for _, p := range ch.add {
			sv.rib[p] = true
		}
	}
	var errs []error
	for _, name := range ch.reset {
		ss := sv.sessions[name]
		if ss == nil || !ss.added {
			// A session being added has the new policy before GoBGP has its neighbour: no
			// reset to send (it would fail, and leave every session's adv behind).
			continue
		}
		err := sv.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: ss.peer.neighborAddress(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT})
		if err != nil {
			errs = append(errs, fmt.Errorf("sending the changed routes to peer %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for name, ss := range sv.sessions {
		ss.adv = want[name]
	}
	return nil
}

func ribPaths(prefixes []netip.Prefix, withdraw bool) ([]*apiutil.Path, error) {
	out := make([]*apiutil.Path, 0, len(prefixes))
	for _, p := range prefixes {
		path, err := ribPath(p, withdraw)
		if err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}

// counters are the numbers Status reads from GoBGP for one session.
type counters struct {
	updatesSent uint64
	advertised  int
}

// counters reads every session's counters, by neighbour address.
func (sv *server) counters(ctx context.Context, advertised bool) (map[netip.Addr]counters, error) {
	out := map[netip.Addr]counters{}
	err := sv.bgp.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: advertised}, func(p *api.Peer) {
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		var c counters
		c.updatesSent = p.GetState().GetMessages().GetSent().GetUpdate()
		for _, af := range p.GetAfiSafis() {
			c.advertised += int(af.GetState().GetAdvertised())
		}
		out[addr.Unmap()] = c
	})
	return out, err
}
