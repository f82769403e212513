// Command labbackend is the backend of every Service in Herald's lab. One runs in each node
// namespace, where it stands in for the Service's pods: it answers every HTTP request with the
// node's name, so a reply says which node carried the request. It listens on the node ports
// listed in a file (one per line), which the lab runner rewrites before sending SIGHUP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	name      string
	portsFile string
}

func main() {
	var o options
	flag.StringVar(&o.name, "name", "", "node name to answer with")
	flag.StringVar(&o.portsFile, "ports-file", "", "file with the TCP ports to listen on, one per line; re-read on SIGHUP")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if o.name == "" || o.portsFile == "" {
		fmt.Fprintln(os.Stderr, "labbackend: -name and -ports-file are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("labbackend failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintln(w, o.name)
	})
	servers := map[int]*http.Server{}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		want, err := readPorts(o.portsFile)
		if err != nil {
			log.Error("reading ports", "err", err)
		} else {
			for port, srv := range servers {
				if !want[port] {
					_ = srv.Close()
					delete(servers, port)
					log.Info("closed", "port", port)
				}
			}
			for port := range want {
				if servers[port] != nil {
					continue
				}
				ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
				if err != nil {
					log.Error("listening", "port", port, "err", err)
					continue
				}
				srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
				servers[port] = srv
				go func() { _ = srv.Serve(ln) }()
				log.Info("listening", "port", port)
			}
		}
		select {
		case <-ctx.Done():
			for _, srv := range servers {
				_ = srv.Close()
			}
			return nil
		case <-hup:
		}
	}
}

func readPorts(path string) (map[int]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[int]bool{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := map[int]bool{}
	for _, f := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s: bad port %q", path, f)
		}
		out[p] = true
	}
	return out, nil
}
