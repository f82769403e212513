package bfd

import (
	"testing"

	"github.com/herald-lb/herald/internal/archtest"
)

// TestImports enforces that the package stays pure: no sockets, no Kubernetes, no GoBGP.
func TestImports(t *testing.T) {
	const pkg = "github.com/herald-lb/herald/speaker/bfd"
	archtest.CheckDeps(t, pkg, "k8s.io", "sigs.k8s.io", "github.com/osrg/gobgp",
		"github.com/hashicorp/memberlist", "github.com/mdlayher", "golang.org/x/net")
	archtest.CheckImports(t, pkg, "net", "os", "os/exec", "syscall", "unsafe", "net/http")
}
