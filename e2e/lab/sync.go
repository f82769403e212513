package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/internal/kube"
)

// startBackends starts labbackend in every node namespace, listening on no port until the DNAT
// sync writes its ports file.
func (l *Lab) startBackends() error {
	for _, n := range l.Nodes {
		name := "backend-" + n.Name
		_ = os.Remove(l.portsFile(n.Name) + ".ready") // the new process makes its own
		args := []string{filepath.Join(l.binDir, "labbackend"), "-name", n.Name, "-ports-file", l.portsFile(n.Name)}
		p, err := startProc(name, filepath.Join(l.RunDir, name+".log"), func(out *os.File) (*exec.Cmd, error) {
			return l.net.Start(l.ns[n.Name], out, out, args...)
		})
		if err != nil {
			return err
		}
		l.addProc(p)
	}
	return nil
}

func (l *Lab) portsFile(node string) string { return filepath.Join(l.RunDir, node+".ports") }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startDNATSync watches Services and EndpointSlices and, on every change, recomputes each node's
// DNAT rules and backend ports (level-triggered: one pass over the informers' caches). Its client
// waits for the API server like Herald's do (kube.HoldWhileUnreachable), so the lab's stand-in for
// kube-proxy resumes at once after StopAPIServer and StartAPIServer.
func (l *Lab) startDNATSync(ctx context.Context) error {
	cfg := rest.CopyConfig(l.Env.Config)
	if _, err := kube.HoldWhileUnreachable(cfg, l.log.With("component", "dnat-sync")); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the DNAT sync's client: %w", err)
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	svcInf := f.Core().V1().Services()
	epInf := f.Discovery().V1().EndpointSlices()
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { trigger(kick) },
		UpdateFunc: func(any, any) { trigger(kick) },
		DeleteFunc: func(any) { trigger(kick) },
	}
	if _, err := svcInf.Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("watching services: %w", err)
	}
	if _, err := epInf.Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("watching endpoint slices: %w", err)
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("syncing the cache of %v", typ)
		}
	}
	// An empty table in every node, so `nft list table` works from the start.
	if err := l.syncDNAT(ctx, nil, nil); err != nil {
		return err
	}
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		defer f.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			svcs, _ := svcInf.Lister().List(labels.Everything())
			eps, _ := epInf.Lister().List(labels.Everything())
			if err := l.syncDNAT(ctx, svcs, eps); err != nil && ctx.Err() == nil {
				l.log.Error("syncing DNAT rules", "error", err)
				trigger(kick) // retry on the next round
			}
		}
	}()
	return nil
}

func trigger(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (l *Lab) syncDNAT(ctx context.Context, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) error {
	fws := PlanForwards(l.Nodes, svcs, eps)
	for _, n := range l.Nodes {
		script := RenderNFT(n, fws[n.Name])
		var ports []string
		for _, p := range NodePorts(fws[n.Name]) {
			ports = append(ports, strconv.Itoa(int(p)))
		}
		l.mu.Lock()
		same := l.dnatLast[n.Name] == script
		l.mu.Unlock()
		if same {
			continue
		}
		// Backend first, so the rule never points at a port nobody listens on for long.
		if err := os.WriteFile(l.portsFile(n.Name), []byte(strings.Join(ports, "\n")+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing ports of %s: %w", n.Name, err)
		}
		// A backend that has not yet made its ready file reads the ports file after it does;
		// signalling it earlier would kill it (SIGHUP before its handler).
		if p := l.Proc("backend-" + n.Name); p != nil && fileExists(l.portsFile(n.Name)+".ready") {
			_ = p.Signal(syscall.SIGHUP)
		}
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns[n.Name], "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("applying nftables rules in %s: %w: %s\n%s", n.Name, err, out, script)
		}
		l.mu.Lock()
		l.dnatLast[n.Name] = script
		l.mu.Unlock()
		l.log.Debug("DNAT rules applied", "node", n.Name, "forwards", len(fws[n.Name]))
	}
	return nil
}

// DNATRules returns the nftables table the runner keeps in node (`nft list table`).
func (l *Lab) DNATRules(ctx context.Context, node string) (string, error) {
	return l.Exec(ctx, node, "nft", "list", "table", "inet", nftTable)
}

// nftDownTable is the table BlockTraffic uses, apart from the DNAT table the sync rewrites.
const nftDownTable = "herald_lab_down"

// BlockTraffic makes node drop every packet to ip, before DNAT: the node stops serving ip as if it
// had failed, while its speaker may still run. Measurements use it so that a request only
// succeeds once another node has taken ip over. UnblockTraffic undoes it.
func (l *Lab) BlockTraffic(ctx context.Context, node string, ip netip.Addr) error {
	match := "ip daddr"
	if ip.Is6() {
		match = "ip6 daddr"
	}
	script := fmt.Sprintf("table inet %s {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -300; policy accept;\n\t\t%s %s drop\n\t}\n}\n", nftDownTable, match, ip)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns[node], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("blocking %s in %s: %w: %s", ip, node, err, out)
	}
	return nil
}

// UnblockTraffic removes what BlockTraffic added in node.
func (l *Lab) UnblockTraffic(ctx context.Context, node string) error {
	_, err := l.Exec(ctx, node, "nft", "delete", "table", "inet", nftDownTable)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}
