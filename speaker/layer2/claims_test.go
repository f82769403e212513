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
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

type naOpts struct {
	src, dst  netip.Addr
	ethDst    net.HardwareAddr
	ethSource net.HardwareAddr
	tlla      net.HardwareAddr // nil: no target link-layer address option
	hopLimit  byte
	code      byte
}

// naFrame builds a Neighbor Advertisement frame for target, as another station would send it.
func naFrame(t testing.TB, target netip.Addr, o naOpts) []byte {
	t.Helper()
	if !o.src.IsValid() {
		o.src = target
	}
	if !o.dst.IsValid() {
		o.dst = allNodes
	}
	if o.ethDst == nil {
		o.ethDst = ipv6MulticastMAC(o.dst)
	}
	if o.ethSource == nil {
		o.ethSource = otherMAC
	}
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: target}
	if o.tlla != nil {
		na.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: o.tlla}}
	}
	return ndpFrame(t, na, o.src, o.dst, o.hopLimit, o.code, o.ethDst, o.ethSource)
}

func TestParseARPClaim(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		want    claim
		ignored bool // errIgnored rather than malformed
		bad     bool
	}{
		{
			name:  "gratuitous request",
			frame: arpFrame(t, arp.OperationRequest, broadcast, otherMAC, lbIPv4, lbIPv4),
			want:  claim{IP: lbIPv4, MAC: otherMAC},
		},
		{
			name:  "gratuitous reply",
			frame: arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4),
			want:  claim{IP: lbIPv4, MAC: otherMAC},
		},
		{
			name:  "reply to our probe",
			frame: arpFrame(t, arp.OperationReply, selfMAC, otherMAC, lbIPv4, netip.IPv4Unspecified()),
			want:  claim{IP: lbIPv4, MAC: otherMAC},
		},
		{
			name:  "request sent from the address",
			frame: arpFrame(t, arp.OperationRequest, broadcast, otherMAC, lbIPv4, clientV4),
			want:  claim{IP: lbIPv4, MAC: otherMAC},
		},
		{name: "probe claims nothing", frame: arpFrame(t, arp.OperationRequest, broadcast, otherMAC, netip.IPv4Unspecified(), lbIPv4), ignored: true},
		{name: "our own", frame: arpFrame(t, arp.OperationReply, broadcast, selfMAC, lbIPv4, lbIPv4), ignored: true},
		{name: "our address through another source", frame: func() []byte {
			b := arpFrame(t, arp.OperationReply, broadcast, selfMAC, lbIPv4, lbIPv4)
			copy(b[6:12], otherMAC) // Ethernet source
			return b
		}(), ignored: true},
		{name: "unicast to someone else", frame: arpFrame(t, arp.OperationReply, clientMAC, otherMAC, lbIPv4, clientV4), ignored: true},
		{name: "from broadcast address", frame: arpFrame(t, arp.OperationRequest, broadcast, otherMAC, ipv4Broadcast, lbIPv4), ignored: true},
		{name: "multicast sender", frame: arpFrame(t, arp.OperationReply, broadcast, net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, lbIPv4, lbIPv4), bad: true},
		{name: "operation 3", frame: func() []byte {
			b := arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4)
			b[14+7] = 3
			return b
		}(), ignored: true},
		{name: "short", frame: arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4)[:30], bad: true},
		{name: "empty", frame: nil, bad: true},
		{name: "not ARP", frame: naFrame(t, lbIPv6, naOpts{}), ignored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseARPClaim(tt.frame, selfMAC)
			checkClaim(t, got, err, tt.want, tt.ignored, tt.bad)
		})
	}
}

func checkClaim(t *testing.T, got claim, err error, want claim, ignored, bad bool) {
	t.Helper()
	switch {
	case ignored || bad:
		if err == nil {
			t.Fatalf("claim = %+v, want an error", got)
		}
		if errors.Is(err, errIgnored) != ignored {
			t.Fatalf("error %v: ignored = %v, want %v", err, errors.Is(err, errIgnored), ignored)
		}
	case err != nil:
		t.Fatalf("parsing: %v", err)
	default:
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("claim (-want +got):\n%s", diff)
		}
	}
}

