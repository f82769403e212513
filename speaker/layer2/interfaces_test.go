package layer2

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// topoTable is a LinkTopology read from a table.
type topoTable map[string]struct{ master, brport bool }

func (tt topoTable) HasMaster(name string) (bool, error)    { return tt[name].master, nil }
func (tt topoTable) IsBridgePort(name string) (bool, error) { return tt[name].brport, nil }

func TestSelectInterfaces(t *testing.T) {
	mac := func(b byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, b} }
	up := net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	ifaces := []net.Interface{
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Name: "eth0", Flags: up, HardwareAddr: mac(1)},
		{Name: "eth1", Flags: net.FlagBroadcast, HardwareAddr: mac(2)}, // down
		{Name: "bond0", Flags: up, HardwareAddr: mac(3)},
		{Name: "ens1", Flags: up, HardwareAddr: mac(3)}, // bond slave
		{Name: "br0", Flags: up, HardwareAddr: mac(4)},
		{Name: "veth1234", Flags: up, HardwareAddr: mac(5)}, // port of br0
		{Name: "wg0", Flags: up | net.FlagPointToPoint},     // no MAC
		{Name: "ib0", Flags: up, HardwareAddr: make(net.HardwareAddr, 20)},
	}
	topo := topoTable{
		"ens1":     {master: true},
		"veth1234": {master: true, brport: true},
		"odd":      {brport: true},
	}
	tests := []struct {
		name     string
		named    []string
		ifaces   []net.Interface
		want     []string
		notFound bool
	}{
		{name: "all suitable", ifaces: ifaces, want: []string{"eth0", "bond0", "br0"}},
		{name: "named, in interface order", named: []string{"br0", "eth0"}, ifaces: ifaces, want: []string{"eth0", "br0"}},
		{name: "named bridge port is the operator's choice", named: []string{"veth1234"}, ifaces: ifaces, want: []string{"veth1234"}},
		{name: "named missing", named: []string{"eth0", "eth9"}, ifaces: ifaces, want: []string{"eth0"}, notFound: true},
		{name: "named down", named: []string{"eth1"}, ifaces: ifaces, notFound: true},
		{name: "named loopback", named: []string{"lo"}, ifaces: ifaces, notFound: true},
		{name: "bridge port without master link", ifaces: []net.Interface{{Name: "odd", Flags: up, HardwareAddr: mac(9)}}},
		{name: "nothing", ifaces: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SelectInterfaces(tt.named, tt.ifaces, topo)
			if errors.Is(err, ErrInterfaceNotFound) != tt.notFound || (err != nil && !tt.notFound) {
				t.Errorf("SelectInterfaces error = %v, want ErrInterfaceNotFound: %v", err, tt.notFound)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SelectInterfaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSysFS(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"eth0", "br0/bridge", "veth1/brport", "ens1"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct{ from, to string }{{"veth1/master", "../br0"}, {"ens1/master", "../bond0"}} {
		if err := os.Symlink(l.to, filepath.Join(root, l.from)); err != nil {
			t.Fatal(err)
		}
	}
	fs := SysFS{Root: root}
	type got struct{ Master, Port bool }
	for name, want := range map[string]got{
		"eth0": {}, "br0": {}, "veth1": {Master: true, Port: true}, "ens1": {Master: true}, "gone": {},
	} {
		m, err := fs.HasMaster(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := fs.IsBridgePort(name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got{m, p}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if _, err := fs.HasMaster("../etc"); err == nil {
		t.Error("HasMaster(../etc) succeeded, want an error for a name that is a path")
	}
}

// FuzzSelectInterfaces checks that selection never panics and only ever returns usable interfaces
// that exist, at most once each.
func FuzzSelectInterfaces(f *testing.F) {
	f.Add("eth0", uint8(net.FlagUp), true, false, false, "")
	f.Add("br0", uint8(net.FlagUp|net.FlagBroadcast), true, true, true, "br0")
	f.Add("lo", uint8(net.FlagUp|net.FlagLoopback), false, false, false, "lo,eth0")
	f.Add("eth9", uint8(net.FlagUp), true, false, false, "")
	f.Fuzz(func(t *testing.T, name string, flags uint8, hasMAC, master, brport bool, named string) {
		ifi := net.Interface{Name: name, Flags: net.Flags(flags)}
		if hasMAC {
			ifi.HardwareAddr = net.HardwareAddr{2, 0, 0, 0, 0, 1}
		}
		ifaces := []net.Interface{ifi, {Name: "eth9", Flags: net.FlagUp, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2}}}
		var names []string
		if named != "" {
			names = strings.Split(named, ",")
		}
		got, _ := SelectInterfaces(names, ifaces, topoTable{name: {master: master, brport: brport}})
		seen := map[string]bool{}
		for _, n := range got {
			if seen[n] {
				t.Fatalf("%q selected twice: %v", n, got)
			}
			seen[n] = true
			if n == name && (!hasMAC || ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0) && n != "eth9" {
				t.Fatalf("unusable %+v selected", ifi)
			}
			if n != name && n != "eth9" {
				t.Fatalf("selected %q, which does not exist", n)
			}
		}
	})
}
