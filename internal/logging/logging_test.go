package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestAddFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr bool
	}{
		{name: "defaults", want: DefaultOptions()},
		{name: "debug text", args: []string{"--log-level=debug", "--log-format=text"}, want: Options{Level: slog.LevelDebug, Format: FormatText}},
		{name: "case-insensitive level", args: []string{"--log-level=WARN"}, want: Options{Level: slog.LevelWarn, Format: FormatJSON}},
		{name: "unknown level", args: []string{"--log-level=loud"}, wantErr: true},
		{name: "unknown format", args: []string{"--log-format=xml"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			got := DefaultOptions()
			got.AddFlags(fs)
			err := fs.Parse(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Parse(%q) error = %v, want error %v", tc.args, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantErr    bool
		debugShown bool
		wantLine   string // a part of the info record
	}{
		{name: "info hides debug", opts: Options{Level: slog.LevelInfo, Format: FormatJSON}, wantLine: `"msg":"shown","error":"boom"`},
		{name: "debug shows debug", opts: Options{Level: slog.LevelDebug, Format: FormatJSON}, debugShown: true, wantLine: `"msg":"shown","error":"boom"`},
		{name: "text", opts: Options{Level: slog.LevelInfo, Format: FormatText}, wantLine: `msg=shown error=boom`},
		{name: "unknown format", opts: Options{Format: "xml"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%+v) error = %v, want error %v", tc.opts, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			log.Debug("hidden-or-not")
			if got := strings.Contains(buf.String(), "hidden-or-not"); got != tc.debugShown {
				t.Errorf("debug line shown = %v, want %v", got, tc.debugShown)
			}
			for _, key := range []string{"err", "Err", "Error", "error"} {
				buf.Reset()
				log.Info("shown", key, errors.New("boom"))
				if !strings.Contains(buf.String(), tc.wantLine) {
					t.Errorf("output %q of key %q lacks %q", buf.String(), key, tc.wantLine)
				}
			}
		})
	}
}

// TestRoute checks that klog (client-go) and controller-runtime log through the handler New
// builds: each of their lines is a JSON record, errors under "error".
func TestRoute(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Level: slog.LevelInfo, Format: FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	prev := slog.Default()
	t.Cleanup(func() { klog.ClearLogger(); slog.SetDefault(prev) })
	Route(log)

	klog.InfoS("klog structured", "pod", "p1")
	klog.Infof("klog printf %d", 7)
	klog.ErrorS(errors.New("watch failed"), "klog error")
	crlog.Log.WithName("manager").Info("controller-runtime line", "controller", "service")
	crlog.Log.Error(errors.New("reconcile failed"), "controller-runtime error")
	logr.FromSlogHandler(slog.Default().Handler()).V(1).Info("debug through the default logger is hidden")
	klog.Flush()

	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q is not a JSON record: %v\nall output:\n%s", line, err, buf.String())
		}
		// Only the fields this test controls.
		for k := range rec {
			switch k {
			case "msg", "level", "error", "pod", "controller", "logger":
			default:
				delete(rec, k)
			}
		}
		got = append(got, rec)
	}
	want := []map[string]any{
		{"msg": "klog structured", "level": "INFO", "pod": "p1"},
		{"msg": "klog printf 7", "level": "INFO"},
		{"msg": "klog error", "level": "ERROR", "error": "watch failed"},
		{"msg": "controller-runtime line", "level": "INFO", "logger": "manager", "controller": "service"},
		{"msg": "controller-runtime error", "level": "ERROR", "error": "reconcile failed"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
