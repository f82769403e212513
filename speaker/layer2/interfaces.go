package layer2

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// ErrInterfaceNotFound is returned (wrapped) by SelectInterfaces for a named interface that does
// not exist or is not usable (down, or without an Ethernet hardware address).
var ErrInterfaceNotFound = errors.New("interface not found or not usable")

// LinkTopology tells how an interface sits in the host's link topology. SysFS reads it from
// /sys/class/net; tests use a table.
type LinkTopology interface {
	// HasMaster reports whether the interface is enslaved to another device: a bridge port, a bond
	// slave, a VRF member.
	HasMaster(name string) (bool, error)
	// IsBridgePort reports whether the interface is a port of a Linux bridge.
	IsBridgePort(name string) (bool, error)
}

// SelectInterfaces returns the names of the interfaces to answer on, in the order of ifaces
// (normally net.Interfaces()).
//
// If named is not empty, it selects those of the named interfaces that are up and have an Ethernet
// hardware address, whatever their place in the topology (the operator chose them), and reports the
// others with ErrInterfaceNotFound. Otherwise it selects every suitable interface: up, with an
// Ethernet hardware address, not loopback, and not enslaved to another device (bridge ports, which
// include the host ends of veth pairs in a bridge, and bond slaves are answered for by their master).
func SelectInterfaces(named []string, ifaces []net.Interface, topo LinkTopology) ([]string, error) {
	usable := func(ifi net.Interface) bool {
		return ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagLoopback == 0 && len(ifi.HardwareAddr) == 6
	}
	var out []string
	if len(named) > 0 {
		want := map[string]bool{}
		for _, n := range named {
			want[n] = true
		}
		for _, ifi := range ifaces {
			if want[ifi.Name] && usable(ifi) {
				out = append(out, ifi.Name)
				delete(want, ifi.Name)
			}
		}
		var errs []error
		for _, n := range named {
			if want[n] {
				errs = append(errs, fmt.Errorf("selecting interface %q: %w", n, ErrInterfaceNotFound))
				delete(want, n)
			}
		}
		return out, errors.Join(errs...)
	}
	var errs []error
	seen := map[string]bool{}
	for _, ifi := range ifaces {
		if !usable(ifi) || seen[ifi.Name] {
			continue
		}
		seen[ifi.Name] = true
		master, err := topo.HasMaster(ifi.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspecting interface %q: %w", ifi.Name, err))
			continue
		}
		port, err := topo.IsBridgePort(ifi.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspecting interface %q: %w", ifi.Name, err))
			continue
		}
		if !master && !port {
			out = append(out, ifi.Name)
		}
	}
	return out, errors.Join(errs...)
}

// UsableInterfaces lists this host's interfaces suitable for answering when no interface is named:
// SelectInterfaces over net.Interfaces and /sys/class/net.
func UsableInterfaces() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	return SelectInterfaces(nil, ifaces, SysFS{})
}

// SysFS reads the link topology from a sysfs class/net directory. Note that sysfs shows the network
// namespace of the process that mounted it.
type SysFS struct {
	// Root is the directory holding one entry per interface. Empty: /sys/class/net.
	Root string
}

// HasMaster reports whether <root>/<name>/master exists.
func (s SysFS) HasMaster(name string) (bool, error) { return s.exists(name, "master") }

// IsBridgePort reports whether <root>/<name>/brport exists.
func (s SysFS) IsBridgePort(name string) (bool, error) { return s.exists(name, "brport") }

func (s SysFS) exists(name, entry string) (bool, error) {
	root := s.Root
	if root == "" {
		root = "/sys/class/net"
	}
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return false, fmt.Errorf("invalid interface name %q", name)
	}
	_, err := os.Lstat(filepath.Join(root, name, entry))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("reading %s of %s: %w", entry, name, err)
	}
}
