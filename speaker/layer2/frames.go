package layer2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// errIgnored marks a well-formed frame that is not a request this package answers.
var errIgnored = errors.New("not a request to answer")

var (
	zeroMAC          = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	allNodes         = netip.MustParseAddr("ff02::1")
	allNodesMAC      = ipv6MulticastMAC(allNodes)
	ipv4Broadcast    = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	errNotUnicastMAC = errors.New("not a unicast hardware address")
)

// arpRequest is an ARP request worth answering: "who has Target? tell SenderIP at SenderHW".
type arpRequest struct {
	Target   netip.Addr
	SenderIP netip.Addr
	SenderHW net.HardwareAddr
}

// parseARPRequest decodes an Ethernet frame received on the interface with hardware address self.
// It returns errIgnored (wrapped) for frames that are valid but not a request to answer, and another
// error for malformed ones. It never panics.
func parseARPRequest(frame []byte, self net.HardwareAddr) (arpRequest, error) {
	p, err := parseARP(frame, self)
	if err != nil {
		return arpRequest{}, err
	}
	switch {
	case p.Operation != arp.OperationRequest:
		return arpRequest{}, fmt.Errorf("%w: ARP operation %d", errIgnored, p.Operation)
	case p.SenderIP == p.TargetIP:
		return arpRequest{}, fmt.Errorf("%w: gratuitous ARP for %s", errIgnored, p.TargetIP)
	case !isUnicastMAC(p.SenderHardwareAddr):
		return arpRequest{}, fmt.Errorf("ARP sender %s: %w", p.SenderHardwareAddr, errNotUnicastMAC)
	case p.TargetIP.IsUnspecified() || p.TargetIP.IsMulticast() || p.TargetIP == ipv4Broadcast:
		return arpRequest{}, fmt.Errorf("%w: ARP for %s", errIgnored, p.TargetIP)
	}
	return arpRequest{Target: p.TargetIP, SenderIP: p.SenderIP, SenderHW: p.SenderHardwareAddr}, nil
}

// arpReply is the Ethernet frame answering req: Target is at self.
func arpReply(req arpRequest, self net.HardwareAddr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationReply, self, req.Target, req.SenderHW, req.SenderIP)
	if err != nil {
		return nil, fmt.Errorf("building ARP reply for %s: %w", req.Target, err)
	}
	return marshalARP(p, req.SenderHW)
}

// gratuitousARP returns the two broadcast frames announcing that ip is at self: a request and a
// reply, both with sender and target protocol address ip. Some hosts and switches heed only one kind.
func gratuitousARP(ip netip.Addr, self net.HardwareAddr) ([][]byte, error) {
	req, err := arp.NewPacket(arp.OperationRequest, self, ip, zeroMAC, ip)
	if err != nil {
		return nil, fmt.Errorf("building gratuitous ARP request for %s: %w", ip, err)
	}
	rep, err := arp.NewPacket(arp.OperationReply, self, ip, ethernet.Broadcast, ip)
	if err != nil {
		return nil, fmt.Errorf("building gratuitous ARP reply for %s: %w", ip, err)
	}
	var frames [][]byte
	for _, p := range []*arp.Packet{req, rep} {
		b, err := marshalARP(p, ethernet.Broadcast)
		if err != nil {
			return nil, err
		}
		frames = append(frames, b)
	}
	return frames, nil
}

// parseARP decodes an Ethernet frame received on the interface with hardware address self into an
// ARP packet for IPv4 over Ethernet. It returns errIgnored (wrapped) for other ARP, another error
// for malformed frames.
func parseARP(frame []byte, self net.HardwareAddr) (*arp.Packet, error) {
	f, err := parseEthernet(frame, ethernet.EtherTypeARP, self)
	if err != nil {
		return nil, err
	}
	p := new(arp.Packet)
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil, fmt.Errorf("decoding ARP packet: %w", err)
	}
	if p.HardwareType != 1 || p.ProtocolType != uint16(ethernet.EtherTypeIPv4) ||
		p.HardwareAddrLength != 6 || p.IPLength != 4 {
		return nil, fmt.Errorf("%w: ARP for hardware type %d, protocol %#04x", errIgnored, p.HardwareType, p.ProtocolType)
	}
	return p, nil
}

func marshalARP(p *arp.Packet, dst net.HardwareAddr) ([]byte, error) {
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encoding ARP packet: %w", err)
	}
	return marshalEthernet(dst, p.SenderHardwareAddr, ethernet.EtherTypeARP, pb)
}

