package metallb

import (
	"testing"

	"github.com/herald-lb/herald/internal/archtest"
)

// TestImports keeps the package pure: nothing that reaches the API server, the network, the
// file system or the process environment.
func TestImports(t *testing.T) {
	const pkg = "github.com/herald-lb/herald/cli/metallb"
	archtest.CheckDeps(t, pkg, "k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/osrg/gobgp",
		"github.com/hashicorp/memberlist", "github.com/mdlayher")
	archtest.CheckImports(t, pkg, "net", "os", "os/exec", "syscall", "net/http")
}
