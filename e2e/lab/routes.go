package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// ErrOverlap means a lab subnet overlaps a route of the host, so starting the lab could cut the
// host off its own network.
var ErrOverlap = errors.New("lab subnet overlaps a route of the host")

// HostRoute is one route of the root namespace's main table.
type HostRoute struct {
	Dst netip.Prefix
	Dev string
}

// CheckOverlap returns an error naming every lab prefix that overlaps a host route. Default routes
// are ignored: everything overlaps them, and they are what lab traffic must not need.
func CheckOverlap(labPrefixes []netip.Prefix, host []HostRoute) error {
	var errs []error
	for _, p := range labPrefixes {
		for _, r := range host {
			if r.Dst.Bits() == 0 {
				continue
			}
			if p.Overlaps(r.Dst) {
				errs = append(errs, fmt.Errorf("%w: %s overlaps %s dev %s", ErrOverlap, p, r.Dst, r.Dev))
			}
		}
	}
	return errors.Join(errs...)
}

// ReadHostRoutes reads the IPv4 and IPv6 routes of the root namespace's main table.
func ReadHostRoutes() ([]HostRoute, error) {
	var out []HostRoute
	for _, fam := range []string{"-4", "-6"} {
		data, err := exec.Command("ip", fam, "-json", "route", "show", "table", "main").Output()
		if err != nil {
			return nil, fmt.Errorf("reading host routes (ip %s route): %w", fam, err)
		}
		rs, err := parseRoutes(data, fam == "-6")
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func parseRoutes(data []byte, v6 bool) ([]HostRoute, error) {
	var raw []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decoding ip route output: %w", err)
	}
	var out []HostRoute
	for _, r := range raw {
		var p netip.Prefix
		var err error
		switch {
		case r.Dst == "default" && v6:
			p = netip.MustParsePrefix("::/0")
		case r.Dst == "default":
			p = netip.MustParsePrefix("0.0.0.0/0")
		case strings.Contains(r.Dst, "/"):
			p, err = netip.ParsePrefix(r.Dst)
		default:
			var a netip.Addr
			a, err = netip.ParseAddr(r.Dst)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			continue // multicast/unreachable entries with odd destinations; not lab-relevant
		}
		out = append(out, HostRoute{Dst: p.Masked(), Dev: r.Dev})
	}
	return out, nil
}
