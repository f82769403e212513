package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, level string
		wantErr     bool
		debugShown  bool
	}{
		{name: "info hides debug", level: "info"},
		{name: "debug shows debug", level: "debug", debugShown: true},
		{name: "case-insensitive", level: "WARN"},
		{name: "unknown level", level: "loud", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, tc.level)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%q) error = %v, want error %v", tc.level, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			log.Debug("hidden-or-not")
			if got := strings.Contains(buf.String(), "hidden-or-not"); got != tc.debugShown {
				t.Errorf("debug line shown = %v, want %v", got, tc.debugShown)
			}
		})
	}
}
