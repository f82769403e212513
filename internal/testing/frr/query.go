package frr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Neighbor is what FRR says about one BGP neighbor (`show bgp neighbors json`).
type Neighbor struct {
	// Address of the neighbor (the map key of FRR's output).
	Address  netip.Addr
	RemoteAS uint32 `json:"remoteAs"`
	LocalAS  uint32 `json:"localAs"`
	// State is FRR's bgpState: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
	State string `json:"bgpState"`
	// PeerGroup the neighbor belongs to.
	PeerGroup string `json:"peerGroup"`
	// UpMsecs is how long the current session has been up, when the neighbor was read.
	UpMsecs int64 `json:"bgpTimerUpMsec"`
	// UpSinceEpoch is when the current session was established (Unix seconds).
	UpSinceEpoch int64 `json:"bgpTimerUpEstablishedEpoch"`
	// ConnectionsEstablished counts sessions established with this neighbor; a reset adds one.
	// A dynamic neighbor (from a listen range) is deleted when its session ends, so use UpMsecs
	// to see whether its session was reset.
	ConnectionsEstablished int `json:"connectionsEstablished"`
	ConnectionsDropped     int `json:"connectionsDropped"`
	// LastResetDueTo is FRR's reason for the last reset.
	LastResetDueTo string `json:"lastResetDueTo"`
	// LastNotificationReason is the last NOTIFICATION exchanged, as FRR names it
	// ("Cease/Administrative Shutdown"), and LastErrorCodeSubcode its code and subcode in hex
	// ("0602"). LastResetDueTo says whether it was received or sent.
	LastNotificationReason string `json:"lastNotificationReason"`
	LastErrorCodeSubcode   string `json:"lastErrorCodeSubcode"`
	// LastShutdownDescription is the Administrative Shutdown communication (RFC 9003) of the
	// last Cease NOTIFICATION received.
	LastShutdownDescription string `json:"lastShutdownDescription"`
	// RemoteRouterID is the neighbor's BGP identifier.
	RemoteRouterID string `json:"remoteRouterId"`
	// HoldTimeMsecs is the negotiated hold time.
	HoldTimeMsecs int `json:"bgpTimerHoldTimeMsecs"`
	Messages      struct {
		UpdatesRecv       int `json:"updatesRecv"`
		NotificationsRecv int `json:"notificationsRecv"`
	} `json:"messageStats"`
	AddressFamilyInfo map[string]struct {
		AcceptedPrefixCounter int `json:"acceptedPrefixCounter"`
		SentPrefixCounter     int `json:"sentPrefixCounter"`
	} `json:"addressFamilyInfo"`
}

// Established reports whether the session is up.
func (n Neighbor) Established() bool { return n.State == "Established" }

// Neighbors returns every neighbor bgpd knows, dynamic ones included, keyed by address.
func (r *Router) Neighbors(ctx context.Context) (map[netip.Addr]Neighbor, error) {
	var raw map[string]json.RawMessage
	if err := r.VtyshJSON(ctx, "show bgp neighbors json", &raw); err != nil {
		return nil, err
	}
	return parseNeighbors(raw)
}

func parseNeighbors(raw map[string]json.RawMessage) (map[netip.Addr]Neighbor, error) {
	out := make(map[netip.Addr]Neighbor, len(raw))
	for k, v := range raw {
		addr, err := netip.ParseAddr(k)
		if err != nil {
			continue // peer-group summaries and other non-address keys
		}
		var n Neighbor
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("decoding neighbor %s: %w", k, err)
		}
		n.Address = addr
		out[addr] = n
	}
	return out, nil
}

// Path is one BGP path FRR holds for a prefix (`show bgp <afi> unicast <prefix> json`).
type Path struct {
	// Peer the path came from.
	Peer netip.Addr
	// NextHops of the path; for IPv6 both the global and (if sent) the link-local one.
	NextHops []netip.Addr
	// ASPath as FRR prints it ("64512").
	ASPath string
	// Communities as FRR prints them ("64512:100 no-export"); empty when none.
	Communities []string
	// LargeCommunities as FRR prints them ("64512:1:2").
	LargeCommunities []string
	// LocalPref is set when the path carries LOCAL_PREF (iBGP).
	LocalPref *uint32
	Best      bool
	Multipath bool
	// Stale is set while bgpd keeps the path through the peer's graceful restart (RFC 4724).
	Stale bool
}

type jsonPath struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	LocPrf   *uint32 `json:"locPrf"`
	Bestpath *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	Multipath bool `json:"multipath"`
	Stale     bool `json:"stale"`
	NextHops  []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
}

// Paths returns every path bgpd holds for exactly prefix; none (no error) when it has none.
func (r *Router) Paths(ctx context.Context, prefix netip.Prefix) ([]Path, error) {
	afi := "ipv4"
	if prefix.Addr().Is6() {
		afi = "ipv6"
	}
	var raw struct {
		Prefix string     `json:"prefix"`
		Paths  []jsonPath `json:"paths"`
	}
	if err := r.VtyshJSON(ctx, fmt.Sprintf("show bgp %s unicast %s json", afi, prefix.Masked()), &raw); err != nil {
		return nil, err
	}
	if raw.Prefix != prefix.Masked().String() {
		return nil, nil // FRR answers {} for an unknown prefix, or the longest match when not exact
	}
	return convertPaths(raw.Paths), nil
}

