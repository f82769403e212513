// Command labbackend is the backend of every Service in Herald's lab. In the process lab one runs
// in each node namespace, where it stands in for the Service's pods: it answers every HTTP request
// with the node's name, so a reply says which node carried the request. It listens on the node
// ports listed in a file (one per line), which the lab runner rewrites before sending SIGHUP.
// Once its SIGHUP handler is in place it creates "<ports file>.ready"; the runner signals only a
// backend whose ready file exists (a SIGHUP that came before the handler would kill the process),
// and a backend reads the ports file after creating it, so no rewrite is ever missed.
//
// In the cluster lab (e2e/cluster) it is the program of the backend image: a Deployment's pods
// run it with -listen (fixed addresses) instead of -ports-file, -name set to the node the pod
// runs on and -pod to the pod's name, which it returns in the X-Herald-Pod header.
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
	pod       string
	portsFile string
	listen    string
}

func main() {
	var o options
	flag.StringVar(&o.name, "name", "", "node name to answer with")
	flag.StringVar(&o.pod, "pod", "", "pod name to return in the X-Herald-Pod header (optional)")
	flag.StringVar(&o.portsFile, "ports-file", "", "file with the TCP ports to listen on, one per line; re-read on SIGHUP")
	flag.StringVar(&o.listen, "listen", "", "comma-separated addresses to listen on (host:port), instead of -ports-file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if o.name == "" || (o.portsFile == "") == (o.listen == "") {
		fmt.Fprintln(os.Stderr, "labbackend: -name and one of -ports-file and -listen are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("labbackend failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if o.pod != "" {
			w.Header().Set("X-Herald-Pod", o.pod)
		}
		_, _ = fmt.Fprintln(w, o.name)
	})
	if o.listen != "" {
		return serveFixed(ctx, strings.Split(o.listen, ","), handler, log)
	}
	servers := map[int]*http.Server{}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := os.WriteFile(o.portsFile+".ready", nil, 0o644); err != nil {
		return fmt.Errorf("saying the SIGHUP handler is ready: %w", err)
	}
	for {
		want, err := readPorts(o.portsFile)
		if err != nil {
			log.Error("reading ports", "error", err)
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
					log.Error("listening", "port", port, "error", err)
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

// serveFixed serves handler on every address until ctx ends.
func serveFixed(ctx context.Context, addrs []string, handler http.Handler, log *slog.Logger) error {
	var servers []*http.Server
	errc := make(chan error, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", strings.TrimSpace(a))
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return fmt.Errorf("listening on %s: %w", a, err)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
		log.Info("listening", "addr", ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("serving", "error", err)
	}
	for _, s := range servers {
		_ = s.Close()
	}
	return nil
}
