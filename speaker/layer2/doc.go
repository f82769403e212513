// Package layer2 owns Herald's layer 2 announcement mode: it answers ARP (IPv4) and NDP Neighbor
// Solicitations (IPv6) for the LoadBalancer IPs this node owns, on the interfaces it was told to use,
// and announces a takeover with gratuitous ARP and unsolicited Neighbor Advertisements.
//
// The speaker drives an [Announcer] with the desired state ([Announcer.SetOwned]); the Announcer
// opens one [Link] per interface it needs (two link-layer sockets: ARP, and IPv6 filtered to Neighbor
// Solicitations) and closes it when no owned IP uses it any more (and the speaker did not
// [Announcer.Prepare] it). Sockets are keyed by interface index: an interface deleted and created
// again under the same name is reopened on the next SetOwned or Prepare.
//
// Which interfaces a node answers on is decided by the pure [Select]: by default those holding the
// node's addresses and those of its default routes (never a pod's veth), plus the interfaces the
// operator names. [Netlink] reads the host's interfaces for it and reports changes to them
// (rtnetlink), so the speaker re-selects on a link event rather than on a timer.
//
// Sockets are injected at the I/O boundary: [DialLink] opens real AF_PACKET sockets, [NewLink] wraps
// any [Conn]/[GroupConn] (see package layer2test for in-memory doubles). Frames are encoded and decoded
// with github.com/mdlayher/ethernet, github.com/mdlayher/arp and github.com/mdlayher/ndp; only the
// fixed 40-byte IPv6 header, which none of them writes, is encoded here.
//
// With Config.Conflicts the Announcer also detects duplicate addresses (conflicts.go, pure core in
// guard.go): it watches the frames in which other stations claim an owned address (gratuitous ARP,
// ARP replies, Neighbor Advertisements), probes owned addresses now and then, paced (RFC 5227 ARP
// probes, duplicate address detection solicitations), probes an address nobody announced before
// ahead of its first announcement, and settles a conflict: it yields to a host that is not a Herald
// speaker, and between speakers both apply the same rule over their names (split brain).
//
// NDP uses packet sockets rather than an ICMPv6 socket because the owned addresses are normally not
// assigned to the node: the kernel would not deliver unicast Neighbor Solicitations (neighbour
// unreachability probes) for them to an ICMPv6 socket, and would not let us send from them.
package layer2
