package layer2

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// claim is what a received frame says about another station: that IP is at MAC. A station claims
// an address when it announces it (gratuitous ARP, unsolicited Neighbor Advertisement), answers for
// it (ARP reply, solicited advertisement, including the answers to this node's probes) or uses it as
// its own source address (an ARP request or a Neighbor Solicitation sent from it).
type claim struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

// parseARPClaim decodes an Ethernet frame received on the interface with hardware address self and
// returns the address its sender claims. Probes (sender 0.0.0.0) claim nothing: they ask. It
// returns errIgnored (wrapped) for valid frames that claim nothing, another error for malformed ones,
// and never panics.
func parseARPClaim(frame []byte, self net.HardwareAddr) (claim, error) {
	p, err := parseARP(frame, self)
	if err != nil {
		return claim{}, err
	}
	switch {
	case p.Operation != arp.OperationRequest && p.Operation != arp.OperationReply:
		return claim{}, fmt.Errorf("%w: ARP operation %d", errIgnored, p.Operation)
	case !isUnicastMAC(p.SenderHardwareAddr):
		return claim{}, fmt.Errorf("ARP sender %s: %w", p.SenderHardwareAddr, errNotUnicastMAC)
	case bytes.Equal(p.SenderHardwareAddr, self):
		return claim{}, fmt.Errorf("%w: ARP from this interface's own address", errIgnored)
	case p.SenderIP.IsUnspecified() || p.SenderIP.IsMulticast() || p.SenderIP == ipv4Broadcast:
		return claim{}, fmt.Errorf("%w: ARP from %s", errIgnored, p.SenderIP)
	}
	return claim{IP: p.SenderIP, MAC: p.SenderHardwareAddr}, nil
}

// parseNDPClaim decodes an Ethernet frame received on the interface with hardware address self and
// returns the address it claims: the target of a Neighbor Advertisement (at its target link-layer
// address option, else the frame's source), or the source of a Neighbor Solicitation (at its source
// link-layer address option, else the frame's source). Duplicate Address Detection solicitations,
// from the unspecified address, claim nothing. Messages are checked as RFC 4861 sections 7.1.1 and
// 7.1.2 ask (hop limit 255, code 0). It returns errIgnored (wrapped) for valid frames that claim
// nothing, another error for malformed ones, and never panics.
func parseNDPClaim(frame []byte, self net.HardwareAddr) (claim, error) {
	f, h, body, err := parseICMPv6(frame, self)
	if err != nil {
		return claim{}, err
	}
	if len(body) < 2 || (body[0] != byte(ipv6.ICMPTypeNeighborAdvertisement) && body[0] != byte(ipv6.ICMPTypeNeighborSolicitation)) {
		return claim{}, fmt.Errorf("%w: not a neighbor solicitation or advertisement", errIgnored)
	}
	if body[1] != 0 {
		return claim{}, fmt.Errorf("%w: ICMPv6 code %d", errIgnored, body[1])
	}
	m, err := ndp.ParseMessage(body)
	if err != nil {
		return claim{}, fmt.Errorf("decoding ICMPv6 message: %w", err)
	}
	var (
		ip   netip.Addr
		opts []ndp.Option
		dir  ndp.Direction
	)
	switch m := m.(type) {
	case *ndp.NeighborAdvertisement:
		ip, opts, dir = m.TargetAddress, m.Options, ndp.Target
	case *ndp.NeighborSolicitation:
		ip, _ = netip.AddrFromSlice(h.Src)
		opts, dir = m.Options, ndp.Source
	default:
		return claim{}, fmt.Errorf("%w: ICMPv6 %s", errIgnored, m.Type())
	}
	ip = ip.WithZone("")
	if !ip.Is6() || ip.Is4In6() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return claim{}, fmt.Errorf("%w: claim for %s", errIgnored, ip)
	}
	mac := f.Source
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == dir {
			mac = lla.Addr
		}
	}
	if !isUnicastMAC(mac) {
		return claim{}, fmt.Errorf("claim for %s at %s: %w", ip, mac, errNotUnicastMAC)
	}
	if bytes.Equal(mac, self) {
		return claim{}, fmt.Errorf("%w: claim for %s at this interface's own address", errIgnored, ip)
	}
	return claim{IP: ip, MAC: mac}, nil
}

// arpProbe is the broadcast frame of an RFC 5227 ARP probe for ip from self: a request with sender
// IP 0.0.0.0 (so that no neighbour learns anything from it) and an all-zero target hardware
// address. A station that has ip answers it with a reply to self.
func arpProbe(ip netip.Addr, self net.HardwareAddr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, self, netip.IPv4Unspecified(), zeroMAC, ip)
	if err != nil {
		return nil, fmt.Errorf("building ARP probe for %s: %w", ip, err)
	}
	return marshalARP(p, ethernet.Broadcast)
}

// dadSolicitation is the frame of a Duplicate Address Detection Neighbor Solicitation for ip from
// self (RFC 4862 section 5.4.2): from the unspecified address to ip's solicited-node group, without
// a source link-layer address option. A station that has ip answers with an advertisement to all
// nodes. It also returns the Ethernet destination to write the frame to.
func dadSolicitation(ip netip.Addr, self net.HardwareAddr) ([]byte, net.HardwareAddr, error) {
	snm, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return nil, nil, fmt.Errorf("building duplicate address detection for %s: %w", ip, err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: ip}
	body, err := ndp.MarshalMessageChecksum(ns, netip.IPv6Unspecified(), snm)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding duplicate address detection for %s: %w", ip, err)
	}
	dst := ipv6MulticastMAC(snm)
	b, err := marshalEthernet(dst, self, ethernet.EtherTypeIPv6, append(ipv6Header(netip.IPv6Unspecified(), snm, len(body)), body...))
	if err != nil {
		return nil, nil, err
	}
	return b, dst, nil
}
