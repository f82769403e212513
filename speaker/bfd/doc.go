// Package bfd is Herald's Bidirectional Forwarding Detection (RFC 5880) for the speaker's BGP
// sessions: the Control packet format (ParsePacket, AppendPacket) and the state machine of one
// session in asynchronous mode (Session), with the profile's transmit and receive intervals and
// detect multiplier, passive mode, the slow start (at most one packet a second until the session
// is Up) and the Poll Sequence that follows it, and the demultiplexing of received packets to
// their sessions with the TTL checks (Demux): single hop (RFC 5881: UDP port 3784, TTL 255
// required on receipt, one session per peer address) and multi-hop (RFC 5883: UDP port 4784, a
// minimum TTL per session, 254 by default as in FRR, one session per pair of local and remote
// addresses). It is pure: no sockets, no goroutines, no clock of its own; the sockets live in a
// thin adapter in package speaker/bgp (source ports 49152-65535, TTL 255 sent).
//
// Why Herald's own and not GoBGP v4.8.0's: GoBGP's BFD (pkg/server/bfd_*.go) opens one UDP
// :3784 listener per BgpServer, and the speaker runs one server per local AS and router ID, so a
// second server's listener would take the first one's packets; it has no passive mode, does not
// check the TTL of received packets (RFC 5881's GTSM), sends at its own interval whatever the
// peer's Required Min RX Interval, skips the slow start and jitter, reports BFD state in no
// event (only by polling ListPeer), and has the BFD flap loop that v4.9.0 fixes (the module
// proxy here does not serve v4.9.0). Herald's adapter holds the BGP session down while BFD is
// down after a failure, and opens it again when BFD is Up. Not implemented here, and refused by config.Parse: the echo function,
// authentication and demand mode of its own.
package bfd
