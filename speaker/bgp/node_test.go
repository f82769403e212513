package bgp

// This file runs speakers as real processes in network namespaces: the test binary re-executes
// itself under `ip netns exec` with HERALD_BGP_NODE=1, and TestMain turns it into a small
// speaker driven by JSON lines on stdin/stdout. GoBGP's sockets thus belong to the node's
// namespace, as they do in production.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/herald-lb/herald/internal/testing/frr"
	"github.com/herald-lb/herald/internal/testing/netlab"
)

const nodeEnv = "HERALD_BGP_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		os.Exit(runNode(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// nodeRequest is one line a test sends to a node process.
type nodeRequest struct {
	Op     string     // "peers", "routes", "status", "imported", "mem", "shutdown", "restart"
	Peers  []Peer     `json:",omitempty"`
	Routes []labRoute `json:",omitempty"`
}

// labRoute is how the lab tests write a route: a Route with the peers it goes to, every peer of
// the node when none. The node process turns them into the route tables SetRoutes takes, again
// whenever its peers change.
type labRoute struct {
	Prefix           netip.Prefix
	Communities      []uint32
	LargeCommunities [][3]uint32
	LocalPref        *uint32
	Peers            []string
}

// labTables makes the route tables of peers from routes.
func labTables(peers []Peer, routes []labRoute) Routes {
	out := Routes{}
	for _, r := range routes {
		to := r.Peers
		if len(to) == 0 {
			for _, p := range peers {
				to = append(to, p.Name)
			}
		}
		for _, name := range to {
			out[name] = append(out[name], Route{Prefix: r.Prefix, Communities: r.Communities, LargeCommunities: r.LargeCommunities, LocalPref: r.LocalPref})
		}
	}
	return out
}

// nodeResponse is the node's answer to one request.
type nodeResponse struct {
	Error    string       `json:",omitempty"`
	Status   []PeerStatus `json:",omitempty"`
	Imported int          `json:",omitempty"`
	Mem      *nodeMem     `json:",omitempty"`
}

// nodeMem is the memory a node process uses, after a garbage collection.
type nodeMem struct {
	// HeapInuse is the Go heap in use (runtime.MemStats.HeapInuse), in bytes.
	HeapInuse uint64
	// RSS is the process's resident set size (VmRSS), in bytes.
	RSS uint64
}

// memNow collects garbage, returns freed memory to the OS and reads the process's memory use.
func memNow() (*nodeMem, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	m := &nodeMem{HeapInuse: ms.HeapInuse}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("reading VmRSS: %w", err)
			}
			m.RSS = kb * 1024
		}
	}
	return m, nil
}

// nodeConfig is the node process's configuration, passed in the environment.
type nodeConfig struct {
	RouterID, NodeIPv4, NodeIPv6 netip.Addr
	PrefixLimitRestart           time.Duration
	ListenPort                   int
}

// runNode is the node process: a Speaker configured from the environment, driven by stdin.
// SIGTERM shuts the speaker down (withdraw, Cease) and exits, as the real speaker does.
func runNode(in io.Reader, out io.Writer) int {
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(os.Getenv(nodeEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node config:", err)
		return 2
	}
	level := slog.LevelInfo
	if os.Getenv("HERALD_BGP_DEBUG") != "" {
		level = slog.LevelDebug
	}
	sp, err := New(Config{RouterID: cfg.RouterID, NodeIPv4: cfg.NodeIPv4, NodeIPv6: cfg.NodeIPv6,
		PrefixLimitRestart: cfg.PrefixLimitRestart,
		ListenPort:         cfg.ListenPort,
		Logger:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex // one request or shutdown at a time
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sp.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "shutdown:", err)
		}
		os.Exit(0)
	}()
	var peers []Peer
	var routes []labRoute
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var req nodeRequest
		var resp nodeResponse
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		mu.Lock()
		err := json.Unmarshal(sc.Bytes(), &req)
		if err == nil {
			switch req.Op {
			case "peers":
				peers = req.Peers
				err = errors.Join(sp.SetPeers(ctx, peers), sp.SetRoutes(ctx, labTables(peers, routes)))
			case "routes":
				routes = req.Routes
				err = sp.SetRoutes(ctx, labTables(peers, routes))
			case "status":
				resp.Status = sp.Status()
			case "imported":
				resp.Imported, err = sp.importedPaths()
			case "mem":
				resp.Mem, err = memNow()
			case "shutdown":
				err = sp.Shutdown(ctx)
			case "restart": // as the speaker stops for a rolling update: no withdrawal, then exit
				err = sp.StopForRestart(ctx)
				if err == nil {
					_ = enc.Encode(resp)
					os.Exit(0)
				}
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
		}
		mu.Unlock()
		cancel()
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sp.Shutdown(ctx)
	return 0
}

// importedPaths counts the paths in the servers' RIBs that came from peers (must stay 0).
func (s *Speaker) importedPaths() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sv := range s.servers {
		for _, f := range []gobgp.Family{gobgp.RF_IPv4_UC, gobgp.RF_IPv6_UC} {
			err := sv.bgp.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: f}, func(prefix gobgp.NLRI, paths []*apiutil.Path) {
				for _, p := range paths {
					if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
						fmt.Fprintf(os.Stderr, "imported path of server %v: %v from %v\n", sv.key, prefix, p.PeerAddress)
						n++
					}
				}
			})
			if err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// node is the test's handle on a node process.
