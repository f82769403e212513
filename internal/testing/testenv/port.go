package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that was free a moment ago for both TCP and UDP (memberlist
// takes both). Another process may take it before the caller does; tests that start a server on
// it take that small risk.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err != nil {
			continue // the UDP port is taken: another one
		}
		_ = u.Close()
		return port
	}
	tb.Fatal("no port of 127.0.0.1 free for both TCP and UDP in 20 tries")
	return 0
}