func convertPaths(in []jsonPath) []Path {
	var out []Path
	for _, jp := range in {
		p := Path{ASPath: jp.ASPath.String, LocalPref: jp.LocPrf, Multipath: jp.Multipath, Stale: jp.Stale}
		p.Peer, _ = netip.ParseAddr(jp.Peer.PeerID)
		if jp.Bestpath != nil {
			p.Best = jp.Bestpath.Overall
		}
		if jp.Community != nil {
			p.Communities = strings.Fields(jp.Community.String)
		}
		if jp.LargeCommunity != nil {
			p.LargeCommunities = strings.Fields(jp.LargeCommunity.String)
		}
		for _, nh := range jp.NextHops {
			if a, err := netip.ParseAddr(nh.IP); err == nil {
				p.NextHops = append(p.NextHops, a)
			}
		}
		out = append(out, p)
	}
	return out
}

// KernelNextHops returns the gateways of the kernel route for exactly prefix in the router's
// namespace (what zebra installed), sorted; none when there is no such route.
func (r *Router) KernelNextHops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, "ip", fam, "-json", "route", "show", "exact", prefix.Masked().String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("reading kernel route %s in %s: %w: %s", prefix, r.ns, err, strings.TrimSpace(string(out)))
	}
	return parseKernelRoutes(out)
}

func parseKernelRoutes(out []byte) ([]netip.Addr, error) {
	// An IPv4 route with an IPv6 next hop (RFC 8950, BGP unnumbered) has "via" instead of
	// "gateway".
	type hop struct {
		Gateway string `json:"gateway"`
		Via     struct {
			Host string `json:"host"`
		} `json:"via"`
	}
	var routes []struct {
		hop
		NextHops []hop `json:"nexthops"`
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("decoding ip route output: %w: %.300s", err, out)
	}
	var hops []netip.Addr
	for _, rt := range routes {
		for _, h := range append([]hop{rt.hop}, rt.NextHops...) {
			for _, g := range []string{h.Gateway, h.Via.Host} {
				if a, err := netip.ParseAddr(g); err == nil {
					hops = append(hops, a)
				}
			}
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return slices.Compact(hops), nil
}

// WaitKernelNextHops polls the kernel table every interval (5 ms when 0) until the route for
// prefix has exactly the next hops want (none: the route is gone), and returns when that was
// first seen. The error says what was last seen when ctx ends first.
func (r *Router) WaitKernelNextHops(ctx context.Context, prefix netip.Prefix, want []netip.Addr, interval time.Duration) (time.Time, error) {
	if interval == 0 {
		interval = 5 * time.Millisecond
	}
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	var last []netip.Addr
	var seen time.Time
	err := wait.PollUntilContextCancel(ctx, interval, true, func(context.Context) (bool, error) {
		got, err := r.KernelNextHops(ctx, prefix)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		last, seen = got, time.Now()
		return slices.Equal(got, want), nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("waiting for kernel route %s via %v (last seen via %v): %w", prefix, want, last, err)
	}
	return seen, nil
}

// WaitEstablished polls until n neighbors are Established and returns them.
func (r *Router) WaitEstablished(ctx context.Context, n int) (map[netip.Addr]Neighbor, error) {
	var last map[netip.Addr]Neighbor
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		ns, err := r.Neighbors(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		last = ns
		up := 0
		for _, nb := range ns {
			if nb.Established() {
				up++
			}
		}
		return up >= n, nil
	})
	if err != nil {
		var states []string
		for a, nb := range last {
			states = append(states, fmt.Sprintf("%s=%s(%s)", a, nb.State, nb.LastResetDueTo))
		}
		slices.Sort(states)
		return nil, fmt.Errorf("waiting for %d established neighbors (have %v): %w", n, states, err)
	}
	return last, nil
}

// BFDPeer is what bfdd says about one BFD session (`show bfd peers json`).
type BFDPeer struct {
	Peer             netip.Addr `json:"peer"`
	Local            string     `json:"local"`
	Multihop         bool       `json:"multihop"`
	Passive          bool       `json:"passive-mode"`
	Status           string     `json:"status"` // "up", "down", "init", "shutdown"
	Diagnostic       string     `json:"diagnostic"`
	RemoteDiagnostic string     `json:"remote-diagnostic"`
	// Intervals in milliseconds: this router's and those the peer advertises.
	ReceiveInterval        int `json:"receive-interval"`
	TransmitInterval       int `json:"transmit-interval"`
	DetectMultiplier       int `json:"detect-multiplier"`
	RemoteReceiveInterval  int `json:"remote-receive-interval"`
	RemoteTransmitInterval int `json:"remote-transmit-interval"`
	RemoteDetectMultiplier int `json:"remote-detect-multiplier"`
}

// BFDPeers returns bfdd's BFD sessions (Config.BFD must be set), keyed by peer address.
func (r *Router) BFDPeers(ctx context.Context) (map[netip.Addr]BFDPeer, error) {
	out, err := r.VtyshDaemon(ctx, "bfdd", "show bfd peers json")
	if err != nil {
		return nil, err
	}
	var peers []BFDPeer
	if err := json.Unmarshal([]byte(out), &peers); err != nil {
		return nil, fmt.Errorf("parsing bfdd's peers: %w", err)
	}
	m := make(map[netip.Addr]BFDPeer, len(peers))
	for _, p := range peers {
		m[p.Peer] = p
	}
	return m, nil
}
