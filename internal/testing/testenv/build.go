package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build builds the main package pkg (relative to the repository root, like "./speaker") without
// cgo into a temporary folder of tb as the binary name, with the extra go build flags, and returns
// the binary's path.
func Build(tb testing.TB, name, pkg string, flags ...string) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), name)
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s (%s): %v: %s", name, pkg, err, b)
	}
	return out
}
