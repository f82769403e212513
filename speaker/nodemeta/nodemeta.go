// Package nodemeta owns the format of what a speaker gossips about its node in its memberlist
// metadata: whether it can answer (its readiness) and the interfaces it can answer on. Election
// reads it for every other node, so it holds exactly what election needs and nothing that grows
// with the host: the selected interfaces only (a few names), never the host's list of links.
//
// # Format
//
// The metadata is a JSON object of at most [MaxSize] bytes (memberlist's limit):
//
//		{"v":2,"ready":true,"ifaces":["eth0","vlan20"],"dflt":["eth0"],"macs":["02:00:5e:10:00:01"]}
//
//	  - v: the format version, [Version]. Absent in the metadata of speakers from before readiness
//	    existed ("legacy").
//	  - ready: the speaker has a valid configuration, knows the other speakers (or knows it is
//	    alone) and has set up its responders. A speaker that is not ready publishes no interfaces.
//	  - ifaces: the interfaces the node can answer on now (up, and opened by its responders): its
//	    default interfaces and those the configuration's advertisements name. An advertisement that
//	    names interfaces may use the node when one of them is listed.
//	  - dflt: those of ifaces chosen by the default rule (the interfaces holding the node's
//	    addresses and those of its default routes). An advertisement that names no interface may
//	    use the node when this list is not empty.
//	  - macs: the hardware addresses of those interfaces (Ethernet, lower case), so that the other
//	    speakers' duplicate address detection tells this speaker from a foreign host as soon as it
//	    joins, before it has written any status object. Added within version 2: readers that do
//	    not know the key ignore it. Election does not read it.
//
// The size is bounded whatever the host looks like: at most [MaxDefaults] default interfaces are
// published, the others come from the configuration, the hardware addresses come last, and
// [Encode] drops what does not fit (and says so) rather than exceed [MaxSize].
//
// # Mixed versions during a rolling upgrade
//
// Legacy speakers publish {"ifaces":[...]} with every interface they answer on, and count a live
// member as eligible when it lists an interface. [Decode] reads that format the same way: a legacy
// speaker is ready when it lists an interface, and its list stands for both its default and its
// named interfaces. In the other direction, a legacy speaker reading this format sees "ifaces" and
// ignores the other keys; since a speaker that is not ready publishes no interfaces, legacy
// speakers never elect it either. Old and new speakers therefore elect the same owners, except
// for a node with named interfaces up but no default one (legacy speakers count it for
// advertisements without interfaces; new ones do not), which only matters until the upgrade ends.
//
// Later versions may add keys; they must keep the meaning of these ones.
//
// The package is pure: standard library only.
package nodemeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	// Version is the format version Encode writes.
	Version = 2
	// MaxSize is the largest metadata memberlist gossips (memberlist.MetaMaxSize).
	MaxSize = 512
	// MaxDefaults bounds the default interfaces published; a node has one or two in practice.
	MaxDefaults = 4
	// maxNameLen is the longest Linux interface name (IFNAMSIZ-1).
	maxNameLen = 15
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrInvalid is wrapped by Decode for metadata it cannot read.
	ErrInvalid = errors.New("invalid speaker metadata")
	// ErrTruncated is wrapped by Encode when interfaces were left out to respect MaxSize.
	ErrTruncated = errors.New("speaker metadata truncated")
)

// Meta is what one speaker says about its node.
type Meta struct {
	// Version of the format read; 0 for legacy metadata.
	Version int
	// Ready: the speaker can answer (see the package documentation).
	Ready bool
	// Interfaces the node can answer on, sorted. Empty when not Ready.
	Interfaces []string
	// Defaults are those of Interfaces chosen by the default rule, sorted.
	Defaults []string
	// MACs are the hardware addresses of the interfaces (EUI-48, as net.HardwareAddr.String writes
	// them), sorted. Empty when not Ready.
	MACs []string
}

// wire is the JSON form.
type wire struct {
	V      int      `json:"v,omitempty"`
	Ready  bool     `json:"ready,omitempty"`
	Ifaces []string `json:"ifaces,omitempty"`
	Dflt   []string `json:"dflt,omitempty"`
	MACs   []string `json:"macs,omitempty"`
}

// Equal reports whether two Metas say the same.
func (m Meta) Equal(o Meta) bool {
	return m.Ready == o.Ready && slices.Equal(m.Interfaces, o.Interfaces) && slices.Equal(m.Defaults, o.Defaults) &&
		slices.Equal(m.MACs, o.MACs)
}

