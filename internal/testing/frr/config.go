package frr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is what the generated bgpd configuration says. Every peer group is activated for both
// ipv4-unicast and ipv6-unicast, so a session over either family carries routes of both.
type Config struct {
	// Hostname names the router in FRR's output; "herald-frr" when empty.
	Hostname string
	// ASN of the router.
	ASN uint32
	// RouterID of the router; required.
	RouterID netip.Addr
	// Groups of peers, one FRR peer-group each.
	Groups []PeerGroup
	// MaximumPaths installs up to this many equal paths (eBGP and iBGP) in the kernel; 8 when 0.
	MaximumPaths int
	// Networks the router originates itself (import check off), for tests that check that a
	// speaker imports nothing.
	Networks []netip.Prefix
	// Extra lines added at the end of the `router bgp` block, for what this type does not cover.
	Extra []string
	// BFD also starts bfdd, so BFD sessions can be configured (`vtysh -c 'show bfd peers'`).
	BFD bool
	// BFDProfiles are written into bfdd's configuration (they need BFD); peer groups name them.
	BFDProfiles []BFDProfile
}

// BFDProfile is one bfdd `profile`: the timers of the BFD sessions that name it.
type BFDProfile struct {
	// Name of the profile (letters, digits, '-' and '_').
	Name string
	// ReceiveInterval and TransmitInterval in whole milliseconds; FRR's 300 ms when 0.
	ReceiveInterval, TransmitInterval time.Duration
	// DetectMultiplier; FRR's 3 when 0.
	DetectMultiplier int
	// Passive makes bfdd wait for the peer's first packet.
	Passive bool
}

// RenderBFD returns bfdd's configuration file for c.
func (c Config) RenderBFD() (string, error) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("hostname %s", c.hostname())
	w("debug bfd peer")
	w("debug bfd network")
	if len(c.BFDProfiles) == 0 {
		return b.String(), nil
	}
	w("bfd")
	for _, p := range c.BFDProfiles {
		if p.Name == "" || strings.ContainsAny(p.Name, " \t\n!") {
			return "", fmt.Errorf("%w: BFD profile name %q", ErrInvalidConfig, p.Name)
		}
		w(" profile %s", p.Name)
		if p.ReceiveInterval > 0 {
			w("  receive-interval %d", p.ReceiveInterval.Milliseconds())
		}
		if p.TransmitInterval > 0 {
			w("  transmit-interval %d", p.TransmitInterval.Milliseconds())
		}
		if p.DetectMultiplier > 0 {
			w("  detect-multiplier %d", p.DetectMultiplier)
		}
		if p.Passive {
			w("  passive-mode")
		}
		w(" exit")
	}
	w("exit")
	w("!")
	return b.String(), nil
}

// PeerGroup is one FRR peer-group: dynamic neighbors accepted from ListenRanges and/or static
// Neighbors, all with the same remote AS, password and timers.
type PeerGroup struct {
	// Name of the peer-group (letters, digits, '-' and '_').
	Name string
	// RemoteASN of the group's peers; 0 means "external" (any AS but the router's). Equal to
	// Config.ASN makes the group iBGP.
	RemoteASN uint32
	// ListenRanges accept sessions from any address inside them (`bgp listen range`).
	ListenRanges []netip.Prefix
	// Neighbors are static neighbors of the group.
	Neighbors []netip.Addr
	// Password enables TCP MD5 with this password when not empty.
	Password string
	// KeepaliveTime and HoldTime set `timers` when both are non-zero (whole seconds).
	KeepaliveTime, HoldTime time.Duration
	// ConnectTime sets `timers connect` when non-zero (whole seconds).
	ConnectTime time.Duration
	// Passive makes FRR wait for the peers to connect (`passive`).
	Passive bool
	// BFD runs BFD with the group's peers (`neighbor G bfd`), with the named BFD profile when
	// BFDProfile is set (Config.BFD must be set for bfdd to run).
	BFD        bool
	BFDProfile string
	// UpdateSource sets the group's source address (`update-source`) when valid. With BFD it
	// spares FRR 8.4's bgpd a race: without it bgpd registers each BFD session with bfdd
	// without a source, then replaces it with the connection's; after a quick flap it
	// sometimes removes the first and never sends the second, and bfdd then has no session
	// while BGP is Established.
	UpdateSource netip.Addr
}

