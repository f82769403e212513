package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs main itself when the test binary is started by runMain, so that the tests see
// the binary's real exit code and output.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("HERALD_TEST_MAIN_ARGS"); ok {
		os.Args = append([]string{"herald-speaker"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs main with args in a child process and returns its exit code and output.
func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HERALD_TEST_MAIN_ARGS="+strings.Join(args, " "), "NODE_NAME=", "POD_IP=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("running herald-speaker %v: %v", args, err)
	return 0, ""
}

func TestHelpExitsZero(t *testing.T) {
	for _, flag := range []string{"--help", "-h"} {
		code, out := runMain(t, flag)
		if code != 0 {
			t.Errorf("herald-speaker %s exited %d, want 0:\n%s", flag, code, out)
		}
		if !strings.Contains(out, "-namespace") {
			t.Errorf("herald-speaker %s does not print the flags:\n%s", flag, out)
		}
	}
	if code, out := runMain(t, "--no-such-flag"); code != 2 {
		t.Errorf("herald-speaker --no-such-flag exited %d, want 2:\n%s", code, out)
	}
}
