package testenv

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// statTail is the fields of a real /proc/PID/stat after the command name: ppid 11220, utime 250,
// stime 50, rss 362 pages.
const statTail = " R 11220 11220 3970 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 3934458 3133440 362 18446744073709551615 93963770953728 0 0 17 1 0 0\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr string
	}{
		{name: "plain", in: "11223 (cat)" + statTail, want: Stat{Comm: "cat", PPID: 11220, CPU: 3 * time.Second, RSSPages: 362}},
		{name: "command with spaces and parentheses", in: "7 (a (b) c)" + statTail, want: Stat{Comm: "a (b) c", PPID: 11220, CPU: 3 * time.Second, RSSPages: 362}},
		{name: "no command", in: "7 cat" + statTail, wantErr: "no command name"},
		{name: "parentheses reversed", in: "7 )cat(" + statTail, wantErr: "no command name"},
		{name: "short", in: "7 (cat) R 1 1 1", wantErr: "4 fields after the command name"},
		{name: "not a number", in: "7 (cat) R x" + strings.Repeat(" 0", 30), wantErr: "field 4"},
		{name: "empty", in: "", wantErr: "no command name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseStat(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStat(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseStat(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.RSSPages <= 0 {
		t.Errorf("ReadStat(self) = %+v; want parent %d and some resident pages", st, os.Getppid())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("11223 (cat)" + statTail)
	f.Add("7 (a (b) c)" + statTail)
	f.Add("7 )(")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat(s)
		if err != nil {
			return
		}
		if !strings.Contains(s, "("+st.Comm+")") {
			t.Errorf("parseStat(%q): command %q is not the text between the parentheses", s, st.Comm)
		}
	})
}

func TestSymbolPackage(t *testing.T) {
	for name, want := range map[string]string{
		"net/http.(*Server).Serve":                  "net/http",
		"k8s.io/api/core/v1.(*Pod).Marshal":         "k8s.io/api/core/v1",
		"runtime.mallocgc":                          "runtime",
		"slices.SortFunc[go.shape.*k8s.io/api/x.Y]": "slices",
		"type:*k8s.io/api/core/v1.Pod":              "type:",
		"go:string.*":                               "go:",
		"github.com/a/b.c.func1":                    "github.com/a/b",
		"gopkg.in/yaml%2ev3.(*parser).parse":        "gopkg.in/yaml%2ev3",
		"main.main":                                 "main",
	} {
		if got := symbolPackage(name); got != want {
			t.Errorf("symbolPackage(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestResidentBinary reads the resident pages of this test binary in its own process: code of
// the testing package runs, so some of it is resident, and the sections' pages add up to no more
// than the resident mapped files.
func TestResidentBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ResidentBinary(os.Getpid(), exe)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sections[".text"] == 0 || r.Code["testing"] == 0 || r.Code["runtime"] == 0 {
		t.Errorf("no resident code of the running test binary: sections %v, testing %d, runtime %d bytes",
			r.Sections, r.Code["testing"], r.Code["runtime"])
	}
	m, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range r.Sections {
		sum += n
	}
	// Pages of .data written since are anonymous (RssFile counts only clean ones), so only an
	// upper bound holds.
	if sum > m.File+m.Anon {
		t.Errorf("resident pages of the binary %d bytes > resident memory %d", sum, m.File+m.Anon)
	}
	if top := Top(r.Code, 3); len(top) != 3 || r.Code[top[0]] < r.Code[top[2]] {
		t.Errorf("Top(packages, 3) = %v", top)
	}
}
