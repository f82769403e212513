package agent

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestHeapProfileSpeaker is a measuring tool, skipped unless HERALD_HEAP_PROFILE names a file: it
// settles one agent (the cache as the speaker makes it, a layer-2 double, three nodes) on
// HERALD_HEAP_SERVICES Services (default 2,000) of the real API server and writes a heap profile
// of the test process, sampled every 512 bytes, to that file. Two sizes give the cost per Service:
//
//	go tool pprof -sample_index=inuse_space -top -ignore 'grow|NewFakeRecorder|newScaleCluster|deleteAll' \
//	    -diff_base small.pb.gz large.pb.gz
//
// (the ignored frames are the test's own objects). Unlike TestBenchSpeakerRSS it needs no network
// namespace, but it has no layer-2 announcer and its agent owns about a third of the IPs.
func TestHeapProfileSpeaker(t *testing.T) {
	testenv.Require(t, env)
	path := os.Getenv("HERALD_HEAP_PROFILE")
	if path == "" {
		t.Skip("HERALD_HEAP_PROFILE not set: a measuring tool")
	}
	n := 2000
	if v := os.Getenv("HERALD_HEAP_SERVICES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 65000 {
			t.Fatalf("HERALD_HEAP_SERVICES=%q: want a number of Services from 1 to 65000", v)
		}
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 512
	t.Cleanup(func() { runtime.MemProfileRate = old })
	sc := newScaleCluster(t)
	t.Cleanup(func() { sc.deleteAll(t) })
	sc.grow(t, n)
	sc.startAgent(t)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d Services: the test process's heap after a collection is %.1f MB (the agent's and the test's)", n, float64(ms.HeapAlloc)/1e6)
	if err := writeHeapProfile(path); err != nil {
		t.Fatal(err)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("writing the heap profile to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the heap profile to %s: %w", path, err)
	}
	return nil
}