type node struct {
	t      testing.TB
	name   string
	ns     string
	v4, v6 netip.Addr
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *json.Decoder
	exited chan struct{}
}

// startNode starts a node process in ns. Its router ID is chosen as the speaker's main does
// (RouterID): the IPv4 address, or one derived from the IPv6 address on an IPv6-only node.
func startNode(t testing.TB, l *netlab.Lab, name, ns string, v4, v6 netip.Addr, opts labOptions) *node {
	t.Helper()
	cfg, _ := json.Marshal(nodeConfig{RouterID: RouterID(v4, v6, name), NodeIPv4: v4, NodeIPv6: v6, PrefixLimitRestart: opts.PrefixLimitRestart, ListenPort: opts.ListenPort})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(cfg))
	cmd.Stderr = &testLogWriter{t: t, prefix: name + ": "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", name, err)
	}
	n := &node{t: t, name: name, ns: ns, v4: v4, v6: v6, cmd: cmd, in: in, out: json.NewDecoder(outp), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-n.exited
	})
	return n
}

// testLogWriter sends a node's log lines to the test log while the test runs.
type testLogWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	done   bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		func() {
			defer func() {
				if recover() != nil { // logging after the test ended
					w.done = true
				}
			}()
			w.t.Log(w.prefix + string(p))
		}()
	}
	return len(p), nil
}

func (n *node) call(req nodeRequest) nodeResponse {
	n.t.Helper()
	b, _ := json.Marshal(req)
	if _, err := n.in.Write(append(b, '\n')); err != nil {
		n.t.Fatalf("node %s: sending %s: %v", n.name, req.Op, err)
	}
	var resp nodeResponse
	if err := n.out.Decode(&resp); err != nil {
		n.t.Fatalf("node %s: reading answer to %s: %v", n.name, req.Op, err)
	}
	return resp
}

func (n *node) setPeers(peers ...Peer) {
	n.t.Helper()
	if r := n.call(nodeRequest{Op: "peers", Peers: peers}); r.Error != "" {
		n.t.Fatalf("node %s: SetPeers: %s", n.name, r.Error)
	}
}

func (n *node) setRoutes(routes ...labRoute) {
	n.t.Helper()
	if r := n.call(nodeRequest{Op: "routes", Routes: routes}); r.Error != "" {
		n.t.Fatalf("node %s: SetRoutes: %s", n.name, r.Error)
	}
}

func (n *node) status(name string) PeerStatus {
	n.t.Helper()
	for _, st := range n.call(nodeRequest{Op: "status"}).Status {
		if st.Name == name {
			return st
		}
	}
	n.t.Fatalf("node %s: no status for peer %s", n.name, name)
	return PeerStatus{}
}

// waitExit waits for the node process to end.
func (n *node) waitExit(ctx context.Context) error {
	select {
	case <-n.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("node %s did not exit: %w", n.name, ctx.Err())
	}
}

