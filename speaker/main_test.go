package main

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/logging"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(t *testing.T, o options)
		wantErr bool
	}{
		{name: "node name required", wantErr: true},
		{
			name: "flags the DaemonSet uses", args: []string{"--node-name=n1", "--host-ip=198.51.100.11", "--namespace=lb",
				"--memberlist-port=7947", "--memberlist-secret=k", "--metrics-addr=:1", "--health-addr=:2", "--log-level=debug", "--log-format=text"},
			check: func(t *testing.T, o options) {
				if o.nodeName != "n1" || o.hostIP != netip.MustParseAddr("198.51.100.11") || o.namespace != "lb" ||
					o.memberlistPort != 7947 || o.memberlistSecret != "k" || o.metricsAddr != ":1" || o.healthAddr != ":2" || o.logOpts != (logging.Options{Level: slog.LevelDebug, Format: logging.FormatText}) {
					t.Errorf("options = %+v", o)
				}
				if o.timers.ProbeInterval != 70*time.Millisecond {
					t.Errorf("default probe interval = %v, want the members package default", o.timers.ProbeInterval)
				}
				if !o.scaleTimers || o.speakers != 0 {
					t.Errorf("timers not sized for the cluster by default (scale %t, speakers %d)", o.scaleTimers, o.speakers)
				}
			},
		},
		{
			name: "downward API environment", env: map[string]string{"NODE_NAME": "n2", "POD_IP": "2001:db8:1::12"},
			check: func(t *testing.T, o options) {
				if o.nodeName != "n2" || o.hostIP != netip.MustParseAddr("2001:db8:1::12") {
					t.Errorf("options = %+v", o)
				}
				if o.healthAddr != "[2001:db8:1::12]:7475" {
					t.Errorf("health address %q, want the Pod IP (what kubelet probes) port 7475", o.healthAddr)
				}
				if !o.metricsSecure {
					t.Error("metrics served without authentication by default")
				}
			},
		},
		{
			name: "health on the host IP", args: []string{"--node-name=n1", "--host-ip=198.51.100.11"},
			check: func(t *testing.T, o options) {
				if o.healthAddr != "198.51.100.11:7475" {
					t.Errorf("health address %q, want 198.51.100.11:7475", o.healthAddr)
				}
			},
		},
		{
			name: "health without a host IP", args: []string{"--node-name=n1", "--metrics-secure=false"},
			check: func(t *testing.T, o options) {
				if o.healthAddr != ":7475" || o.metricsSecure {
					t.Errorf("health address %q, secure metrics %t; want :7475 and false", o.healthAddr, o.metricsSecure)
				}
			},
		},
		{name: "unencrypted refused", args: []string{"--node-name=n1", "--memberlist-secret="}, wantErr: true},
		{name: "unencrypted allowed explicitly", args: []string{"--node-name=n1", "--memberlist-secret=", "--memberlist-allow-unencrypted"},
			check: func(t *testing.T, o options) {
				if o.memberlistSecret != "" || !o.allowUnencrypted {
					t.Errorf("options = %+v", o)
				}
			}},
		{name: "key Secret by default", args: []string{"--node-name=n1"},
			check: func(t *testing.T, o options) {
				if o.memberlistSecret != "herald-memberlist" || o.allowUnencrypted {
					t.Errorf("memberlist secret %q, allow unencrypted %v; want herald-memberlist, false", o.memberlistSecret, o.allowUnencrypted)
				}
			}},
		{name: "gc percent 50 by default", args: []string{"--node-name=n1"},
			check: func(t *testing.T, o options) {
				if o.gcPercent != 50 {
					t.Errorf("gcPercent = %d, want 50", o.gcPercent)
				}
			}},
		{name: "gc percent is a flag", args: []string{"--node-name=n1", "--gc-percent=100"},
			check: func(t *testing.T, o options) {
				if o.gcPercent != 100 {
					t.Errorf("gcPercent = %d, want 100", o.gcPercent)
				}
			}},
		{name: "zero gc percent", args: []string{"--node-name=n1", "--gc-percent=0"}, wantErr: true},
		{name: "bad log level", args: []string{"--node-name=n1", "--log-level=loud"}, wantErr: true},
		{name: "bad log format", args: []string{"--node-name=n1", "--log-format=xml"}, wantErr: true},
		{name: "bad host IP", args: []string{"--node-name=n1", "--host-ip=node-1"}, wantErr: true},
		{name: "bad POD_IP", env: map[string]string{"NODE_NAME": "n1", "POD_IP": "x"}, wantErr: true},
		{name: "conflict detection on by default", args: []string{"--node-name=n1"},
			check: func(t *testing.T, o options) {
				if !o.l2Conflicts {
					t.Error("l2Conflicts = false, want detection on by default")
				}
			}},
		{name: "conflict detection can be turned off", args: []string{"--node-name=n1", "--l2-conflict-detection=false"},
			check: func(t *testing.T, o options) {
				if o.l2Conflicts {
					t.Error("l2Conflicts = true after --l2-conflict-detection=false")
				}
			}},
		{name: "timers are flags", args: []string{"--node-name=n1", "--memberlist-probe-interval=200ms", "--memberlist-suspicion-mult=5"},
			check: func(t *testing.T, o options) {
				if o.timers.ProbeInterval != 200*time.Millisecond || o.timers.SuspicionMult != 5 {
					t.Errorf("timers = %+v", o.timers)
				}
				if o.scaleTimers {
					t.Error("a probe interval given on the command line is scaled with the cluster size")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", "")
			t.Setenv("POD_IP", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o, err := parseFlags(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFlags(%v) error = %v, want error %v", tc.args, err, tc.wantErr)
			}
			if err == nil && tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}
