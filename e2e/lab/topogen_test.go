package lab

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateTopology = flag.Bool("update-topology", false, "rewrite e2e/topology-20.clab.yaml from GenerateTopology(20)")

// The generated three-node topology is the shipped one, and the shipped 20-node file is what
// GenerateTopology makes (go test ./e2e/lab -run TestGeneratedTopology -update-topology rewrites it).
func TestGeneratedTopology(t *testing.T) {
	shipped, err := LoadTopology(filepath.Join("..", "topology.clab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gen3, err := GenerateTopology(3)
	if err != nil {
		t.Fatal(err)
	}
	three, err := ParseTopology(gen3)
	if err != nil {
		t.Fatal(err)
	}
	pfx := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	if diff := cmp.Diff(shipped, three, pfx); diff != "" {
		t.Errorf("GenerateTopology(3) differs from e2e/topology.clab.yaml (-shipped +generated):\n%s", diff)
	}

	gen20, err := GenerateTopology(20)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "topology-20.clab.yaml")
	if *updateTopology {
		if err := os.WriteFile(path, gen20, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, gen20) {
		t.Errorf("%s is not GenerateTopology(20): run go test ./e2e/lab -run TestGeneratedTopology -update-topology", path)
	}
	twenty, err := ParseTopology(gen20)
	if err != nil {
		t.Fatal(err)
	}
	nodes := twenty.NodesWithRole(RoleNode)
	if len(nodes) != 20 || !slices.Contains(nodes, "n20") {
		t.Errorf("nodes of the 20-node topology = %v", nodes)
	}
	seen := map[netip.Addr]string{}
	for name, n := range twenty.Nodes {
		for _, a := range n.Addrs {
			if other, dup := seen[a.Prefix.Addr()]; dup {
				t.Errorf("%s and %s both have %s", other, name, a.Prefix.Addr())
			}
			seen[a.Prefix.Addr()] = name
		}
	}
	if diff := cmp.Diff(shipped.Subnets(), twenty.Subnets(), pfx); diff != "" {
		t.Errorf("the 20-node topology uses other subnets (-3 nodes +20 nodes):\n%s", diff)
	}
	for _, n := range []int{0, MaxNodes + 1} {
		if _, err := GenerateTopology(n); !errors.Is(err, ErrTopology) {
			t.Errorf("GenerateTopology(%d) = %v, want ErrTopology", n, err)
		}
	}
}
