package service_test

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/herald-lb/herald/internal/testenv"
)

var env *testenv.Env

// The API server gets a /16 of IPv4 service addresses (instead of the default /24) so that the
// restart test and the benchmarks can create thousands of Services.
func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m, testenv.Options{ExtraFlags: map[string]string{
		"service-cluster-ip-range": "10.0.0.0/16,fd00:10::/108",
	}}, &env))
}
