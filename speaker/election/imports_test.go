package election

import (
	"testing"

	"github.com/herald-lb/herald/internal/archtest"
)

// TestImports enforces that the package stays pure: nothing that reaches Kubernetes, the network,
// the file system or the process environment.
func TestImports(t *testing.T) {
	const pkg = "github.com/herald-lb/herald/speaker/election"
	archtest.CheckDeps(t, pkg, "k8s.io", "sigs.k8s.io", "github.com/osrg/gobgp",
		"github.com/hashicorp/memberlist", "github.com/mdlayher")
	archtest.CheckImports(t, pkg, "net", "os", "os/exec", "syscall", "unsafe", "net/http")
}
