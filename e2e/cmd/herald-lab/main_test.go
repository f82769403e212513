package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/testing/netlab"
	"github.com/herald-lb/herald/internal/testing/testenv"
)

// TestDemo runs `make demo-process`'s program non-interactively (--exit-after-demo) as its own process and
// checks that every step succeeded and that it left nothing behind.
func TestDemo(t *testing.T) {
	lab.RequireMachine(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "herald-lab")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./e2e/cmd/herald-lab")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building herald-lab: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(t.Context(), bin, "--exit-after-demo")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("herald-lab --exit-after-demo: %v\n%s", err, text)
	}
	for _, want := range []string{
		"kubectl get svc -A", "web-l2", "web-bgp", "is announced by", "is advertised by every node",
		"[l2client]$ curl", "[extclient]$ curl", "[rt]$ ip -4 route show", "nexthop via",
		"Removing the lab",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
	pid := cmd.ProcessState.Pid()
	if _, err := os.Stat(filepath.Join(root, "e2e", ".run", strconv.Itoa(pid))); err == nil {
		t.Errorf("the demo left its run folder behind")
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), netlab.Prefix+strconv.Itoa(pid)+"-") {
		t.Errorf("the demo left namespaces behind:\n%s", out)
	}
}
