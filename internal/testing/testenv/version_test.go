package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		name      string
		got, want string
		wantErr   string // a substring of the error; "" for none
	}{
		{name: "no version asked for", got: "v1.33.13", want: ""},
		{name: "the version asked for", got: "v1.36.3", want: "v1.36.3"},
		{name: "another version", got: "v1.33.13", want: "v1.36.3", wantErr: `reports version "v1.33.13", but HERALD_KUBE_VERSION=v1.36.3`},
		{name: "a build without a version", got: "v0.0.0-master+$Format:%H$", want: "v1.36.3", wantErr: ".cache/kube/v1.36.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkVersion(tc.got, tc.want, "/assets")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("checkVersion(%q, %q) = %v, want nil", tc.got, tc.want, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("checkVersion(%q, %q) = %v, want an error with %q", tc.got, tc.want, err, tc.wantErr)
			}
		})
	}
}

// TestKubeVersionFollowsMakefile keeps the Kubernetes version the tests run against in one place:
// the Makefile's KUBE_VERSION. KubeVersion (the cache folder a plain `go test` uses) and
// hack/build-kube.sh's default must name the same version.
func TestKubeVersionFollowsMakefile(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	find := func(name string, re *regexp.Regexp) string {
		t.Helper()
		m := re.FindStringSubmatch(read(name))
		if m == nil {
			t.Fatalf("%s: no line matching %s", name, re)
		}
		return m[1]
	}
	makefile := find("Makefile", regexp.MustCompile(`(?m)^KUBE_VERSION\s*\?=\s*(\S+)\s*$`))
	if KubeVersion != makefile {
		t.Errorf("testenv.KubeVersion = %s, but the Makefile's KUBE_VERSION = %s: set both to the same version", KubeVersion, makefile)
	}
	if script := find("hack/build-kube.sh", regexp.MustCompile(`(?m)^KUBE_VERSION=\$\{KUBE_VERSION:-(\S+)\}\s*$`)); script != makefile {
		t.Errorf("hack/build-kube.sh defaults to KUBE_VERSION %s, but the Makefile's KUBE_VERSION = %s: set both to the same version", script, makefile)
	}
}
