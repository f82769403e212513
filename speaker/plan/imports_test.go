package plan

import (
	"testing"

	"github.com/herald-lb/herald/internal/archtest"
)

func TestPackageIsPure(t *testing.T) {
	archtest.CheckDeps(t, "github.com/herald-lb/herald/speaker/plan",
		"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/osrg/gobgp",
		"github.com/hashicorp/memberlist", "github.com/mdlayher", "github.com/herald-lb/herald/speaker/bgp",
		"github.com/herald-lb/herald/speaker/layer2")
	archtest.CheckImports(t, "github.com/herald-lb/herald/speaker/plan", "net", "os", "os/exec", "syscall")
}
