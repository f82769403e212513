package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kinds of topology nodes the runner understands (containerlab's names).
const (
	KindLinux  = "linux"
	KindBridge = "bridge"
	KindHost   = "host"
)

// RoleLabel is the node label that tells the runner what a linux node is for.
const RoleLabel = "herald.dev/lab-role"

// Roles a linux node can have.
const (
	RoleRouter         = "router"
	RoleNode           = "node"
	RoleSegmentClient  = "segment-client"
	RoleExternalClient = "external-client"
)

// ErrTopology is wrapped by every error about the topology file.
var ErrTopology = errors.New("invalid lab topology")

// Topology is the part of a containerlab topology file the runner uses.
type Topology struct {
	Name  string
	Nodes map[string]TopoNode
	Links []Link
}

// TopoNode is one node of the topology.
type TopoNode struct {
	Name   string
	Kind   string
	Labels map[string]string
	// Exec are the node's commands, split into words (no shell).
	Exec [][]string
	// Addrs are the interface addresses the exec commands assign (`ip [-6] addr add P dev IF`).
	Addrs []IfAddr
}

// IfAddr is an address with its prefix length on one interface of a node.
type IfAddr struct {
	Iface  string
	Prefix netip.Prefix
}

// Endpoint is one end of a link: an interface of a node.
type Endpoint struct {
	Node, Iface string
}

func (e Endpoint) String() string { return e.Node + ":" + e.Iface }

// Link is a point-to-point link (a veth pair here, a veth pair in containerlab too).
type Link struct {
	A, B Endpoint
}

// clabFile mirrors the subset of containerlab's schema that the runner reads.
type clabFile struct {
	Name     string `json:"name"`
	Topology struct {
		Nodes map[string]struct {
			Kind   string            `json:"kind"`
			Labels map[string]string `json:"labels"`
			Exec   []string          `json:"exec"`
		} `json:"nodes"`
		Links []struct {
			Endpoints []string `json:"endpoints"`
		} `json:"links"`
	} `json:"topology"`
}

// LoadTopology reads and parses a topology file.
func LoadTopology(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading topology: %w", err)
	}
	t, err := ParseTopology(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTopology parses a containerlab topology and checks what the runner relies on: known kinds,
// links between declared nodes with two endpoints each, no interface used twice, and `ip addr add`
// lines with valid prefixes.
func ParseTopology(data []byte) (*Topology, error) {
	var f clabFile
	// Fields the runner does not use (image, binds, network-mode, ...) are ignored.
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTopology, err)
	}
	t := &Topology{Name: f.Name, Nodes: map[string]TopoNode{}}
	if t.Name == "" {
		return nil, fmt.Errorf("%w: name is empty", ErrTopology)
	}
	for name, n := range f.Topology.Nodes {
		if name == "" || strings.ContainsAny(name, " :/") || len(name) > 15 {
			return nil, fmt.Errorf("%w: node name %q: use at most 15 letters, digits or '-'", ErrTopology, name)
		}
		switch n.Kind {
		case KindLinux, KindBridge, KindHost:
		default:
			return nil, fmt.Errorf("%w: node %s: kind %q is not one of linux, bridge, host", ErrTopology, name, n.Kind)
		}
		tn := TopoNode{Name: name, Kind: n.Kind, Labels: n.Labels}
		for i, line := range n.Exec {
			words := strings.Fields(line)
			if len(words) == 0 {
				return nil, fmt.Errorf("%w: node %s: exec[%d] is empty", ErrTopology, name, i)
			}
			tn.Exec = append(tn.Exec, words)
			a, ok, err := parseAddrAdd(words)
			if err != nil {
				return nil, fmt.Errorf("%w: node %s: exec[%d] %q: %w", ErrTopology, name, i, line, err)
			}
			if ok {
				tn.Addrs = append(tn.Addrs, a)
			}
		}
		t.Nodes[name] = tn
	}
	used := map[Endpoint]bool{}
	for i, l := range f.Topology.Links {
		if len(l.Endpoints) != 2 {
			return nil, fmt.Errorf("%w: links[%d]: want 2 endpoints, have %d", ErrTopology, i, len(l.Endpoints))
		}
		var ends [2]Endpoint
		for j, s := range l.Endpoints {
			node, iface, ok := strings.Cut(s, ":")
			if !ok || node == "" || iface == "" || len(iface) > 15 {
				return nil, fmt.Errorf("%w: links[%d]: endpoint %q is not node:interface", ErrTopology, i, s)
			}
			if _, ok := t.Nodes[node]; !ok {
				return nil, fmt.Errorf("%w: links[%d]: endpoint %q names an undeclared node", ErrTopology, i, s)
			}
			e := Endpoint{Node: node, Iface: iface}
			if used[e] {
				return nil, fmt.Errorf("%w: links[%d]: interface %s used twice", ErrTopology, i, e)
			}
			used[e] = true
			ends[j] = e
		}
		if t.Nodes[ends[0].Node].Kind == KindBridge && t.Nodes[ends[1].Node].Kind == KindBridge {
			return nil, fmt.Errorf("%w: links[%d]: bridge-to-bridge links are not supported", ErrTopology, i)
		}
		t.Links = append(t.Links, Link{A: ends[0], B: ends[1]})
	}
	return t, nil
}

// parseAddrAdd recognises `ip [-4|-6] addr|address|a add PREFIX dev IFACE [...]`.
func parseAddrAdd(w []string) (IfAddr, bool, error) {
	if len(w) < 2 || w[0] != "ip" {
		return IfAddr{}, false, nil
	}
	rest := w[1:]
	if rest[0] == "-4" || rest[0] == "-6" {
		rest = rest[1:]
	}
	if len(rest) < 2 || !slices.Contains([]string{"a", "addr", "address"}, rest[0]) || rest[1] != "add" {
		return IfAddr{}, false, nil
	}
	rest = rest[2:]
	if len(rest) < 3 || rest[1] != "dev" {
		return IfAddr{}, false, errors.New("want `ip addr add PREFIX dev IFACE`")
	}
	p, err := netip.ParsePrefix(rest[0])
	if err != nil {
		return IfAddr{}, false, fmt.Errorf("address: %w", err)
	}
	return IfAddr{Iface: rest[2], Prefix: p}, true, nil
}

// NodesWithRole returns the names of the linux nodes labelled with role, sorted.
func (t *Topology) NodesWithRole(role string) []string {
	var out []string
	for name, n := range t.Nodes {
		if n.Kind == KindLinux && n.Labels[RoleLabel] == role {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Addr returns the first address of node's interface iface in the family of want4 (IPv4 when true).
func (t *Topology) Addr(node, iface string, want4 bool) (netip.Prefix, bool) {
	for _, a := range t.Nodes[node].Addrs {
		if a.Iface == iface && a.Prefix.Addr().Is4() == want4 {
			return a.Prefix, true
		}
	}
	return netip.Prefix{}, false
}

// Subnets returns every subnet the topology's addresses live in, masked, without duplicates.
func (t *Topology) Subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range t.Nodes {
		for _, a := range n.Addrs {
			out = append(out, a.Prefix.Masked())
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}

// HostIfaces returns the interfaces the topology makes in the root namespace (the host ends of its
// links), sorted.
func (t *Topology) HostIfaces() []string {
	var out []string
	for _, l := range t.Links {
		for _, e := range []Endpoint{l.A, l.B} {
			if t.Nodes[e.Node].Kind == KindHost {
				out = append(out, e.Iface)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
