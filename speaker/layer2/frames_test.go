package layer2

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

var (
	selfMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	otherMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x42}
	lbIPv4    = netip.MustParseAddr("198.51.100.10")
	clientV4  = netip.MustParseAddr("198.51.100.100")
	lbIPv6    = netip.MustParseAddr("2001:db8::10")
	clientV6  = netip.MustParseAddr("2001:db8::100")
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// arpFrame builds an ARP frame as a client would send it.
func arpFrame(t testing.TB, op arp.Operation, ethDst, senderHW net.HardwareAddr, senderIP, targetIP netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, senderHW, senderIP, zeroMAC, targetIP)
	if err != nil {
		t.Fatal(err)
	}
	b, err := marshalARP(p, ethDst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type nsOpts struct {
	src, dst  netip.Addr
	ethDst    net.HardwareAddr
	hopLimit  byte
	noSLLA    bool
	ethSource net.HardwareAddr
}

// nsFrame builds a Neighbor Solicitation frame for target.
func nsFrame(t testing.TB, target netip.Addr, o nsOpts) []byte {
	t.Helper()
	snm, _ := ndp.SolicitedNodeMulticast(target)
	if !o.src.IsValid() {
		o.src = clientV6
	}
	if !o.dst.IsValid() {
		o.dst = snm
	}
	if o.ethDst == nil {
		o.ethDst = ipv6MulticastMAC(o.dst)
		if !o.dst.IsMulticast() {
			o.ethDst = selfMAC
		}
	}
	if o.ethSource == nil {
		o.ethSource = clientMAC
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: target}
	if !o.noSLLA {
		ns.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: clientMAC}}
	}
	return ndpFrame(t, ns, o.src, o.dst, o.hopLimit, 0, o.ethDst, o.ethSource)
}

