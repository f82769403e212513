package lab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestShippedTopology(t *testing.T) {
	topo, err := LoadTopology(filepath.Join("..", "topology.clab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.NodesWithRole(RoleNode), []string{"n1", "n2", "n3"}; !slices.Equal(got, want) {
		t.Errorf("nodes = %v, want %v", got, want)
	}
	if got := topo.HostIfaces(); !slices.Equal(got, []string{"hrld-ctl"}) {
		t.Errorf("host interfaces = %v, want [hrld-ctl]", got)
	}
	if got := topo.NodesWithRole(RoleRouter); !slices.Equal(got, []string{"rt"}) {
		t.Errorf("routers = %v, want [rt]", got)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/25"),
		netip.MustParsePrefix("198.51.100.128/26"),
		netip.MustParsePrefix("2001:db8:1::/64"),
		netip.MustParsePrefix("2001:db8:2::/64"),
	}
	if diff := cmp.Diff(want, topo.Subnets(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("subnets (-want +got):\n%s", diff)
	}
	// Every lab address is a documentation address, and none is in the ranges this machine's own
	// uplink and package proxy use (192.0.2.0/24, 203.0.113.0/24, fd00::/64).
	doc := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	plan := DefaultPlan()
	for _, p := range append(topo.Subnets(), plan.Routed...) {
		if !slices.ContainsFunc(doc, func(d netip.Prefix) bool { return d.Contains(p.Addr()) && d.Bits() <= p.Bits() }) {
			t.Errorf("%s is not inside 198.51.100.0/24 or 2001:db8::/32", p)
		}
	}
	if !plan.APIServerAddr.Addr().Is4() || !slices.ContainsFunc(topo.Nodes["host"].Addrs, func(a IfAddr) bool { return a.Prefix.Addr() == plan.APIServerAddr.Addr() }) {
		t.Errorf("the plan's API server address %v is not the host's address in the topology", plan.APIServerAddr)
	}
}

// TestShippedRouterConfig keeps e2e/clab/rt-frr.conf (the router's configuration for containerlab
// users) equal to what the runner gives FRR. Run with HERALD_UPDATE_GOLDEN=1 to rewrite it.
func TestShippedRouterConfig(t *testing.T) {
	topo, err := LoadTopology(filepath.Join("..", "topology.clab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plan := DefaultPlan()
	rid, _ := topo.Addr("rt", plan.SegmentIface, true)
	var seg []netip.Prefix
	for _, a := range topo.Nodes["rt"].Addrs {
		if a.Iface == plan.SegmentIface {
			seg = append(seg, a.Prefix.Masked())
		}
	}
	conf, err := plan.RouterConfig(rid.Addr(), seg).Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "clab", "rt-frr.conf")
	if os.Getenv("HERALD_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(conf, string(got)); diff != "" {
		t.Errorf("%s is out of date (-want +got); rerun with HERALD_UPDATE_GOLDEN=1:\n%s", path, diff)
	}
}

func TestParseTopology(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, topo *Topology)
	}{
		{
			name: "nodes, links and addresses",
			in: `name: x
topology:
  nodes:
    sw: {kind: bridge}
    a:
      kind: linux
      image: ignored
      labels: {herald.dev/lab-role: node}
      exec:
        - ip addr add 198.51.100.11/25 dev eth0
        - ip -6 address add 2001:db8:1::11/64 dev eth0 nodad
        - ip route add default via 198.51.100.1
  links:
    - endpoints: ["a:eth0", "sw:a"]
`,
			check: func(t *testing.T, topo *Topology) {
				want := []IfAddr{
					{Iface: "eth0", Prefix: netip.MustParsePrefix("198.51.100.11/25")},
					{Iface: "eth0", Prefix: netip.MustParsePrefix("2001:db8:1::11/64")},
				}
				if diff := cmp.Diff(want, topo.Nodes["a"].Addrs, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
					t.Errorf("addresses (-want +got):\n%s", diff)
				}
				if len(topo.Nodes["a"].Exec) != 3 || topo.Nodes["a"].Exec[2][0] != "ip" {
					t.Errorf("exec = %q", topo.Nodes["a"].Exec)
				}
				if diff := cmp.Diff([]Link{{A: Endpoint{"a", "eth0"}, B: Endpoint{"sw", "a"}}}, topo.Links); diff != "" {
					t.Errorf("links (-want +got):\n%s", diff)
				}
			},
		},
		{name: "no name", in: "topology: {nodes: {a: {kind: linux}}}", wantErr: true},
		{name: "unknown kind", in: "name: x\ntopology: {nodes: {a: {kind: srl}}}", wantErr: true},
		{name: "link to an undeclared node", in: "name: x\ntopology: {nodes: {a: {kind: linux}}, links: [{endpoints: [\"a:eth0\", \"b:eth0\"]}]}", wantErr: true},
		{name: "one endpoint", in: "name: x\ntopology: {nodes: {a: {kind: linux}}, links: [{endpoints: [\"a:eth0\"]}]}", wantErr: true},
		{name: "interface used twice", in: "name: x\ntopology: {nodes: {a: {kind: linux}, b: {kind: linux}}, links: [{endpoints: [\"a:eth0\", \"b:eth0\"]}, {endpoints: [\"a:eth0\", \"b:eth1\"]}]}", wantErr: true},
		{name: "bad address", in: "name: x\ntopology: {nodes: {a: {kind: linux, exec: [\"ip addr add 198.51.100.300/25 dev eth0\"]}}}", wantErr: true},
		{name: "address without dev", in: "name: x\ntopology: {nodes: {a: {kind: linux, exec: [\"ip addr add 198.51.100.3/25\"]}}}", wantErr: true},
		{name: "not YAML", in: "name: [", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := ParseTopology([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrTopology) {
					t.Fatalf("err = %v, want ErrTopology", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, topo)
		})
	}
}

func FuzzParseTopology(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "topology.clab.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("name: x\ntopology: {nodes: {a: {kind: linux, exec: [\"ip -6 a add ::1/128 dev lo\"]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		topo, err := ParseTopology(data)
		if err != nil {
			if !errors.Is(err, ErrTopology) {
				t.Fatalf("error %v does not wrap ErrTopology", err)
			}
			return
		}
		for _, l := range topo.Links {
			if _, ok := topo.Nodes[l.A.Node]; !ok {
				t.Fatalf("link end %s names no node", l.A)
			}
			if _, ok := topo.Nodes[l.B.Node]; !ok {
				t.Fatalf("link end %s names no node", l.B)
			}
		}
	})
}