// lab is a router namespace running FRR (AS 64500) and node namespaces on one bridge:
// router 198.51.100.1 / 2001:db8::1, node i at 198.51.100.1i / 2001:db8::1i.
type lab struct {
	net    *netlab.Lab
	router *frr.Router
	rns    string
	sw     string // the bridge's namespace; node n's port is p-<n.name>
	nodes  []*node
	// bfdGroup is the router's peer-group of the nodes with BFD (profile "fast"), for waitBFD.
	bfdGroup string
}

var (
	routerV4 = netip.MustParseAddr("198.51.100.1")
	routerV6 = netip.MustParseAddr("2001:db8::1")
)

// labOptions change how newLabWith builds the lab.
type labOptions struct {
	// V6Only gives the nodes no IPv4 address.
	V6Only bool
	// PrefixLimitRestart is the nodes' Config.PrefixLimitRestart.
	PrefixLimitRestart time.Duration
	// ListenPort is the nodes' Config.ListenPort.
	ListenPort int
}

// newLab builds the namespaces, starts FRR with cfg (ASN and router ID filled in when zero)
// and starts n node processes.
func newLab(t *testing.T, n int, cfg frr.Config) *lab {
	t.Helper()
	return newLabWith(t, n, cfg, labOptions{})
}

// newLabWith is newLab with options.
func newLabWith(t *testing.T, n int, cfg frr.Config, opts labOptions) *lab {
	t.Helper()
	if err := frr.Available(); err != nil {
		t.Skip(err)
	}
	l := netlab.ForTest(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sw, err := l.AddNS("sw")
	must(err)
	must(l.Bridge(sw, "br0"))
	host := func(short, v4, v6 string) string {
		ns, err := l.AddNS(short)
		must(err)
		must(l.Veth(ns, "eth0", sw, "p-"+short, "br0"))
		for _, a := range []string{v4, v6} {
			if a == "" {
				continue
			}
			_, err := l.Exec(ns, "ip", "addr", "add", a, "dev", "eth0")
			must(err)
		}
		return ns
	}
	lb := &lab{net: l, sw: sw}
	lb.rns = host("r", routerV4.String()+"/24", routerV6.String()+"/64")
	for i := 1; i <= n; i++ {
		v4 := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		v6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 10+i))
		v4cidr := v4.String() + "/24"
		if opts.V6Only {
			v4, v4cidr = netip.Addr{}, ""
		}
		ns := host(fmt.Sprintf("n%d", i), v4cidr, v6.String()+"/64")
		lb.nodes = append(lb.nodes, startNode(t, l, fmt.Sprintf("n%d", i), ns, v4, v6, opts))
	}
	if cfg.ASN == 0 {
		cfg.ASN = 64500
	}
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = routerV4
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lb.router, err = frr.Start(ctx, lb.rns, cfg)
	must(err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bgpd log:\n%s", lb.router.Log("bgpd"))
		}
		_ = lb.router.Close()
	})
	return lb
}

// nodeGroups are FRR peer-groups accepting eBGP sessions from any node over IPv4 and IPv6.
func nodeGroups() []frr.PeerGroup {
	return []frr.PeerGroup{
		{Name: "nodes4", ListenRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
		{Name: "nodes6", ListenRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, KeepaliveTime: time.Second, HoldTime: 3 * time.Second},
	}
}

// ebgpPeer is a session from a node (AS 64512) to the lab router over IPv4 or IPv6.
func ebgpPeer(name string, addr netip.Addr) Peer {
	return Peer{Name: name, MyASN: 64512, PeerASN: 64500, Address: addr,
		HoldTime: 3 * time.Second, KeepaliveTime: time.Second, ConnectTime: time.Second}
}

func hops(nodes []*node, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		if v6 {
			out = append(out, n.v6)
		} else {
			out = append(out, n.v4)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (lb *lab) waitHops(t testing.TB, ctx context.Context, prefix netip.Prefix, want []netip.Addr) time.Time {
	t.Helper()
	at, err := lb.router.WaitKernelNextHops(ctx, prefix, want, 0)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// neighbor returns FRR's view of the session from addr.
func (lb *lab) neighbor(t testing.TB, ctx context.Context, addr netip.Addr) frr.Neighbor {
	t.Helper()
	ns, err := lb.router.Neighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ns[addr]
}
