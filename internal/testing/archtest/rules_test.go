package archtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The architecture's import rules, all in one place. A package that is not listed here may import
// what it needs; the rules say what the layers must never reach.

const mod = "github.com/herald-lb/herald/"

// heavy are the modules a pure core must never depend on, not even through another package.
var heavy = []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime", "github.com/osrg/gobgp",
	"github.com/hashicorp/memberlist", "github.com/mdlayher", "github.com/vishvananda"}

// ioPkgs are the standard packages through which code reaches the network, the file system or the
// process environment; a pure core's own code imports none of them (its dependencies may).
var ioPkgs = []string{"net", "os", "os/exec", "syscall", "unsafe", "net/http"}

// TestPureCores: allocation, election, configuration validation, the plan, the BFD state machine,
// the node metadata codec and the CLI's translators are pure: no client-go, no sockets, no GoBGP,
// no memberlist, and none of the process's I/O in their own code.
func TestPureCores(t *testing.T) {
	tests := []struct {
		pkg string
		// deps are forbidden on top of heavy; imports on top of io.
		deps, imports []string
	}{
		{pkg: "config", imports: []string{"time/tzdata", "log", "log/slog", "math/rand", "math/rand/v2"}},
		// The allocator is standard library only: it does not even know the configuration's types.
		{pkg: "controller/allocator", deps: []string{"k8s.io", "sigs.k8s.io", mod + "config", mod + "api"}, imports: []string{"time", "math/rand"}},
		// The allocator's arithmetic (Uint128, the interval set) knows nothing of pools or Services.
		{pkg: "controller/allocator/ipset", deps: []string{"k8s.io", "sigs.k8s.io", mod}, imports: []string{"time", "math/rand"}},
		{pkg: "speaker/election", deps: []string{"k8s.io", "sigs.k8s.io"}},
		{pkg: "speaker/plan", deps: []string{mod + "speaker/bgp", mod + "speaker/layer2"}},
		{pkg: "speaker/bfd", deps: []string{"k8s.io", "sigs.k8s.io", "golang.org/x/net"}},
		{pkg: "speaker/nodemeta", deps: []string{"k8s.io", "sigs.k8s.io"}},
		{pkg: "cli/metallb"},
		{pkg: "cli/validate"},
		{pkg: "cli/inspect"},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			CheckDeps(t, mod+tt.pkg, append(append([]string{}, heavy...), tt.deps...)...)
			CheckImports(t, mod+tt.pkg, append(append([]string{}, ioPkgs...), tt.imports...)...)
		})
	}
}

// TestBinariesNeverImportEachOther: the controller and the speaker share code only through api/,
// config/ and internal/; neither reaches the other's packages.
func TestBinariesNeverImportEachOther(t *testing.T) {
	t.Parallel()
	CheckDeps(t, mod+"controller/...", mod+"speaker")
	CheckDeps(t, mod+"speaker/...", mod+"controller")
}

// TestBinariesNeverLinkTheTestRigs: the rigs under internal/testing (a real API server, FRR,
// network namespaces, these rules) serve the tests only; no shipped program links them.
func TestBinariesNeverLinkTheTestRigs(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{mod + "controller", mod + "speaker", mod + "cmd/..."} {
		CheckDeps(t, bin, mod+"internal/testing")
	}
}

// TestLibrariesStayBehindTheirAdapter: each networking library is used by one adapter package
// only, behind Herald's own types (tests of the lab may send raw frames with mdlayher's packages).
func TestLibrariesStayBehindTheirAdapter(t *testing.T) {
	tests := []struct {
		lib     string
		allowed []string
	}{
		{"github.com/osrg/gobgp", []string{mod + "speaker/bgp"}},
		{"github.com/hashicorp/memberlist", []string{mod + "speaker/members", mod + "speaker/nodemeta"}},
		{"github.com/mdlayher", []string{mod + "speaker/layer2", mod + "speaker/routeradv", mod + "e2e", mod + "e2e/cmd/ndpprobe"}},
		{"github.com/vishvananda", []string{mod + "speaker/layer2", mod + "speaker/bgp", mod + "internal/testing/netlab"}},
	}
	for _, tt := range tests {
		t.Run(tt.lib, func(t *testing.T) {
			t.Parallel()
			CheckOnlyImportedBy(t, mod+"...", []string{tt.lib}, tt.allowed...)
		})
	}
}

// TestSpeakerDoesWithoutControllerRuntime: the speaker runs on every node, and each node pays for
// the code it links and runs at start in resident memory. It reads and writes through
// internal/kube/client and internal/kube/cache, not controller-runtime's client, cache or manager,
// and never links client-go's clientsets or kubernetes/scheme, which register every API group of
// k8s.io/api at start (11 MiB of resident binary pages together; bench/NOTES.md). Only the
// controller and the command line tool adapt controller-runtime's clients (internal/kube/crclient).
func TestSpeakerDoesWithoutControllerRuntime(t *testing.T) {
	t.Parallel()
	CheckDeps(t, mod+"speaker", "sigs.k8s.io/controller-runtime/pkg/client", "sigs.k8s.io/controller-runtime/pkg/cache",
		"sigs.k8s.io/controller-runtime/pkg/manager", "k8s.io/client-go/kubernetes", "k8s.io/client-go/tools/leaderelection",
		mod+"internal/kube/crclient")
}

// TestSpeakerStatusStaysAWriter: the speaker's status writer turns a plan into status objects and
// writes them; it knows nothing of how the speaker announces (layer 2, BGP) or learns who is alive
// (memberlist), and the agent that drives it is above it, never below.
func TestSpeakerStatusStaysAWriter(t *testing.T) {
	t.Parallel()
	CheckDeps(t, mod+"speaker/status", mod+"speaker/agent", mod+"speaker/layer2", mod+"speaker/bgp",
		mod+"speaker/members", mod+"speaker/nodemeta", "github.com/osrg/gobgp", "github.com/hashicorp/memberlist",
		"github.com/mdlayher", "github.com/vishvananda")
}

// TestArchtestStaysLight: archtest is test-only tooling; it must not drag the heavy modules into
// the tests that use it.
func TestArchtestStaysLight(t *testing.T) {
	CheckDeps(t, self, append([]string{"k8s.io", "sigs.k8s.io"}, heavy...)...)
}

// TestEveryPackageHasADoc: every package of the module says what it is in a package comment (in
// one of its test files for a package of tests only).
func TestEveryPackageHasADoc(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .GoFiles}}\t{{join .TestGoFiles \",\"}}\t{{.Doc}}", mod+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	n := 0
	for line := range strings.Lines(string(out)) {
		n++
		f := strings.SplitN(strings.TrimRight(line, "\n"), "\t", 5)
		if len(f) != 5 {
			t.Fatalf("go list printed %q", line)
		}
		path, dir, goFiles, tests, doc := f[0], f[1], f[2], f[3], f[4]
		name := path[strings.LastIndex(path, "/")+1:]
		if goFiles == "0" && tests != "" {
			doc = testDoc(t, dir, strings.Split(tests, ","), name)
		}
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no package comment (// Package %s ... above its package clause in one file)", path, name)
		}
	}
	if n < 10 {
		t.Fatalf("go list found %d packages in %s...; want the whole module", n, mod)
	}
}

// testDoc returns the first line of the package comment in one of files (in dir), or "".
func testDoc(t *testing.T, dir string, files []string, name string) string {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "// Package "+name+" ") {
				return line
			}
			if strings.HasPrefix(line, "package ") {
				break
			}
		}
	}
	return ""
}