// ndpFrame builds the Ethernet frame of NDP message m from src to dst, with ICMPv6 code code and
// IPv6 hop limit hopLimit (255 when 0).
func ndpFrame(t testing.TB, m ndp.Message, src, dst netip.Addr, hopLimit, code byte, ethDst, ethSource net.HardwareAddr) []byte {
	t.Helper()
	body, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	body[1] = code
	h := ipv6Header(src, dst, len(body))
	if hopLimit != 0 {
		h[7] = hopLimit
	}
	b, err := marshalEthernet(ethDst, ethSource, ethernet.EtherTypeIPv6, append(h, body...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseARPRequest(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		want    arpRequest
		ignored bool // errIgnored rather than malformed
		bad     bool
	}{
		{
			name:  "broadcast request",
			frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4),
			want:  arpRequest{Target: lbIPv4, SenderIP: clientV4, SenderHW: clientMAC},
		},
		{
			name:  "unicast request to us (cache revalidation)",
			frame: arpFrame(t, arp.OperationRequest, selfMAC, clientMAC, clientV4, lbIPv4),
			want:  arpRequest{Target: lbIPv4, SenderIP: clientV4, SenderHW: clientMAC},
		},
		{
			name:  "probe from 0.0.0.0",
			frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, netip.IPv4Unspecified(), lbIPv4),
			want:  arpRequest{Target: lbIPv4, SenderIP: netip.IPv4Unspecified(), SenderHW: clientMAC},
		},
		{name: "reply", frame: arpFrame(t, arp.OperationReply, selfMAC, clientMAC, clientV4, lbIPv4), ignored: true},
		{name: "unicast to someone else", frame: arpFrame(t, arp.OperationRequest, otherMAC, clientMAC, clientV4, lbIPv4), ignored: true},
		{name: "gratuitous", frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, lbIPv4, lbIPv4), ignored: true},
		{name: "our own", frame: arpFrame(t, arp.OperationRequest, broadcast, selfMAC, clientV4, lbIPv4), ignored: true},
		{name: "target broadcast", frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, ipv4Broadcast), ignored: true},
		{name: "short", frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4)[:30], bad: true},
		{name: "empty", frame: nil, bad: true},
		{name: "not ARP", frame: nsFrame(t, lbIPv6, nsOpts{}), ignored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseARPRequest(tt.frame, selfMAC)
			switch {
			case tt.ignored || tt.bad:
				if err == nil {
					t.Fatalf("parseARPRequest = %+v, want an error", got)
				}
				if errors.Is(err, errIgnored) != tt.ignored {
					t.Fatalf("parseARPRequest error %v: ignored = %v, want %v", err, errors.Is(err, errIgnored), tt.ignored)
				}
			case err != nil:
				t.Fatalf("parseARPRequest: %v", err)
			default:
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("parseARPRequest (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestARPReplyAndGratuitous(t *testing.T) {
	req := arpRequest{Target: lbIPv4, SenderIP: clientV4, SenderHW: clientMAC}
	b, err := arpReply(req, selfMAC)
	if err != nil {
		t.Fatal(err)
	}
	f, p := decodeARP(t, b)
	want := arp.Packet{HardwareType: 1, ProtocolType: 0x0800, HardwareAddrLength: 6, IPLength: 4,
		Operation: arp.OperationReply, SenderHardwareAddr: selfMAC, SenderIP: lbIPv4,
		TargetHardwareAddr: clientMAC, TargetIP: clientV4}
	if diff := cmp.Diff(want, *p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if f.Destination.String() != clientMAC.String() || f.Source.String() != selfMAC.String() {
		t.Errorf("reply frame %s -> %s, want %s -> %s", f.Source, f.Destination, selfMAC, clientMAC)
	}

	frames, err := gratuitousARP(lbIPv4, selfMAC)
	if err != nil {
		t.Fatal(err)
	}
	var ops []arp.Operation
	for _, b := range frames {
		f, p := decodeARP(t, b)
		ops = append(ops, p.Operation)
		if f.Destination.String() != broadcast.String() || p.SenderIP != lbIPv4 || p.TargetIP != lbIPv4 ||
			p.SenderHardwareAddr.String() != selfMAC.String() {
			t.Errorf("gratuitous %v: frame to %s, sender %s/%s, target %s; want broadcast, %s/%s, %s",
				p.Operation, f.Destination, p.SenderIP, p.SenderHardwareAddr, p.TargetIP, lbIPv4, selfMAC, lbIPv4)
		}
	}
	if diff := cmp.Diff([]arp.Operation{arp.OperationRequest, arp.OperationReply}, ops); diff != "" {
		t.Errorf("gratuitous operations (-want +got):\n%s", diff)
	}
}

func decodeARP(t *testing.T, b []byte) (*ethernet.Frame, *arp.Packet) {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatal(err)
	}
	return &f, &p
}

func TestParseSolicitation(t *testing.T) {
	otherSNM, _ := ndp.SolicitedNodeMulticast(netip.MustParseAddr("2001:db8::77"))
	tests := []struct {
		name    string
		frame   []byte
		want    solicitation
		ignored bool
		bad     bool
	}{
		{
			name:  "multicast to solicited-node group",
			frame: nsFrame(t, lbIPv6, nsOpts{}),
			want:  solicitation{Target: lbIPv6, Src: clientV6, SrcHW: clientMAC},
		},
		{
			name:  "unicast probe without source link-layer option",
			frame: nsFrame(t, lbIPv6, nsOpts{dst: lbIPv6, noSLLA: true, ethSource: otherMAC}),
			want:  solicitation{Target: lbIPv6, Src: clientV6, SrcHW: otherMAC},
		},
		{
			name:  "link-local source",
			frame: nsFrame(t, lbIPv6, nsOpts{src: netip.MustParseAddr("fe80::99")}),
			want:  solicitation{Target: lbIPv6, Src: netip.MustParseAddr("fe80::99"), SrcHW: clientMAC},
		},
		{
			name:  "duplicate address detection",
			frame: nsFrame(t, lbIPv6, nsOpts{src: netip.IPv6Unspecified(), noSLLA: true}),
			want:  solicitation{Target: lbIPv6, Src: netip.IPv6Unspecified()},
		},
		{name: "DAD with source option", frame: nsFrame(t, lbIPv6, nsOpts{src: netip.IPv6Unspecified()}), ignored: true},
		{name: "hop limit 64", frame: nsFrame(t, lbIPv6, nsOpts{hopLimit: 64}), ignored: true},
		{name: "wrong group", frame: nsFrame(t, lbIPv6, nsOpts{dst: otherSNM}), ignored: true},
		{name: "unicast to another address", frame: nsFrame(t, lbIPv6, nsOpts{dst: clientV6, ethDst: selfMAC}), ignored: true},
		{name: "unicast frame for another MAC", frame: nsFrame(t, lbIPv6, nsOpts{dst: lbIPv6, ethDst: otherMAC}), ignored: true},
		{name: "our own", frame: nsFrame(t, lbIPv6, nsOpts{ethSource: selfMAC, noSLLA: true}), ignored: true},
		{name: "ARP", frame: arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4), ignored: true},
		{name: "truncated IPv6 payload", frame: nsFrame(t, lbIPv6, nsOpts{})[:14+40+10], bad: true},
		{name: "truncated header", frame: nsFrame(t, lbIPv6, nsOpts{})[:30], bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSolicitation(tt.frame, selfMAC)
			switch {
			case tt.ignored || tt.bad:
				if err == nil {
					t.Fatalf("parseSolicitation = %+v, want an error", got)
				}
				if errors.Is(err, errIgnored) != tt.ignored {
					t.Fatalf("parseSolicitation error %v: ignored = %v, want %v", err, errors.Is(err, errIgnored), tt.ignored)
				}
			case err != nil:
				t.Fatalf("parseSolicitation: %v", err)
			default:
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("parseSolicitation (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// decodedNA is what a receiver sees of a Neighbor Advertisement frame.
type decodedNA struct {
	EthDst, EthSrc string
	Src, Dst       netip.Addr
	HopLimit       int
	Solicited      bool
	Override       bool
	Target         netip.Addr
	TLLA           string
	ChecksumOK     bool
}

func decodeNA(t testing.TB, b []byte) decodedNA {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	h, err := ipv6.ParseHeader(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	body := f.Payload[ipv6.HeaderLen:]
	if h.PayloadLen != len(body) {
		t.Fatalf("IPv6 payload length %d, body %d bytes", h.PayloadLen, len(body))
	}
	m, err := ndp.ParseMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("got %T, want a neighbor advertisement", m)
	}
	src, _ := netip.AddrFromSlice(h.Src)
	dst, _ := netip.AddrFromSlice(h.Dst)
	d := decodedNA{EthDst: f.Destination.String(), EthSrc: f.Source.String(), Src: src, Dst: dst, HopLimit: h.HopLimit,
		Solicited: na.Solicited, Override: na.Override, Target: na.TargetAddress}
	for _, o := range na.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Target {
			d.TLLA = lla.Addr.String()
		}
	}
	// The checksum over the pseudo-header, as a receiver checks it: recomputing it must give the same bytes.
	again, err := ndp.MarshalMessageChecksum(na, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	d.ChecksumOK = string(again) == string(body)
	return d
}

func TestNeighborAdvertisements(t *testing.T) {
	allNodesMACs := "33:33:00:00:00:01"
	tests := []struct {
		name  string
		build func() ([]byte, error)
		want  decodedNA
	}{
		{
			name: "solicited reply",
			build: func() ([]byte, error) {
				return neighborAdvertisementReply(solicitation{Target: lbIPv6, Src: clientV6, SrcHW: clientMAC}, selfMAC)
			},
			want: decodedNA{EthDst: clientMAC.String(), EthSrc: selfMAC.String(), Src: lbIPv6, Dst: clientV6, HopLimit: 255,
				Solicited: true, Override: true, Target: lbIPv6, TLLA: selfMAC.String(), ChecksumOK: true},
		},
		{
			name: "reply to duplicate address detection",
			build: func() ([]byte, error) {
				return neighborAdvertisementReply(solicitation{Target: lbIPv6, Src: netip.IPv6Unspecified()}, selfMAC)
			},
			want: decodedNA{EthDst: allNodesMACs, EthSrc: selfMAC.String(), Src: lbIPv6, Dst: allNodes, HopLimit: 255,
				Override: true, Target: lbIPv6, TLLA: selfMAC.String(), ChecksumOK: true},
		},
		{
			name:  "unsolicited",
			build: func() ([]byte, error) { return unsolicitedNeighborAdvertisement(lbIPv6, selfMAC) },
			want: decodedNA{EthDst: allNodesMACs, EthSrc: selfMAC.String(), Src: lbIPv6, Dst: allNodes, HopLimit: 255,
				Override: true, Target: lbIPv6, TLLA: selfMAC.String(), ChecksumOK: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, decodeNA(t, b), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("advertisement (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIPv6HeaderRoundTrip(t *testing.T) {
	b := ipv6Header(lbIPv6, allNodes, 32)
	h, err := ipv6.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := ipv6.Header{Version: 6, PayloadLen: 32, NextHeader: 58, HopLimit: 255,
		Src: net.IP(lbIPv6.AsSlice()), Dst: net.IP(allNodes.AsSlice())}
	if diff := cmp.Diff(want, *h); diff != "" {
		t.Errorf("ipv6.ParseHeader(ipv6Header(...)) (-want +got):\n%s", diff)
	}
}

// FuzzParseARPRequest checks that no frame makes the ARP decision panic, and that whatever it
// accepts can be answered with a well-formed reply to the asker.
func FuzzParseARPRequest(f *testing.F) {
	f.Add(arpFrame(f, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
	f.Add(arpFrame(f, arp.OperationRequest, selfMAC, clientMAC, netip.IPv4Unspecified(), lbIPv4))
	f.Add(arpFrame(f, arp.OperationReply, selfMAC, clientMAC, clientV4, lbIPv4))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseARPRequest(b, selfMAC)
		if err != nil {
			return
		}
		reply, err := arpReply(req, selfMAC)
		if err != nil {
			t.Fatalf("accepted %+v but cannot answer it: %v", req, err)
		}
		var fr ethernet.Frame
		if err := fr.UnmarshalBinary(reply); err != nil {
			t.Fatal(err)
		}
		var p arp.Packet
		if err := p.UnmarshalBinary(fr.Payload); err != nil {
			t.Fatal(err)
		}
		if p.SenderIP != req.Target || p.TargetIP != req.SenderIP || fr.Destination.String() != req.SenderHW.String() {
			t.Fatalf("reply %+v does not answer %+v", p, req)
		}
	})
}

// FuzzParseSolicitation checks that no frame makes the NDP decision panic, and that whatever it
// accepts can be answered with a parseable advertisement for the same target.
func FuzzParseSolicitation(f *testing.F) {
	f.Add(nsFrame(f, lbIPv6, nsOpts{}))
	f.Add(nsFrame(f, lbIPv6, nsOpts{dst: lbIPv6, noSLLA: true}))
	f.Add(nsFrame(f, lbIPv6, nsOpts{src: netip.IPv6Unspecified(), noSLLA: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSolicitation(b, selfMAC)
		if err != nil {
			return
		}
		reply, err := neighborAdvertisementReply(s, selfMAC)
		if err != nil {
			t.Fatalf("accepted %+v but cannot answer it: %v", s, err)
		}
		na := decodeNA(t, reply)
		if na.Target != s.Target || !na.ChecksumOK || na.Solicited == s.Src.IsUnspecified() {
			t.Fatalf("reply %+v does not answer %+v", na, s)
		}
	})
}
