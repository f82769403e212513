package layer2

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// HostLink is one network interface of the host, as the selection rule sees it.
type HostLink struct {
	Index int
	Name  string
	// Up is true when the interface is administratively up and has a carrier (operationally up,
	// or of a kind that does not report its operational state).
	Up bool
	// Ethernet is true when the interface has a 6-byte hardware address.
	Ethernet bool
	Loopback bool
	// Addrs are the interface's addresses.
	Addrs []netip.Addr
}

// usable reports whether layer 2 can answer on the link at all.
func (l HostLink) usable() bool { return l.Up && l.Ethernet && !l.Loopback }

// Host is a snapshot of the host's interfaces and default routes ([Netlink.Scan] reads it).
type Host struct {
	Links []HostLink
	// DefaultRoutes are the indexes of the interfaces the default routes (of either family, every
	// next hop of a multipath route) leave through.
	DefaultRoutes []int
}

// Iface is an interface chosen for layer 2, with the index it had when chosen: an interface
// deleted and created again under the same name gets a new index.
type Iface struct {
	Name  string
	Index int
}

// Selection is what layer 2 may answer on, by rule.
type Selection struct {
	// Default are the interfaces answered on for an advertisement that names none: those that
	// hold one of the node's addresses and those the default routes leave through, when up and
	// Ethernet. Sorted by name.
	Default []Iface
	// Named are the interfaces among those asked for by name that are up and Ethernet, whatever
	// their place in the host's topology (the operator chose them). Sorted by name.
	Named []Iface
}

// Names returns the names of every selected interface, sorted, without duplicates.
func (s Selection) Names() []string {
	var out []string
	for _, i := range append(slices.Clone(s.Default), s.Named...) {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// DefaultNames returns the names of the default interfaces, sorted.
func (s Selection) DefaultNames() []string {
	var out []string
	for _, i := range s.Default {
		out = append(out, i.Name)
	}
	return out
}

// Equal reports whether two selections choose the same interfaces with the same indexes.
func (s Selection) Equal(o Selection) bool {
	return slices.Equal(s.Default, o.Default) && slices.Equal(s.Named, o.Named)
}

// Select applies Herald's interface rule to a snapshot of the host.
//
// By default a node answers on the interfaces that carry its own traffic: those holding one of
// nodeAddrs (the Node's InternalIPs) and those its default routes leave through. That is the
// node's segment on any usual host (eth0, bond0, br0, a VLAN interface holding the node address),
// and never a pod's interface: routed CNIs (Calico's cali*, Cilium's lxc*, AWS VPC CNI's eni*, the
// ptp plugin) give their host-side veths no node address and no default route, and bridged ones
// put them in a bridge, whose own interface is the one holding the address.
//
// named lists the interfaces that L2Advertisements name; each is selected when it exists, is up
// and is Ethernet, wherever it sits. An advertisement that names interfaces answers only on
// those; one that names none answers on the default interfaces.
func Select(h Host, nodeAddrs []netip.Addr, named []string) Selection {
	addrs := map[netip.Addr]bool{}
	for _, a := range nodeAddrs {
		if a.IsValid() {
			addrs[a.Unmap().WithZone("")] = true
		}
	}
	routes := map[int]bool{}
	for _, i := range h.DefaultRoutes {
		routes[i] = true
	}
	want := map[string]bool{}
	for _, n := range named {
		want[n] = true
	}
	var s Selection
	for _, l := range h.Links {
		if !l.usable() || l.Name == "" {
			continue
		}
		isDefault := routes[l.Index] || slices.ContainsFunc(l.Addrs, func(a netip.Addr) bool { return addrs[a.Unmap().WithZone("")] })
		if isDefault {
			s.Default = append(s.Default, Iface{Name: l.Name, Index: l.Index})
		}
		if want[l.Name] {
			s.Named = append(s.Named, Iface{Name: l.Name, Index: l.Index})
		}
	}
	byName := func(a, b Iface) int { return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Index, b.Index)) }
	slices.SortFunc(s.Default, byName)
	slices.SortFunc(s.Named, byName)
	return s
}
