// Package bgp is the speaker's BGP adapter: it keeps BGP sessions to the configured peers and
// advertises to each peer exactly the routes of its table, with their communities, large
// communities and local preference. It embeds GoBGP (github.com/osrg/gobgp/v4) and is the only
// package that imports it (internal/testing/archtest enforces it); no GoBGP type appears in its API.
//
// Design:
//
//   - One GoBGP server per node, or rather per local AS and router ID (Peer.MyASN,
//     Peer.RouterID): sessions are neighbours of it and come and go with AddPeer/DeletePeer. A
//     GoBGP server holds one neighbour per address, so a second session to the same address
//     (another port, another local AS) goes to a second server of the same AS and router ID.
//     A server starts with its first session and stops with its last; Shutdown stops them all.
//     There is no pool of idle servers and nothing is left running (a test counts goroutines).
//     The speaker opens the TCP connection, so peers must accept it (e.g. FRR `bgp listen
//     range`, or static neighbours). GoBGP v4.8.0 waits 1.5-2 s (0.75-1.0 x its constant 2 s
//     minimum connect-retry interval, whatever the neighbour's timers) before its first
//     connection attempt to a new neighbour, so a new session is established about 2 s after
//     SetPeers (TestNewSessionRouteTime reports it). With Config.ListenPort the first server
//     also listens on the node's addresses (listen.go), and a router with the node as a static
//     neighbour opens the session at its next attempt (TestLabListenNewSession); without it the
//     servers never listen (ListenPort -1).
//   - Per-neighbour export policy (export.go): a server's RIB holds each prefix one of its peers
//     is sent, once and without attributes; one global export policy has per-neighbour statements
//     (neighbour set, prefix set of one attribute group) that accept exactly the peer's prefixes
//     and set their attributes; everything else is rejected. GoBGP v4 assigns policies to single
//     neighbours only for route-server clients, which do not prepend their AS, hence the
//     neighbour sets.
//   - The plan decides, the adapter applies: SetRoutes takes one route table per peer (package
//     plan merges several advertisements of a prefix into one route); the adapter checks it
//     (each prefix once per peer) and applies only differences: prefixes leaving a server's RIB
//     are deleted (withdrawn from the peers that had them), the export policy is replaced,
//     prefixes new to the RIB are added (sent to the peers that want them), and peers whose
//     routes changed otherwise get a soft reset out. No route change resets a session.
//   - Diff-based and per peer: SetPeers restarts only the sessions whose Peer changed; a Peer it
//     cannot use (ValidatePeer, or GoBGP refusing it) is skipped and reported in Status
//     (ConfigError) and by the herald_bgp_peer_refused metric, keeping the session of its previous
//     configuration if it had one, and never stops another peer.
//   - Session state from GoBGP's event watch: each server's WatchEvent delivers peer state
//     changes as they happen; Status reports them and Changes signals them, so the speaker's
//     BGPSessionStatus follows the FSM without polling. Why a session is down comes from the same
//     events (NOTIFICATION sent or received with its code and subcode, hold timer expired, the
//     connection closed, the prefix limit). GoBGP reports failed TCP connects in no event, so
//     while a session is not Established the adapter checks the connection itself (diagnose.go):
//     refused, no answer (unreachable, or a TCP MD5 mismatch), no route. GoBGP's own logs go to
//     the injected logger at Debug; nothing reads their text.
//   - Timers are whole seconds and filled in here (hold 90 s, keepalive floor(hold/3)), never left
//     to GoBGP's defaults; a hold time of 0 cannot be configured.
//   - A prefix limit per peer and family (Peer.MaxPrefixes, GoBGP's PrefixLimit): GoBGP keeps
//     every received path in the Adj-RIB-In before the import policy rejects it, so without a
//     limit a router sending a full table could exhaust the speaker's memory. Beyond the limit
//     GoBGP closes the session with a Cease NOTIFICATION (Maximum Number of Prefixes Reached) and
//     keeps it down; the adapter reports it and opens it again after Config.PrefixLimitRestart.
//   - Imports are rejected (global import policy, default reject): the speaker is not a router,
//     and nothing is ever installed in the kernel (GoBGP's zebra client is never enabled).
//   - Both ipv4-unicast and ipv6-unicast are enabled on every session. A route of the session's
//     family leaves its next hop unspecified, so GoBGP uses the session's local address; a route
//     of the other family carries the node's address of that family (Config.NodeIPv4/NodeIPv6).
//   - LOCAL_PREF is only sent to iBGP peers (MyASN == PeerASN).
//   - Shutdown (and removing or changing a peer) first withdraws the session's routes, waits until
//     GoBGP has written the withdrawals, then closes the session with a Cease NOTIFICATION
//     "Administrative Shutdown" carrying why (RFC 9003), and returns when the session is closed.
//   - Graceful shutdown (RFC 8326): Shutdown first sends the routes of an Established session with
//     Peer.GracefulShutdown again with the GRACEFUL_SHUTDOWN community 65535:0 (and LOCAL_PREF 0
//     over iBGP) and keeps them so for that time (shortened so that ctx does not end before the
//     withdrawals), then withdraws and closes as above; the other sessions withdraw at once.
//   - Graceful restart (restart.go): StopForRestart ends sessions with Peer.GracefulRestart
//     without withdrawing and without a NOTIFICATION, so the router keeps the node's routes for
//     Peer.RestartTime; a new speaker's first sessions (within the restart time of its start) set
//     the Restart State bit and send End-of-RIB after their routes.
//   - Router ID: RouterID gives each node its own, also without IPv4 (derived from the IPv6
//     address).
//   - BFD (bfd.go) for peers with Peer.BFD: Herald's own (package speaker/bfd, which says why
//     not GoBGP's), single hop (RFC 5881), or multi-hop (RFC 5883) for peers with EBGPMultiHop.
//     One listener per address family and kind (UDP 3784 single hop, 4784 multi-hop) serves the
//     whole speaker, whatever the number of GoBGP servers; each session sends from its own
//     socket (source port 49152-65535, TTL 255); bfd.Demux gives each received packet to its
//     session (by discriminator, or by the peer's address, with the local one for multi-hop) and
//     accepts only TTL 255 for single hop, BFD.MinimumTTL (default 254) and above for multi-hop. When BFD goes from Up to Down because the path failed (detection time
//     expired, or the peer said Down), an Established BGP session is closed at once with a Cease
//     NOTIFICATION (Administrative Reset, "BFD: path to the peer down") and reconnects as after
//     any reset; it is not held down until BFD is Up, because a router with dynamic neighbours
//     (FRR's `bgp listen range`) runs BFD with the node only while the BGP session exists. A
//     peer that takes BFD AdminDown is no failure (RFC 5882). Stopping a session sends AdminDown.
//     Status reports the BFD state (PeerStatus.BFD) and a BFD that cannot run (BFDError: its
//     socket; the BGP session then runs without BFD); herald_bgp_bfd_up exports it.
//   - Local AS per peer (Peer.MyASN): peers of another local AS get their own server (serverKey),
//     whose global AS is theirs; GoBGP's per-neighbour LocalAsn is set to the same value.
//   - A router AS that is not pinned (dynamic.go): PeerASN 0 is GoBGP's peer AS 0 (any AS; the
//     session's type follows the OPEN), and the adapter closes a session that comes up with a
//     router in the speaker's own AS, because BGPPeer dynamicASN external promises eBGP.
//     dynamicASN internal is PeerASN = MyASN, which GoBGP checks itself.
//   - VRF (vrf.go): the session's TCP connection is bound to the VRF device (GoBGP's
//     Transport.BindInterface); no BFD in a VRF.
//   - BGP unnumbered (unnumbered.go, package routeradv): a Peer with Interface runs to the router's
//     link-local address learnt from its Router Advertisements, the speaker sending its own so the
//     router learns the node; GoBGP gets the address with the interface as zone, sends IPv4 routes
//     with the session's link-local next hop (RFC 8950; it always offers the extended next hop
//     capability for IPv4), and the session is restarted when the router's address changes.
//   - Metrics (herald_bgp_*) are read from Status at scrape time, counters from GoBGP.
//
// Adding per-peer features: a field of Peer is part of the session's identity (a change restarts
// that session only) and is translated in toAPIPeer; what GoBGP configures per server rather than
// per neighbour belongs in serverKey, so that peers that differ in it get their own server.
package bgp