// solicitation is a Neighbor Solicitation worth answering.
type solicitation struct {
	Target netip.Addr
	// Src is the solicitation's IPv6 source: the unspecified address for Duplicate Address Detection.
	Src netip.Addr
	// SrcHW is where a unicast answer goes: the source link-layer address option, else the frame's source.
	SrcHW net.HardwareAddr
}

// parseSolicitation decodes an Ethernet frame received on the interface with hardware address self
// and checks it as RFC 4861 section 7.1.1 asks (hop limit 255, code 0, DAD rules). Solicitations
// for the target must be sent to its solicited-node group or to the target itself (neighbour
// unreachability detection). It returns errIgnored (wrapped) for valid frames it does not answer.
// The ICMPv6 checksum is not verified; the Ethernet FCS has been. It never panics.
func parseSolicitation(frame []byte, self net.HardwareAddr) (solicitation, error) {
	f, h, body, err := parseICMPv6(frame, self)
	if err != nil {
		return solicitation{}, err
	}
	m, err := ndp.ParseMessage(body)
	if err != nil {
		return solicitation{}, fmt.Errorf("decoding ICMPv6 message: %w", err)
	}
	ns, ok := m.(*ndp.NeighborSolicitation)
	if !ok {
		return solicitation{}, fmt.Errorf("%w: ICMPv6 %s", errIgnored, m.Type())
	}
	if body[1] != 0 {
		return solicitation{}, fmt.Errorf("%w: ICMPv6 code %d", errIgnored, body[1])
	}
	src, _ := netip.AddrFromSlice(h.Src)
	dst, _ := netip.AddrFromSlice(h.Dst)
	target := ns.TargetAddress.WithZone("")
	snm, err := ndp.SolicitedNodeMulticast(target)
	if err != nil {
		return solicitation{}, errors.Join(fmt.Errorf("%w: target %s", errIgnored, target), err)
	}
	if !target.Is6() || target.Is4In6() || target.IsMulticast() || target.IsUnspecified() || target.IsLoopback() {
		return solicitation{}, fmt.Errorf("%w: target %s", errIgnored, target)
	}
	if dst != snm && dst != target {
		return solicitation{}, fmt.Errorf("%w: solicitation for %s sent to %s", errIgnored, target, dst)
	}
	if src.IsMulticast() {
		return solicitation{}, fmt.Errorf("solicitation from multicast %s: %w", src, errIgnored)
	}
	var srcHW net.HardwareAddr
	for _, o := range ns.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source {
			srcHW = lla.Addr
		}
	}
	if src.IsUnspecified() {
		// Duplicate Address Detection: RFC 4861 forbids a source link-layer option, and the
		// answer goes to all nodes.
		if srcHW != nil || dst != snm {
			return solicitation{}, fmt.Errorf("%w: malformed duplicate address detection for %s", errIgnored, target)
		}
		return solicitation{Target: target, Src: src}, nil
	}
	if srcHW == nil {
		srcHW = f.Source
	}
	if !isUnicastMAC(srcHW) {
		return solicitation{}, fmt.Errorf("solicitation source %s: %w", srcHW, errNotUnicastMAC)
	}
	return solicitation{Target: target, Src: src, SrcHW: srcHW}, nil
}

// parseICMPv6 decodes an Ethernet frame received on the interface with hardware address self into
// an IPv6 packet carrying ICMPv6 with the hop limit of NDP (255), and returns the frame, the IPv6
// header and the ICMPv6 message. It returns errIgnored (wrapped) for other IPv6 packets, another
// error for malformed frames.
func parseICMPv6(frame []byte, self net.HardwareAddr) (*ethernet.Frame, *ipv6.Header, []byte, error) {
	f, err := parseEthernet(frame, ethernet.EtherTypeIPv6, self)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := ipv6.ParseHeader(f.Payload)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("decoding IPv6 header: %w", err)
	}
	switch {
	case h.Version != 6:
		return nil, nil, nil, fmt.Errorf("IPv6 header with version %d: %w", h.Version, errIgnored)
	case h.NextHeader != ipv6HeaderICMP:
		return nil, nil, nil, fmt.Errorf("%w: IPv6 next header %d", errIgnored, h.NextHeader)
	case h.HopLimit != ndp.HopLimit:
		return nil, nil, nil, fmt.Errorf("%w: hop limit %d", errIgnored, h.HopLimit)
	case ipv6.HeaderLen+h.PayloadLen > len(f.Payload):
		return nil, nil, nil, fmt.Errorf("IPv6 payload length %d exceeds the frame's %d bytes", h.PayloadLen, len(f.Payload)-ipv6.HeaderLen)
	}
	return f, h, f.Payload[ipv6.HeaderLen : ipv6.HeaderLen+h.PayloadLen], nil
}

