package cluster

import (
	"os"
	"testing"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// Require skips tb unless this machine can run the cluster lab: not -short, root, the Debian
// packages and the Kubernetes binaries. With HERALD_REQUIRE_APISERVER set (make test), missing
// packages or binaries fail the test instead.
func Require(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("cluster test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		tb.Skip("cluster test: needs root")
	}
	if err := Available(); err != nil {
		lab.SkipUnavailable(tb, err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := AssetsDir(root); err != nil {
		lab.SkipUnavailable(tb, err)
	}
}
