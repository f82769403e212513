package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// GoBGP retries a failing TCP connection silently: no peer event, no state change, only a debug
// log line. So that an operator still learns why a session does not come up, the speaker checks
// the connection itself while a session is not Established: it dials the peer as GoBGP does
// (source address, port, TCP MD5 key, TTL) and closes the connection at once. A check that
// connects says that the problem is above TCP (the BGP OPEN exchange).

// Timing of the connection check.
const (
	// checkDelay is how long after a session is configured or goes down its connection is
	// first checked, if it is not Established by then: GoBGP's own first attempt comes first.
	checkDelay = 3 * time.Second
	// checkInterval is how often the check repeats while the session stays down.
	checkInterval = 30 * time.Second
	// checkTimeout bounds one check.
	checkTimeout = 5 * time.Second
)

// connectOK is what checkConnect says when a TCP connection to the peer works.
const connectOK = "TCP connects to the peer, but the BGP session does not come up: the peer may refuse the OPEN (check myASN, peerASN and that the peer accepts this node)"

// checkConnect dials p as GoBGP would and describes the outcome: connectOK, or why there is no
// TCP connection, in a sentence an operator can act on.
func checkConnect(ctx context.Context, p Peer, timeout time.Duration) string {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1, Control: dialControl(p)}
	if p.SourceAddress.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: p.SourceAddress.Unmap().AsSlice()}
	}
	port := p.Port
	if port == 0 {
		port = 179
	}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.Address.Unmap().String(), strconv.Itoa(int(port))))
	if err == nil {
		_ = conn.Close()
		return connectOK
	}
	return describeConnectError(err, p.Password != "")
}

// describeConnectError turns a failed TCP connect into a sentence an operator can act on. A peer
// that expects another TCP MD5 password (or none) silently drops our SYNs, so a timeout is the
// only trace of a wrong password.
func describeConnectError(err error, password bool) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		if password {
			return fmt.Sprintf("no TCP connection: %v (peer unreachable, not accepting BGP, or TCP MD5 password mismatch)", err)
		}
		return fmt.Sprintf("no TCP connection: %v (peer unreachable, or it drops our SYNs: it may expect a TCP MD5 password)", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("no TCP connection: %v (nothing listens on the peer's BGP port)", err)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("no TCP connection: %v (no route to the peer, or it does not answer ARP/NDP)", err)
	default:
		return fmt.Sprintf("no TCP connection: %v", err)
	}
}

// dialControl sets on the check's socket what GoBGP sets on its own: the TCP MD5 key for the
// peer's address, the TTL (1 for a single-hop eBGP peer, 255 with multihop) and the VRF device.
func dialControl(p Peer) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			if p.Password != "" {
				if sockErr = setMD5(int(fd), p.Address.Unmap(), p.Password); sockErr != nil {
					return
				}
			}
			if p.VRF != "" {
				if sockErr = os.NewSyscallError("setsockopt SO_BINDTODEVICE "+p.VRF, unix.BindToDevice(int(fd), p.VRF)); sockErr != nil {
					return
				}
			}
			ttl := 0
			switch {
			case p.PeerASN == 0 && p.EBGPMultiHop: // GoBGP: TTL security without a minimum
				ttl = 255
			case p.PeerASN == 0: // GoBGP sets no TTL for a peer of any AS
			case !p.ibgp():
				ttl = 1
				if p.EBGPMultiHop {
					ttl = 255
				}
			}
			if ttl != 0 {
				level, name := unix.IPPROTO_IP, unix.IP_TTL
				if !p.Address.Unmap().Is4() {
					level, name = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
				}
				sockErr = os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(fd), level, name, ttl))
			}
		})
		if err != nil {
			return err
		}
		return sockErr
	}
}

// setMD5 sets the TCP MD5 signature key (RFC 2385) for peer on the socket fd.
func setMD5(fd int, peer netip.Addr, key string) error {
	sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
	copy(sig.Key[:], key)
	if peer.Is4() {
		sig.Addr.Family = unix.AF_INET
		b := peer.As4()
		copy(sig.Addr.Data[2:], b[:])
	} else {
		sig.Addr.Family = unix.AF_INET6
		b := peer.As16()
		copy(sig.Addr.Data[6:], b[:])
	}
	return os.NewSyscallError("setsockopt TCP_MD5SIG", unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig))
}
