// Package bgp is the speaker's BGP adapter: it keeps BGP sessions to the configured peers and
// advertises the service prefixes the speaker decided to announce, with their communities, large
// communities and local preference. It embeds GoBGP (github.com/osrg/gobgp/v3) and is the only
// package that imports it; no GoBGP type appears in its API.
//
// Design:
//
//   - One GoBGP server per peer. Routes differ per peer (a BGPAdvertisement names its peers)
//     and GoBGP v3 has per-neighbor export policies only for route-server clients, which do not
//     prepend their AS. A server per peer gives each peer its own RIB holding exactly the routes
//     meant for it, its own ASN and router ID, and isolation: changing or removing a peer stops
//     only that server. The servers never listen (ListenPort -1): the speaker always opens the
//     TCP connection, so peers must accept it (e.g. FRR `bgp listen range`, or static neighbors).
//   - Diff-based and per peer: SetPeers restarts only the sessions whose Peer changed; a Peer it
//     cannot use (ValidatePeer, or GoBGP refusing it) is skipped and reported in Status
//     (ConfigError) and by the herald_bgp_peer_refused metric, keeping the session of its previous
//     configuration if it had one, and never stops another peer. SetRoutes computes per peer the
//     prefixes and attributes wanted and sends only differences with AddPath (which replaces a
//     prefix's path, i.e. one UPDATE with new attributes) and DeletePath. No route change resets
//     a session.
//   - Timers are whole seconds and filled in here (hold 90 s, keepalive floor(hold/3)), never left
//     to GoBGP's defaults; a hold time of 0 cannot be configured (GoBGP v3 turns it into 90 s).
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
//   - LOCAL_PREF is only attached for iBGP peers (MyASN == PeerASN).
//   - Shutdown (and removing or changing a peer) first withdraws every route, then closes the
//     session with a Cease NOTIFICATION "Administrative Shutdown" carrying why (RFC 9003), queued
//     after the withdrawals, and returns when GoBGP has sent it and closed the connection.
//   - Router ID: RouterID gives each node its own, also without IPv4 (derived from the IPv6
//     address).
//   - PeerStatus.LastError comes from GoBGP's log messages for the session (failed connects,
//     NOTIFICATIONs, resets), which the adapter's logger observes before forwarding them to
//     the injected slog logger. Metrics are read from GoBGP at scrape time.
package bgp
