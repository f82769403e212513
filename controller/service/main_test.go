package service_test

import (
	"flag"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

// TestMain starts one API server for the package. It gets a /16 of IPv4 service addresses
// (instead of the default /24) so that the restart test and the benchmarks can create thousands
// of Services. Fuzzing runs only pure tests and starts none.
func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	os.Exit(testenv.Main(m, testenv.Options{ExtraFlags: map[string]string{
		"service-cluster-ip-range": "10.0.0.0/16,fd00:10::/108",
	}}, &env))
}