// Encode returns the metadata for m in the current format, never longer than MaxSize. A Meta
// that is not Ready is encoded without interfaces. Defaults beyond MaxDefaults, and interfaces
// that do not fit, are left out: the result is still usable, and the error (wrapping
// ErrTruncated) names what was dropped. Invalid names are dropped the same way.
func Encode(m Meta) ([]byte, error) {
	w := wire{V: Version, Ready: m.Ready}
	var dropped []string
	if m.Ready {
		valid := func(names []string) []string {
			var out []string
			for _, n := range canonical(names) {
				if validName(n) != nil {
					dropped = append(dropped, fmt.Sprintf("%q (invalid name)", n))
					continue
				}
				out = append(out, n)
			}
			return out
		}
		ifaces := valid(m.Interfaces)
		defaults := slices.DeleteFunc(valid(m.Defaults), func(n string) bool { return !slices.Contains(ifaces, n) })
		if len(defaults) > MaxDefaults {
			for _, n := range defaults[MaxDefaults:] {
				dropped = append(dropped, fmt.Sprintf("%q (more than %d default interfaces)", n, MaxDefaults))
			}
			defaults = defaults[:MaxDefaults]
		}
		// Defaults first, then the other interfaces while they fit.
		w.Dflt = defaults
		w.Ifaces = slices.Clone(defaults)
		size := encodedLen(w)
		for _, n := range ifaces {
			if !slices.Contains(defaults, n) && !appendFitting(&w.Ifaces, "ifaces", n, &size) {
				dropped = append(dropped, fmt.Sprintf("%q (no room left)", n))
			}
		}
		slices.Sort(w.Ifaces)
		if len(w.Ifaces) == 0 {
			w.Ifaces, w.Dflt = nil, nil
		}
		// The hardware addresses last, while they fit: election does not need them.
		size = encodedLen(w)
		for _, raw := range canonical(m.MACs) {
			mac, err := canonicalMAC(raw)
			if err != nil {
				dropped = append(dropped, fmt.Sprintf("hardware address %q (%v)", raw, err))
				continue
			}
			if !slices.Contains(w.MACs, mac) && !appendFitting(&w.MACs, "macs", mac, &size) {
				dropped = append(dropped, fmt.Sprintf("hardware address %s (no room left)", mac))
			}
		}
		slices.Sort(w.MACs)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding speaker metadata: %w", err)
	}
	if len(b) > MaxSize { // unreachable: the sizes above are exact
		return nil, fmt.Errorf("encoding speaker metadata: %d bytes, at most %d", len(b), MaxSize)
	}
	if len(dropped) > 0 {
		return b, fmt.Errorf("%w: left out %s", ErrTruncated, strings.Join(dropped, ", "))
	}
	return b, nil
}

// Decode reads metadata in the current or the legacy format (see the package documentation).
// Empty metadata (a speaker that has published nothing yet) is a Meta that is not Ready.
func Decode(b []byte) (Meta, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Meta{}, nil
	}
	if len(b) > MaxSize {
		return Meta{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(b), MaxSize)
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for _, n := range append(slices.Clone(w.Ifaces), w.Dflt...) {
		if err := validName(n); err != nil {
			return Meta{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	m := Meta{Version: w.V}
	switch {
	case w.V == 0: // legacy: every listed interface, ready when there is one
		m.Interfaces = canonical(w.Ifaces)
		m.Defaults = slices.Clone(m.Interfaces)
		m.Ready = len(m.Interfaces) > 0
	case w.V < Version:
		return Meta{}, fmt.Errorf("%w: unknown version %d", ErrInvalid, w.V)
	default:
		m.Ready = w.Ready
		if m.Ready {
			m.Interfaces = canonical(w.Ifaces)
			m.Defaults = canonical(w.Dflt)
			for _, n := range m.Defaults {
				if !slices.Contains(m.Interfaces, n) {
					return Meta{}, fmt.Errorf("%w: default interface %q is not among the interfaces %q", ErrInvalid, n, m.Interfaces)
				}
			}
			for _, raw := range w.MACs {
				mac, err := canonicalMAC(raw)
				if err != nil {
					return Meta{}, fmt.Errorf("%w: hardware address %q: %w", ErrInvalid, raw, err)
				}
				m.MACs = append(m.MACs, mac)
			}
			m.MACs = canonical(m.MACs)
		}
	}
	return m, nil
}

// appendFitting appends v to *list, the array under key of a JSON object of *size bytes (the key
// absent while the array is empty), when the object stays within MaxSize, and reports whether it
// did.
func appendFitting(list *[]string, key, v string, size *int) bool {
	grow := encodedLen(v) + 1 // the value and a comma
	if len(*list) == 0 {
		grow = encodedLen(v) + len(`,"":[]`) + len(key)
	}
	if *size+grow > MaxSize {
		return false
	}
	*list = append(*list, v)
	*size += grow
	return true
}

// encodedLen is the length of v in JSON.
func encodedLen(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

// validName checks what Linux allows in an interface name.
func validName(n string) error {
	switch {
	case n == "" || len(n) > maxNameLen:
		return fmt.Errorf("interface name %q: want 1 to %d bytes", n, maxNameLen)
	case n == "." || n == "..":
		return fmt.Errorf("interface name %q is reserved", n)
	case strings.ContainsFunc(n, func(r rune) bool { return r == '/' || r == ':' || r <= ' ' || r == 0x7f || r > 0x7e }):
		return fmt.Errorf("interface name %q: only printable ASCII without '/', ':' or spaces", n)
	}
	return nil
}

// canonicalMAC returns an EUI-48 hardware address (six hexadecimal bytes separated by ':' or '-')
// in the form net.HardwareAddr.String writes: lower case, separated by ':'. The package parses it
// itself: a pure core imports no package net.
func canonicalMAC(s string) (string, error) {
	const form = "want six hexadecimal bytes separated by ':' (aa:bb:cc:dd:ee:ff)"
	if len(s) != 17 || (s[2] != ':' && s[2] != '-') {
		return "", errors.New(form)
	}
	out := make([]byte, len(s))
	for i := range len(s) {
		c := s[i]
		switch {
		case i%3 == 2:
			if c != s[2] {
				return "", errors.New(form)
			}
			c = ':'
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", errors.New(form)
		}
		out[i] = c
	}
	return string(out), nil
}

// canonical returns names sorted without duplicates, nil when empty.
func canonical(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
