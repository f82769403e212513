package service_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

// TestReconcilesLogWithTheirID: the reconcilers log through the logger controller-runtime puts
// in each reconcile's context, so that every line names its controller and reconcile ID.
func TestReconcilesLogWithTheirID(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var lines []string
	f.mgrLog = funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+" "+args)
	}, funcr.Options{})
	f.pool("a", []string{"198.51.100.10-198.51.100.11"})
	f.start()
	var got string
	f.eventually("the restore logged", 20*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, "restored addresses from Services' status") {
				got = l
				return true, l
			}
		}
		return false, strings.Join(lines, "\n")
	})
	for _, want := range []string{`"controller"="herald-config"`, `"reconcileID"=`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %s: want it to contain %s", got, want)
		}
	}
}
