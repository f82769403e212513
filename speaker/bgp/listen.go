package bgp

// Accepting BGP connections. GoBGP v4.8.0 makes its first connection attempt to a neighbour
// 1.5-2 s after the neighbour is added (pkg/server/fsm.go, connectLoop: the first wait is
// 0.75-1.0 x minConnectRetryInterval, a constant 2 s, whatever the neighbour's ConnectRetry,
// and a reset, EnablePeer or a new outgoing connection manager starts that wait again), and its
// API takes connections only from its own listener. So a session can come up sooner only when
// the router connects: with Config.ListenPort, the speaker accepts connections on the node's
// addresses, and a router that has the node as a neighbour opens the session at its next
// attempt (FRR: every `timers connect` seconds, at least 1), whichever side is first.

import (
	"fmt"
	"net/netip"
)

// listen is where a GoBGP server accepts BGP connections: nowhere when port is 0.
type listen struct {
	port  int32
	addrs []netip.Addr
}

// validListenPort checks Config.ListenPort.
func validListenPort(port int) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("BGP listen port %d: must be 0 (do not accept connections) or a TCP port, usually 179", port)
	}
	return nil
}

// listenFor returns where a server started now accepts connections: on the node's addresses
// at Config.ListenPort, unless no port or no node address is configured or a running server
// already holds that listener (one socket per address and port: with several servers, those of
// several local ASNs or router IDs, only the first one accepts connections). Callers hold mu.
func (s *Speaker) listenFor() listen {
	if s.cfg.ListenPort == 0 {
		return listen{}
	}
	for _, sv := range s.servers {
		if sv.listen.port != 0 {
			return listen{}
		}
	}
	l := listen{port: int32(s.cfg.ListenPort)}
	for _, a := range []netip.Addr{s.cfg.NodeIPv4, s.cfg.NodeIPv6} {
		if a.IsValid() {
			l.addrs = append(l.addrs, a)
		}
	}
	if len(l.addrs) == 0 {
		return listen{}
	}
	return l
}
