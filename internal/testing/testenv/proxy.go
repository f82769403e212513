package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Request is one request a Proxy forwarded to the API server.
type Request struct {
	Method string
	// Path is the URL path, such as /api/v1/namespaces/ns/services/web/status.
	Path  string
	Watch bool
	// Start is when the proxy received the request, End when it had written the whole answer:
	// End-Start is the API server's latency plus a loopback hop.
	Start, End time.Time
	Code       int
}

// Write reports whether the request changes something (any method but GET, HEAD and OPTIONS).
func (r Request) Write() bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Proxy is a reverse proxy in front of the environment's API server that records every request
// it forwards. A process given Kubeconfig talks to the API server through it over plain HTTP on
// loopback, without credentials of its own (the proxy adds the environment's admin credentials),
// so a test can count the process's writes and time them where the API server answers them.
type Proxy struct {
	// URL is the proxy's address (http://127.0.0.1:port).
	URL string
	// Kubeconfig is the path of a kubeconfig that points at the proxy.
	Kubeconfig string

	srv  *http.Server
	mu   sync.Mutex
	reqs []Request
}

// StartProxy starts a Proxy in front of e's API server until the test ends.
func (e *Env) StartProxy(tb testing.TB) *Proxy {
	tb.Helper()
	target, err := url.Parse(e.Config.Host)
	if err != nil {
		tb.Fatalf("proxy: API server address %q: %v", e.Config.Host, err)
	}
	rt, err := rest.TransportFor(e.Config)
	if err != nil {
		tb.Fatalf("proxy: transport to the API server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listening: %v", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     rt,
		FlushInterval: -1, // watches stream
		ErrorLog:      nil,
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := Request{Method: r.Method, Path: r.URL.Path, Watch: r.URL.Query().Get("watch") == "true", Start: time.Now()}
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			rp.ServeHTTP(sw, r)
			rec.End, rec.Code = time.Now(), sw.code
			p.mu.Lock()
			p.reqs = append(p.reqs, rec)
			p.mu.Unlock()
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = p.srv.Serve(ln) }()
	tb.Cleanup(func() { _ = p.srv.Close() })

	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	p.Kubeconfig = filepath.Join(tb.TempDir(), "proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p.Kubeconfig); err != nil {
		tb.Fatalf("proxy: writing kubeconfig: %v", err)
	}
	return p
}

// Len returns the number of requests answered so far (a mark for Since).
func (p *Proxy) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

// Since returns the requests answered after mark (a value of Len), in the order they ended.
func (p *Proxy) Since(mark int) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs[min(mark, len(p.reqs)):]...)
}

// Resource names the object a request is about, from its path: the resource, the namespace,
// the name and the subresource ("services", "ns", "web", "status"). ok is false for a path that
// is not a resource path.
func (r Request) Resource() (resource, namespace, name, sub string, ok bool) {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	// /api/v1/... or /apis/group/version/...
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "", "", "", "", false
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		namespace, parts = parts[1], parts[2:]
	}
	if len(parts) == 0 {
		return "", "", "", "", false
	}
	resource = parts[0]
	if len(parts) > 1 {
		name = parts[1]
	}
	if len(parts) > 2 {
		sub = parts[2]
	}
	return resource, namespace, name, sub, true
}

// WriteSummary counts the writes of reqs by method, resource and subresource, such as
// "PATCH services/status": 3.
func WriteSummary(reqs []Request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if !r.Write() {
			continue
		}
		res, _, _, sub, ok := r.Resource()
		if !ok {
			res = r.Path
		}
		if sub != "" {
			res += "/" + sub
		}
		out[r.Method+" "+res]++
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets the reverse proxy stream watches through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ErrNoProcess means no child process of the test has the name asked for.
var ErrNoProcess = errors.New("no such child process")

// ChildPID returns the process id of the test process's child named comm (as in /proc/PID/comm,
// at most 15 characters), such as "kube-apiserver" or "etcd" started by Start.
func ChildPID(comm string) (int, error) {
	pids, err := childPIDs()
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		if c, err := readComm(pid); err == nil && c == comm {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", ErrNoProcess, comm)
}