func TestParseNDPClaim(t *testing.T) {
	linkLocal := netip.MustParseAddr("fe80::42")
	tests := []struct {
		name    string
		frame   []byte
		want    claim
		ignored bool
		bad     bool
	}{
		{
			name:  "unsolicited advertisement with target address option",
			frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC}),
			want:  claim{IP: lbIPv6, MAC: otherMAC},
		},
		{
			name:  "answer to duplicate address detection, from a link-local address",
			frame: naFrame(t, lbIPv6, naOpts{src: linkLocal, tlla: otherMAC}),
			want:  claim{IP: lbIPv6, MAC: otherMAC},
		},
		{
			name:  "option wins over the frame's source",
			frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC, ethSource: clientMAC}),
			want:  claim{IP: lbIPv6, MAC: otherMAC},
		},
		{
			name:  "no option: the frame's source",
			frame: naFrame(t, lbIPv6, naOpts{ethSource: clientMAC}),
			want:  claim{IP: lbIPv6, MAC: clientMAC},
		},
		{
			name:  "solicitation sent from the address",
			frame: nsFrame(t, clientV6, nsOpts{src: lbIPv6, ethSource: otherMAC}),
			want:  claim{IP: lbIPv6, MAC: clientMAC}, // nsFrame's source link-layer option
		},
		{name: "duplicate address detection claims nothing", frame: nsFrame(t, lbIPv6, nsOpts{src: netip.IPv6Unspecified(), noSLLA: true}), ignored: true},
		{name: "our own", frame: naFrame(t, lbIPv6, naOpts{tlla: selfMAC, ethSource: selfMAC}), ignored: true},
		{name: "our address in the option", frame: naFrame(t, lbIPv6, naOpts{tlla: selfMAC}), ignored: true},
		{name: "hop limit 64", frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC, hopLimit: 64}), ignored: true},
		{name: "code 1", frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC, code: 1}), ignored: true},
		{name: "multicast target", frame: naFrame(t, netip.MustParseAddr("ff02::2"), naOpts{tlla: otherMAC}), ignored: true},
		{name: "multicast link-layer address", frame: naFrame(t, lbIPv6, naOpts{tlla: net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}}), bad: true},
		{name: "unicast to someone else", frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC, dst: clientV6, ethDst: clientMAC}), ignored: true},
		{name: "truncated", frame: naFrame(t, lbIPv6, naOpts{tlla: otherMAC})[:14+40+10], bad: true},
		{name: "ARP", frame: arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4), ignored: true},
		{name: "empty", frame: nil, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNDPClaim(tt.frame, selfMAC)
			checkClaim(t, got, err, tt.want, tt.ignored, tt.bad)
		})
	}
}

