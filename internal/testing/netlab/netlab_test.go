package netlab

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLabPingAcrossBridgeAndCleanup(t *testing.T) {
	l := ForTest(t)
	sw, err := l.AddNS("sw")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bridge(sw, "br0"); err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for i, name := range []string{"a", "b"} {
		ns, err := l.AddNS(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Veth(ns, "eth0", sw, "p-"+name, "br0"); err != nil {
			t.Fatal(err)
		}
		addr := []string{"198.51.100.1/24", "198.51.100.2/24"}[i]
		if _, err := l.Exec(ns, "ip", "addr", "add", addr, "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, ns)
	}
	if out, err := l.Exec(hosts[0], "ping", "-c1", "-W2", "198.51.100.2"); err != nil {
		t.Fatalf("ping across the bridge: %v\n%s", err, out)
	}

	// A socket opened inside a namespace with Do stays there.
	var ifaces []net.Interface
	if err := Do(hosts[1], func() error {
		var err error
		ifaces, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ifi := range ifaces {
		names = append(names, ifi.Name)
	}
	if got := strings.Join(names, ","); got != "lo,eth0" {
		t.Errorf("interfaces seen inside %s = %q, want lo,eth0", hosts[1], got)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range append(hosts, sw) {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); !os.IsNotExist(err) {
			t.Errorf("namespace %s still present after Close (stat err %v)", ns, err)
		}
	}
}
