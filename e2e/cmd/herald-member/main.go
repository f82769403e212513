// Command herald-member runs one speaker's membership alone (package speaker/members, with the
// timers the speaker chooses for a cluster of -size nodes and an encryption key) as a light
// process: the membership test of e2e/scale starts many, each under the DaemonSet's CPU limit, to
// measure failure detection and false deaths with real processes, sockets and CFS quotas.
//
// It writes one JSON object per line on standard output: membership events (joined, gone,
// updated), memberlist's suspicions, refutations and death declarations (suspect, refute, dead,
// with the node they name), and every -traffic-every what it has sent so far. It leaves the
// cluster and exits on SIGTERM, and exits at once when its standard input is closed (the test
// ended or died).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-lb/herald/speaker/members"
)

// line is one line of output. T is the wall clock in Unix nanoseconds: the test compares it with
// the time it killed a member.
type line struct {
	T     int64  `json:"t"`
	Event string `json:"event"`
	Node  string `json:"node,omitempty"`
	// Traffic, in "traffic" lines.
	UDPPackets uint64 `json:"udpPackets,omitempty"`
	UDPBytes   uint64 `json:"udpBytes,omitempty"`
	TCPBytes   uint64 `json:"tcpBytes,omitempty"`
	// Dropped counts the lines lost because standard output was not read fast enough.
	Dropped uint64 `json:"dropped,omitempty"`
	Msg     string `json:"msg,omitempty"`
}

// out writes lines from one goroutine: membership events arrive under memberlist's locks and
// must not wait for the pipe.
type out struct {
	ch      chan line
	mu      sync.Mutex
	dropped uint64
}

func (o *out) send(l line) {
	if l.T == 0 {
		l.T = time.Now().UnixNano()
	}
	select {
	case o.ch <- l:
	default:
		o.mu.Lock()
		o.dropped++
		o.mu.Unlock()
	}
}

func (o *out) run(w io.Writer) {
	enc := json.NewEncoder(w)
	for l := range o.ch {
		if l.Event == "traffic" {
			o.mu.Lock()
			l.Dropped = o.dropped
			o.mu.Unlock()
		}
		if err := enc.Encode(l); err != nil {
			os.Exit(1) // the reader is gone
		}
	}
}

// logHandler turns memberlist's log lines (which package members logs at debug level, without
// memberlist's prefix) about suspicions and deaths into lines of output.
type logHandler struct{ o *out }

func (h logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	level := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "memberlistLevel" {
			level = a.Value.String()
		}
		return true
	})
	var ev string
	switch {
	case strings.HasPrefix(msg, "Suspect "):
		ev = "suspect" // "Suspect <node> has failed, no acks received"
	case strings.HasPrefix(msg, "Refuting a suspect message"):
		ev = "refute"
	case strings.HasPrefix(msg, "Marking "):
		ev = "dead" // "Marking <node> as failed, suspect timeout reached (...)"
	case level == "ERR":
		ev = "error"
	default:
		return nil
	}
	node := ""
	if f := strings.Fields(msg); len(f) > 1 && ev != "refute" && ev != "error" {
		node = f[1]
	}
	h.o.send(line{Event: ev, Node: node, Msg: msg})
	return nil
}
func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHandler) WithGroup(string) slog.Handler      { return h }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "herald-member:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "", "member name (a node name); required")
	addr := flag.String("addr", "", "address to bind and advertise; required")
	port := flag.Int("port", members.DefaultPort, "gossip port")
	join := flag.String("join", "", "comma-separated addresses (IP or IP:port) to join")
	size := flag.Int("size", 3, "cluster size the timers are chosen for (members.TimersFor)")
	key := flag.String("key", "", "gossip encryption key, hex (16, 24 or 32 bytes); empty: none")
	every := flag.Duration("traffic-every", time.Second, "how often to print the traffic sent so far")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	if *name == "" || *addr == "" {
		return fmt.Errorf("-name and -addr are required")
	}
	ip, err := netip.ParseAddr(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	var secret []byte
	if *key != "" {
		if secret, err = hex.DecodeString(*key); err != nil {
			return fmt.Errorf("-key: %w", err)
		}
	}
	o := &out{ch: make(chan line, 4096)}
	go o.run(os.Stdout)
	cfg := members.Config{
		NodeName: *name, BindAddr: ip, BindPort: *port, AdvertiseAddr: ip,
		SecretKey: secret, Timers: members.TimersFor(*size),
		Logger: slog.New(logHandler{o: o}),
		Notify: func(ev members.Event) { o.send(line{Event: ev.Kind.String(), Node: ev.Node}) },
	}
	if *join != "" {
		cfg.Join = strings.Split(*join, ",")
	}
	m, err := members.New(cfg)
	if err != nil {
		return err
	}
	if err := m.Start(); err != nil {
		return err
	}
	o.send(line{Event: "started"})

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			tr := m.Traffic()
			o.send(line{Event: "traffic", UDPPackets: tr.UDPPackets, UDPBytes: tr.UDPBytes, TCPBytes: tr.TCPBytes})
		case <-term:
			_ = m.Leave(time.Second)
			return m.Shutdown()
		case <-stdinClosed:
			return nil
		}
	}
}