// ErrInvalidConfig is wrapped by every error Render returns.
var ErrInvalidConfig = errors.New("invalid FRR config")

// Render returns the bgpd configuration file for c.
func (c Config) Render() (string, error) {
	if c.ASN == 0 {
		return "", fmt.Errorf("%w: ASN is 0", ErrInvalidConfig)
	}
	if !c.RouterID.Is4() {
		return "", fmt.Errorf("%w: router ID %v is not an IPv4 address", ErrInvalidConfig, c.RouterID)
	}
	host := c.Hostname
	if host == "" {
		host = "herald-frr"
	}
	paths := c.MaximumPaths
	if paths == 0 {
		paths = 8
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("frr defaults traditional")
	w("hostname %s", host)
	w("!")
	w("router bgp %d", c.ASN)
	w(" bgp router-id %s", c.RouterID)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	w(" no bgp network import-check")
	w(" bgp bestpath as-path multipath-relax")
	for _, g := range c.Groups {
		if g.Name == "" || strings.ContainsAny(g.Name, " \t\n!") {
			return "", fmt.Errorf("%w: peer-group name %q", ErrInvalidConfig, g.Name)
		}
		remote := "external"
		if g.RemoteASN != 0 {
			remote = fmt.Sprint(g.RemoteASN)
		}
		w(" neighbor %s peer-group", g.Name)
		w(" neighbor %s remote-as %s", g.Name, remote)
		if g.Password != "" {
			if strings.ContainsAny(g.Password, " \t\n") {
				return "", fmt.Errorf("%w: peer-group %s: password contains white space", ErrInvalidConfig, g.Name)
			}
			w(" neighbor %s password %s", g.Name, g.Password)
		}
		if g.KeepaliveTime > 0 && g.HoldTime > 0 {
			w(" neighbor %s timers %d %d", g.Name, int(g.KeepaliveTime.Seconds()), int(g.HoldTime.Seconds()))
		}
		if g.ConnectTime > 0 {
			w(" neighbor %s timers connect %d", g.Name, int(g.ConnectTime.Seconds()))
		}
		if g.Passive {
			w(" neighbor %s passive", g.Name)
		}
		if g.UpdateSource.IsValid() {
			w(" neighbor %s update-source %s", g.Name, g.UpdateSource)
		}
		if g.BFD {
			w(" neighbor %s bfd", g.Name)
			if g.BFDProfile != "" {
				w(" neighbor %s bfd profile %s", g.Name, g.BFDProfile)
			}
		}
		for _, p := range g.ListenRanges {
			w(" bgp listen range %s peer-group %s", p.Masked(), g.Name)
		}
		for _, a := range g.Neighbors {
			w(" neighbor %s peer-group %s", a, g.Name)
		}
	}
	for _, fam := range []struct {
		name string
		is4  bool
	}{{"ipv4", true}, {"ipv6", false}} {
		w(" !")
		w(" address-family %s unicast", fam.name)
		w("  maximum-paths %d", paths)
		w("  maximum-paths ibgp %d", paths)
		for _, g := range c.Groups {
			w("  neighbor %s activate", g.Name)
		}
		for _, n := range c.Networks {
			if n.Addr().Is4() == fam.is4 {
				w("  network %s", n.Masked())
			}
		}
		w(" exit-address-family")
	}
	for _, l := range c.Extra {
		w(" %s", l)
	}
	w("exit")
	w("!")
	return b.String(), nil
}
