package layer2

import (
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Conn is the I/O boundary of a responder: a socket that reads and writes whole Ethernet frames on
// one interface. *packet.Conn from github.com/mdlayher/packet implements it; package layer2test has
// an in-memory double. Close must make a blocked ReadFrom return.
type Conn interface {
	ReadFrom(b []byte) (n int, addr net.Addr, err error)
	WriteTo(b []byte, addr net.Addr) (n int, err error)
	Close() error
}

// GroupConn is a Conn that can also make its interface accept frames for a link-layer multicast
// address. NDP needs it: Neighbor Solicitations are sent to the solicited-node group of the address
// asked for, and a NIC drops multicast frames it was not told to accept.
type GroupConn interface {
	Conn
	JoinGroup(hw net.HardwareAddr) error
	LeaveGroup(hw net.HardwareAddr) error
}

// Link is one interface and its sockets, one per address family.
type Link struct {
	Interface net.Interface
	ARP       Conn      // nil: IPv4 addresses are not answered on this link
	NDP       GroupConn // nil: IPv6 addresses are not answered on this link
}

// Dialer opens the Link for the interface with the given name. DialLink is the production Dialer;
// tests wrap it (for example to open the sockets inside a network namespace) or build Links over
// test connections with NewLink.
type Dialer func(name string) (*Link, error)

// ErrNoHardwareAddr is returned for an interface without an Ethernet (6-byte) hardware address.
var ErrNoHardwareAddr = errors.New("interface has no Ethernet hardware address")

// NewLink returns a Link answering on ifi through the given sockets. Either may be nil to leave that
// family out. It is the constructor for tests; DialLink opens real sockets.
func NewLink(ifi *net.Interface, arp Conn, ndp GroupConn) (*Link, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("using interface %q: %w", ifi.Name, ErrNoHardwareAddr)
	}
	return &Link{Interface: *ifi, ARP: arp, NDP: ndp}, nil
}

// DialLink opens the two AF_PACKET sockets of the named interface: one for ARP requests and replies,
// one for IPv6 frames carrying ICMPv6 Neighbor Solicitations and Advertisements (both narrowed by a
// BPF filter in the kernel). Replies and advertisements are what other stations claim: duplicate
// address detection watches them.
// It needs CAP_NET_RAW, and opens the sockets in the calling thread's network namespace.
func DialLink(name string) (*Link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("looking up interface %q: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("using interface %q: %w", name, ErrNoHardwareAddr)
	}
	arpConn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: arpFilter()})
	if err != nil {
		return nil, fmt.Errorf("opening ARP socket on %q: %w", name, err)
	}
	ndpConn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, &packet.Config{Filter: neighborDiscoveryFilter()})
	if err != nil {
		_ = arpConn.Close()
		return nil, fmt.Errorf("opening NDP socket on %q: %w", name, err)
	}
	return NewLink(ifi, arpConn, &packetGroupConn{Conn: ndpConn, ifindex: ifi.Index})
}

// arpFilter accepts ARP requests and replies (Ethernet, IPv4) and drops every other frame in the
// kernel.
func arpFilter() []bpf.RawInstruction {
	return mustAssemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_ARP, SkipTrue: 4},
		bpf.LoadAbsolute{Off: 14 + 6, Size: 2},                  // ARP operation
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 1},    // request
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 2, SkipTrue: 1}, // reply
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
}

// neighborDiscoveryFilter accepts IPv6 frames whose next header is ICMPv6 and whose ICMPv6 type is
// Neighbor Solicitation (135) or Neighbor Advertisement (136). Messages behind extension headers
// are not seen; senders do not use them.
func neighborDiscoveryFilter() []bpf.RawInstruction {
	return mustAssemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IPV6, SkipTrue: 6},
		bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_ICMPV6, SkipTrue: 4},
		bpf.LoadAbsolute{Off: 14 + 40, Size: 1}, // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 135, SkipTrue: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 136, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
}

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(fmt.Sprintf("assembling a constant BPF program: %v", err))
	}
	return raw
}

// packetGroupConn adds link-layer multicast membership (PACKET_ADD_MEMBERSHIP) to a packet socket.
// The kernel counts memberships per socket and drops them when the socket closes.
type packetGroupConn struct {
	*packet.Conn
	ifindex int
}

func (c *packetGroupConn) JoinGroup(hw net.HardwareAddr) error {
	return c.membership(unix.PACKET_ADD_MEMBERSHIP, hw)
}

func (c *packetGroupConn) LeaveGroup(hw net.HardwareAddr) error {
	return c.membership(unix.PACKET_DROP_MEMBERSHIP, hw)
}

func (c *packetGroupConn) membership(opt int, hw net.HardwareAddr) error {
	mreq := unix.PacketMreq{Ifindex: int32(c.ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: uint16(len(hw))}
	copy(mreq.Address[:], hw)
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("getting raw socket: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, opt, &mreq)
	}); err != nil {
		return fmt.Errorf("controlling raw socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("setting multicast membership for %s: %w", hw, serr)
	}
	return nil
}
