// Package maintest tests a binary's main function as the binary: the test binary runs main in a
// child process of itself, so a test sees main's real exit code and output (flag parsing, --help,
// errors at start) without building the binary first.
package maintest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// argsEnv carries the arguments of main to the child process.
const argsEnv = "HERALD_TEST_MAIN_ARGS"

// Main is the package's TestMain: in the child process started by Run it runs main as the
// program name with the arguments given to Run, and exits 0 when main returns; otherwise it runs
// the tests.
func Main(m *testing.M, name string, main func()) {
	if args, ok := os.LookupEnv(argsEnv); ok {
		os.Args = append([]string{name}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Run runs main with args in a child process (the test binary, see Main) and returns its exit
// code and combined output. The node's environment variables the speaker reads are cleared.
func Run(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), argsEnv+"="+strings.Join(args, " "), "NODE_NAME=", "POD_IP=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("running main %v: %v", args, err)
	return 0, ""
}

// CheckHelp checks the usual contract of a binary's flags: --help and -h print the flags (the
// output names flag) and exit 0; an unknown flag exits 2.
func CheckHelp(t *testing.T, name, flag string) {
	t.Helper()
	for _, help := range []string{"--help", "-h"} {
		code, out := Run(t, help)
		if code != 0 {
			t.Errorf("%s %s exited %d, want 0:\n%s", name, help, code, out)
		}
		if !strings.Contains(out, flag) {
			t.Errorf("%s %s does not print the flags (no %s):\n%s", name, help, flag, out)
		}
	}
	if code, out := Run(t, "--no-such-flag"); code != 2 {
		t.Errorf("%s --no-such-flag exited %d, want 2:\n%s", name, code, out)
	}
}
