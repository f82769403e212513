package lab

import (
	"os"
	"testing"

	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// RequireMachine skips tb unless this machine can run the lab: not -short, root with network
// namespaces, and the API server binaries installed. With HERALD_REQUIRE_APISERVER set (make test),
// missing binaries fail the test instead.
func RequireMachine(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("end-to-end test: skipped with -short")
	}
	if err := netlab.Available(); err != nil {
		tb.Skipf("end-to-end test: %v", err)
	}
	if _, err := testenv.AssetsDir(); err != nil {
		SkipUnavailable(tb, err)
	}
}

// SkipUnavailable skips tb because of err, something this machine lacks to run it, or fails it when
// HERALD_REQUIRE_APISERVER is set (make test), where nothing may be missing.
func SkipUnavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("HERALD_REQUIRE_APISERVER") != "" {
		tb.Fatal(err)
	}
	tb.Skip(err)
}