func TestProbes(t *testing.T) {
	t.Run("ARP probe", func(t *testing.T) {
		b, err := arpProbe(lbIPv4, selfMAC)
		if err != nil {
			t.Fatal(err)
		}
		f, p := decodeARP(t, b)
		got := []string{f.Destination.String(), f.Source.String(), p.Operation.String(), p.SenderHardwareAddr.String(),
			p.SenderIP.String(), p.TargetHardwareAddr.String(), p.TargetIP.String()}
		want := []string{broadcast.String(), selfMAC.String(), arp.OperationRequest.String(), selfMAC.String(),
			"0.0.0.0", "00:00:00:00:00:00", lbIPv4.String()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ARP probe (-want +got):\n%s", diff)
		}
		// It claims nothing, and an owner answers it: the responder's own parser accepts it.
		if _, err := parseARPClaim(b, otherMAC); !errors.Is(err, errIgnored) {
			t.Errorf("parseARPClaim(probe) = %v, want errIgnored", err)
		}
		req, err := parseARPRequest(b, otherMAC)
		if err != nil || req.Target != lbIPv4 {
			t.Errorf("parseARPRequest(probe) = %+v, %v; want a request for %s", req, err, lbIPv4)
		}
	})
	t.Run("duplicate address detection", func(t *testing.T) {
		b, dst, err := dadSolicitation(lbIPv6, selfMAC)
		if err != nil {
			t.Fatal(err)
		}
		if want := solicitedNodeMAC(lbIPv6); dst.String() != want.String() {
			t.Errorf("written to %s, want the solicited-node group's %s", dst, want)
		}
		var f ethernet.Frame
		if err := f.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		h, err := ipv6.ParseHeader(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		snm, _ := ndp.SolicitedNodeMulticast(lbIPv6)
		if !h.Src.Equal(net.IPv6unspecified) || !h.Dst.Equal(net.IP(snm.AsSlice())) || h.HopLimit != 255 {
			t.Errorf("IPv6 header %+v: want :: -> %s, hop limit 255", h, snm)
		}
		// An owner answers it to all nodes: the responder's own parser accepts it as DAD.
		s, err := parseSolicitation(b, otherMAC)
		if err != nil || s.Target != lbIPv6 || !s.Src.IsUnspecified() {
			t.Errorf("parseSolicitation(DAD) = %+v, %v; want duplicate address detection for %s", s, err, lbIPv6)
		}
		if _, err := parseNDPClaim(b, otherMAC); !errors.Is(err, errIgnored) {
			t.Errorf("parseNDPClaim(DAD) = %v, want errIgnored", err)
		}
	})
}

// TestSocketFilters runs the kernel filters of DialLink's sockets in a BPF virtual machine.
func TestSocketFilters(t *testing.T) {
	tests := []struct {
		name  string
		prog  func() []bpf.RawInstruction
		frame []byte
		pass  bool
	}{
		{"ARP request", arpFilter, arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4), true},
		{"ARP reply", arpFilter, arpFrame(t, arp.OperationReply, selfMAC, otherMAC, lbIPv4, clientV4), true},
		{"ARP operation 3", arpFilter, func() []byte {
			b := arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4)
			b[14+7] = 3
			return b
		}(), false},
		{"IPv6 on the ARP socket", arpFilter, naFrame(t, lbIPv6, naOpts{tlla: otherMAC}), false},
		{"solicitation", neighborDiscoveryFilter, nsFrame(t, lbIPv6, nsOpts{}), true},
		{"advertisement", neighborDiscoveryFilter, naFrame(t, lbIPv6, naOpts{tlla: otherMAC}), true},
		{"router advertisement", neighborDiscoveryFilter, func() []byte {
			b := naFrame(t, lbIPv6, naOpts{tlla: otherMAC})
			b[14+40] = 134
			return b
		}(), false},
		{"ARP on the NDP socket", neighborDiscoveryFilter, arpFrame(t, arp.OperationReply, broadcast, otherMAC, lbIPv4, lbIPv4), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prog []bpf.Instruction
			for _, ri := range tt.prog() {
				prog = append(prog, ri.Disassemble())
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.pass {
				t.Errorf("filter passes the frame: %v, want %v", got, tt.pass)
			}
		})
	}
}

// FuzzParseARPClaim checks that no frame makes the claim parser panic, and that what it accepts
// names a usable address at a unicast hardware address other than ours.
func FuzzParseARPClaim(f *testing.F) {
	f.Add(arpFrame(f, arp.OperationRequest, broadcast, otherMAC, lbIPv4, lbIPv4))
	f.Add(arpFrame(f, arp.OperationReply, selfMAC, otherMAC, lbIPv4, netip.IPv4Unspecified()))
	f.Add(arpFrame(f, arp.OperationRequest, broadcast, otherMAC, netip.IPv4Unspecified(), lbIPv4))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseARPClaim(b, selfMAC)
		if err != nil {
			return
		}
		if !c.IP.Is4() || c.IP.IsUnspecified() || c.IP.IsMulticast() || !isUnicastMAC(c.MAC) || c.MAC.String() == selfMAC.String() {
			t.Fatalf("accepted claim %+v", c)
		}
	})
}

// FuzzParseNDPClaim is FuzzParseARPClaim for IPv6.
func FuzzParseNDPClaim(f *testing.F) {
	f.Add(naFrame(f, lbIPv6, naOpts{tlla: otherMAC}))
	f.Add(naFrame(f, lbIPv6, naOpts{}))
	f.Add(nsFrame(f, clientV6, nsOpts{src: lbIPv6}))
	f.Add(nsFrame(f, lbIPv6, nsOpts{src: netip.IPv6Unspecified(), noSLLA: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseNDPClaim(b, selfMAC)
		if err != nil {
			return
		}
		if !c.IP.Is6() || c.IP.Is4In6() || c.IP.IsUnspecified() || c.IP.IsMulticast() || c.IP.Zone() != "" || !isUnicastMAC(c.MAC) || c.MAC.String() == selfMAC.String() {
			t.Fatalf("accepted claim %+v", c)
		}
	})
}