// neighborAdvertisementReply answers s, per RFC 4861 section 7.2.4: to the soliciting node with the
// Solicited flag, or to all nodes without it when the solicitation came from the unspecified address.
func neighborAdvertisementReply(s solicitation, self net.HardwareAddr) ([]byte, error) {
	if s.Src.IsUnspecified() {
		return neighborAdvertisement(s.Target, allNodes, allNodesMAC, false, self)
	}
	return neighborAdvertisement(s.Target, s.Src, s.SrcHW, true, self)
}

// unsolicitedNeighborAdvertisement announces to all nodes that ip is at self, overriding caches.
func unsolicitedNeighborAdvertisement(ip netip.Addr, self net.HardwareAddr) ([]byte, error) {
	return neighborAdvertisement(ip, allNodes, allNodesMAC, false, self)
}

// neighborAdvertisement builds the frame of an Override Neighbor Advertisement for target. Its IPv6
// source is the target itself, not a link-local address: some receivers (ndisc6) ignore
// advertisements for a global target sent from a link-local source.
func neighborAdvertisement(target, dst netip.Addr, dstHW net.HardwareAddr, solicited bool, self net.HardwareAddr) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: target,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: self}},
	}
	body, err := ndp.MarshalMessageChecksum(na, target, dst)
	if err != nil {
		return nil, fmt.Errorf("encoding neighbor advertisement for %s: %w", target, err)
	}
	return marshalEthernet(dstHW, self, ethernet.EtherTypeIPv6, append(ipv6Header(target, dst, len(body)), body...))
}

const ipv6HeaderICMP = 58 // IPv6 next header value of ICMPv6

// ipv6Header encodes the fixed IPv6 header of an NDP message (traffic class and flow label zero,
// hop limit 255). golang.org/x/net/ipv6 parses this header but does not encode it.
func ipv6Header(src, dst netip.Addr, payloadLen int) []byte {
	b := make([]byte, ipv6.HeaderLen)
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(payloadLen))
	b[6] = ipv6HeaderICMP
	b[7] = ndp.HopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return b
}

// ipv6MulticastMAC is the Ethernet address IPv6 multicast group ip maps to (RFC 2464 section 7).
func ipv6MulticastMAC(ip netip.Addr) net.HardwareAddr {
	a := ip.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// parseEthernet decodes an untagged frame of EtherType et addressed to self (unicast, multicast or
// broadcast) and not sent by self.
func parseEthernet(frame []byte, et ethernet.EtherType, self net.HardwareAddr) (*ethernet.Frame, error) {
	f := new(ethernet.Frame)
	if err := f.UnmarshalBinary(frame); err != nil {
		return nil, fmt.Errorf("decoding Ethernet frame: %w", err)
	}
	switch {
	case f.VLAN != nil || f.ServiceVLAN != nil:
		// Tagged frames belong to a VLAN interface, which has a socket of its own.
		return nil, fmt.Errorf("%w: VLAN-tagged frame", errIgnored)
	case f.EtherType != et:
		return nil, fmt.Errorf("%w: EtherType %s", errIgnored, f.EtherType)
	case bytes.Equal(f.Source, self):
		return nil, fmt.Errorf("%w: frame sent by this interface", errIgnored)
	case f.Destination[0]&1 == 0 && !bytes.Equal(f.Destination, self):
		return nil, fmt.Errorf("%w: frame for %s", errIgnored, f.Destination)
	}
	return f, nil
}

func marshalEthernet(dst, src net.HardwareAddr, et ethernet.EtherType, payload []byte) ([]byte, error) {
	f := ethernet.Frame{Destination: dst, Source: src, EtherType: et, Payload: payload}
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encoding Ethernet frame to %s: %w", dst, err)
	}
	return b, nil
}

func isUnicastMAC(hw net.HardwareAddr) bool {
	return len(hw) == 6 && hw[0]&1 == 0 && !bytes.Equal(hw, zeroMAC)
}
