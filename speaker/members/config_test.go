package members

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

func TestConfigNormalize(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	valid := func(f func(*Config)) Config {
		c := Config{NodeName: "node-1", Logger: logger}
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty for success
	}{
		{name: "minimal", cfg: valid(func(*Config) {})},
		{name: "no node name", cfg: valid(func(c *Config) { c.NodeName = "" }), wantErr: "NodeName is empty"},
		{name: "no logger", cfg: valid(func(c *Config) { c.Logger = nil }), wantErr: "no Logger given"},
		{name: "AES-128 key", cfg: valid(func(c *Config) { c.SecretKey = make([]byte, 16) })},
		{name: "bad key length", cfg: valid(func(c *Config) { c.SecretKey = make([]byte, 20) }), wantErr: "SecretKey of 20 bytes"},
		{name: "keyring", cfg: valid(func(c *Config) { c.SecretKey, c.SecondaryKeys = make([]byte, 32), [][]byte{make([]byte, 16)} })},
		{
			name:    "secondary keys without a primary",
			cfg:     valid(func(c *Config) { c.SecondaryKeys = [][]byte{make([]byte, 32)} }),
			wantErr: "SecondaryKeys given without a SecretKey",
		},
		{
			name: "bad secondary key length",
			cfg: valid(func(c *Config) {
				c.SecretKey, c.SecondaryKeys = make([]byte, 32), [][]byte{make([]byte, 32), make([]byte, 7)}
			}),
			wantErr: "SecondaryKeys[1] of 7 bytes",
		},
		{name: "bad port", cfg: valid(func(c *Config) { c.BindPort = 70000 }), wantErr: "BindPort 70000"},
		{name: "meta too long", cfg: valid(func(c *Config) { c.Meta = make([]byte, 600) }), wantErr: "metadata is 600 bytes"},
		{name: "join host name", cfg: valid(func(c *Config) { c.Join = []string{"node-2"} }), wantErr: `peer address "node-2"`},
		{name: "join addresses", cfg: valid(func(c *Config) { c.Join = []string{"192.0.2.1", "[2001:db8::1]:7000"} })},
		{
			name:    "probe timeout not shorter than interval",
			cfg:     valid(func(c *Config) { c.Timers.ProbeInterval = 35 * time.Millisecond }),
			wantErr: "ProbeTimeout (35ms) must be shorter",
		},
		{
			name:    "negative timer",
			cfg:     valid(func(c *Config) { c.Timers.SuspicionMult = -1 }),
			wantErr: "timers: SuspicionMult is -1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want %v containing %q", err, ErrInvalidConfig, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got, err := Config{NodeName: "n", Logger: slog.New(slog.DiscardHandler), Timers: Timers{ProbeInterval: time.Second}}.normalize()
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	want := DefaultTimers()
	want.ProbeInterval = time.Second
	if diff := cmp.Diff(want, got.Timers); diff != "" {
		t.Errorf("timers (-want +got):\n%s", diff)
	}
	if got.BindPort != DefaultPort || got.BindAddr != netip.IPv4Unspecified() {
		t.Errorf("bind = %s:%d, want 0.0.0.0:%d", got.BindAddr, got.BindPort, DefaultPort)
	}
}

func TestParsePeer(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "192.0.2.1", want: "192.0.2.1:7946"},
		{in: "192.0.2.1:8000", want: "192.0.2.1:8000"},
		{in: "2001:db8::1", want: "[2001:db8::1]:7946"},
		{in: "[2001:db8::1]:8000", want: "[2001:db8::1]:8000"},
		{in: "::ffff:192.0.2.1", want: "192.0.2.1:7946"},
		{in: "192.0.2.1:0", wantErr: true},
		{in: "node-2", wantErr: true},
		{in: "node-2:7946", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePeer(tt.in, DefaultPort)
			if tt.wantErr {
				if err == nil {
					t.Errorf("parsePeer(%q) = %s, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("parsePeer(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLogWriter(t *testing.T) {
	buf := &syncBuffer{}
	w := &logWriter{log: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))}
	for _, line := range []string{
		"[WARN] memberlist: Was able to connect to b over TCP but UDP probes failed\n",
		"no level at all\n",
	} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(line))
		}
	}
	want := `level=DEBUG msg="Was able to connect to b over TCP but UDP probes failed" source=memberlist memberlistLevel=WARN
level=DEBUG msg="no level at all" source=memberlist memberlistLevel=""
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("log output (-want +got):\n%s", diff)
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestNoKeyWarns(t *testing.T) {
	buf := &syncBuffer{}
	m, err := New(Config{
		NodeName: "a", BindAddr: netip.MustParseAddr("127.0.0.1"), BindPort: testenv.FreePort(t),
		Logger: slog.New(slog.NewTextHandler(buf, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Shutdown()
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "NOT encrypted") {
		t.Errorf("no warning about unencrypted gossip in:\n%s", buf)
	}
}

// TestMemberlistConfig checks the memberlist settings that are decisions rather than timers.
func TestMemberlistConfig(t *testing.T) {
	m, err := New(Config{NodeName: "a", Logger: slog.New(slog.DiscardHandler), SecretKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	c := m.memberlistConfig()
	if c.EnableCompression {
		t.Errorf("compression is on: it costs CPU on every datagram and saves nothing on probes")
	}
	if c.Keyring == nil || !c.GossipVerifyIncoming || !c.GossipVerifyOutgoing {
		t.Errorf("encryption not enforced both ways: keyring %v, verify in %v out %v", c.Keyring != nil, c.GossipVerifyIncoming, c.GossipVerifyOutgoing)
	}
}

func TestTimersFor(t *testing.T) {
	tests := []struct {
		n             int
		interval      time.Duration
		maxPktsPerSec float64
	}{
		{n: 0, interval: 70 * time.Millisecond}, {n: 3, interval: 70 * time.Millisecond}, {n: 20, interval: 70 * time.Millisecond},
		{n: 50, interval: 60 * time.Millisecond}, {n: 200, interval: 47 * time.Millisecond}, {n: 1000, interval: 38 * time.Millisecond},
		{n: 1_000_000, interval: 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			got := TimersFor(tt.n)
			if got.ProbeInterval != tt.interval || got.ProbeTimeout != tt.interval/2 {
				t.Errorf("TimersFor(%d): probe interval %s, timeout %s; want %s and %s", tt.n, got.ProbeInterval, got.ProbeTimeout, tt.interval, tt.interval/2)
			}
			if err := got.validate(); err != nil {
				t.Errorf("TimersFor(%d) is not valid: %v", tt.n, err)
			}
			// The detection estimate stays within the budget (or the interval is at its floor).
			est := time.Duration((1.5 + float64(got.SuspicionMult)*max(1, math.Log10(float64(max(tt.n, 1))))) * float64(got.ProbeInterval))
			if est > DetectionBudget+got.ProbeInterval && got.ProbeInterval > minProbeInterval {
				t.Errorf("TimersFor(%d): detection estimate %s over the budget %s", tt.n, est, DetectionBudget)
			}
		})
	}
}
