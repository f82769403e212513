package bgp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListenFor(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")
	tests := []struct {
		name      string
		cfg       Config
		listening bool // a running server already holds the listener
		want      listen
	}{
		{name: "no port: no listener", cfg: Config{NodeIPv4: v4, NodeIPv6: v6}},
		{name: "both node addresses", cfg: Config{NodeIPv4: v4, NodeIPv6: v6, ListenPort: 179}, want: listen{port: 179, addrs: []netip.Addr{v4, v6}}},
		{name: "IPv6 node", cfg: Config{NodeIPv6: v6, ListenPort: 1179}, want: listen{port: 1179, addrs: []netip.Addr{v6}}},
		{name: "no node address: no listener on every address", cfg: Config{ListenPort: 179}},
		{name: "held by another server", cfg: Config{NodeIPv4: v4, ListenPort: 179}, listening: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Speaker{cfg: tt.cfg, servers: map[serverKey]*server{}}
			if tt.listening {
				s.servers[serverKey{asn: 64512}] = &server{listen: listen{port: 179, addrs: []netip.Addr{v4}}}
			}
			if diff := cmp.Diff(tt.want, s.listenFor(), cmp.AllowUnexported(listen{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("listenFor() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsListenPort(t *testing.T) {
	for _, port := range []int{-1, 65536} {
		_, err := New(Config{ListenPort: port})
		if err == nil {
			t.Errorf("New with ListenPort %d: no error, want one naming the port", port)
		}
	}
	if _, err := New(Config{ListenPort: 179}); err != nil {
		t.Errorf("New with ListenPort 179: %v", err)
	}
}

// TestListenPortTaken checks that a listen port another program holds costs no session: the
// server starts without the listener and opens its sessions itself.
func TestListenPortTaken(t *testing.T) {
	r := newTestRouter(t, netip.MustParseAddr("127.0.0.7"), 64500)
	taken, err := net.Listen("tcp", netip.AddrPortFrom(speakerSource, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	s, err := New(Config{RouterID: netip.MustParseAddr("198.51.100.10"), NodeIPv4: speakerSource, ListenPort: port, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, s.SetRoutes(ctx, Routes{"r": {{Prefix: pfx("203.0.113.9/32")}}}))
	must(t, s.SetPeers(ctx, []Peer{r.peer("r")}))
	r.waitReceived(t, map[string]string{"203.0.113.9/32": "via 127.0.0.1"})
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sv := range s.servers {
		if sv.listen.port != 0 {
			t.Errorf("server %v listens on %v, want no listener (the port is taken)", k, sv.listen)
		}
	}
}
