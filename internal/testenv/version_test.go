package testenv

import (
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
