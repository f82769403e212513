package service

import "testing"

func TestStaleGuard(t *testing.T) {
	var g staleGuard
	if g.stale("ns/a", "1") {
		t.Fatal("stale before any write")
	}
	g.wrote("ns/a", []string{"1", "2"}, "3") // read at 1, status write made 2, annotation write made 3
	for _, rv := range []string{"1", "2"} {
		if !g.stale("ns/a", rv) {
			t.Errorf("version %s is older than the controller's own write but not stale", rv)
		}
	}
	if g.stale("ns/a", "3") {
		t.Error("the version of the last write is stale")
	}
	if g.stale("ns/a", "1") {
		t.Error("the guard did not forget once the cache caught up")
	}
	g.wrote("ns/b", []string{"5"}, "5") // a no-op write: nothing may wait for an event
	if g.stale("ns/b", "5") {
		t.Error("a write that changed nothing made the current version stale")
	}
	g.wrote("ns/c", []string{"7"}, "8")
	g.forget("ns/c")
	if g.stale("ns/c", "7") {
		t.Error("forget did not forget")
	}
}
