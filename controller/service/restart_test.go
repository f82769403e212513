package service_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

// buildController builds herald-controller into a temporary folder.
func buildController(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "herald-controller")
	cmd := exec.Command("go", "build", "-o", bin, "./controller")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the controller: %v\n%s", err, out)
	}
	return bin
}

// controllerProcess is a running herald-controller binary.
type controllerProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
	healthAddr  string
	done        chan error
}

func (f *fixture) runBinary(bin string, extra ...string) *controllerProcess {
	f.t.Helper()
	p := &controllerProcess{metricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(f.t))), healthAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(f.t))), done: make(chan error, 1)}
	args := append([]string{"--kubeconfig", env.Kubeconfig, "--namespace", f.herald, "--lb-class", f.class,
		"--metrics-addr", p.metricsAddr, "--metrics-secure=false", "--health-addr", p.healthAddr, "--enable-webhook=false"}, extra...)
	p.cmd = exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(f.t.TempDir(), "controller.log"))
	if err != nil {
		f.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		f.t.Fatalf("starting the controller: %v", err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	f.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if f.t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				f.t.Logf("controller log (last 4 kB):\n%s", tail(string(b), 4096))
			}
		}
	})
	return p
}

func (p *controllerProcess) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatalf("kill -9: %v", err)
	}
	<-p.done
	p.done <- nil // for the cleanup
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url) //nolint:gosec,noctx // test-only, local address
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// createServices creates n Services of the fixture concurrently and returns when all exist.
func (f *fixture) createServices(c client.Client, prefix string, n int, created func(name string)) {
	f.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	names := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				if err := c.Create(context.Background(), f.newService(name)); err != nil {
					errs <- fmt.Errorf("creating %s: %w", name, err)
					continue
				}
				if created != nil {
					created(name)
				}
			}
		}()
	}
	for i := range n {
		names <- fmt.Sprintf("%s-%05d", prefix, i)
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatal(err)
	}
}

// ipsByService lists the fixture's Services and their addresses.
func (f *fixture) ipsByService() map[string][]string {
	f.t.Helper()
	var list corev1.ServiceList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatalf("listing Services: %v", err)
	}
	out := make(map[string][]string, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = ingressIPs(&list.Items[i])
	}
	return out
}

func countWithIP(m map[string][]string) int {
	n := 0
	for _, ips := range m {
		if len(ips) > 0 {
			n++
		}
	}
	return n
}

// TestRestartMidBurst runs the real binary, kills it with SIGKILL while it assigns addresses to
// a burst of 500 Services, starts a new one and checks that no address moved, none is held
// twice, and every Service ends up with one.
func TestRestartMidBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the controller binary")
	}
	f := newFixture(t)
	const n = 500
	pool := netip.MustParsePrefix("198.18.0.0/22")
	f.pool("burst", []string{pool.String()})
	bin := buildController(t)

	// The first controller is held to 20 requests/s so that the kill lands mid-burst.
	first := f.runBinary(bin, "--kube-api-qps=20", "--kube-api-burst=20")
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	fast, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	f.createServices(fast, "svc", n, nil)
	f.eventually("the first controller assigns some addresses", 60*time.Second, func() (bool, string) {
		got := countWithIP(f.ipsByService())
		return got >= 50, fmt.Sprintf("%d with an address", got)
	})
	first.kill9(t)
	atKill := f.ipsByService()
	assigned := countWithIP(atKill)
	if assigned >= n {
		t.Fatalf("all %d Services had addresses before the kill: the test did not kill mid-burst", n)
	}
	t.Logf("killed the first controller with %d of %d Services assigned", assigned, n)

	second := f.runBinary(bin)
	var final map[string][]string
	f.eventually("every Service gets an address from the second controller", 120*time.Second, func() (bool, string) {
		final = f.ipsByService()
		got := countWithIP(final)
		return got == n, fmt.Sprintf("%d of %d with an address", got, n)
	})

	owner := map[string]string{}
	for name, ips := range final {
		if len(ips) != 1 {
			t.Errorf("%s has %v, want one address", name, ips)
			continue
		}
		if prev, ok := owner[ips[0]]; ok {
			t.Errorf("address %s is held by both %s and %s", ips[0], prev, name)
		}
		owner[ips[0]] = name
		if !pool.Contains(netip.MustParseAddr(ips[0])) {
			t.Errorf("%s got %s, outside pool %s", name, ips[0], pool)
		}
		if before := atKill[name]; len(before) > 0 && before[0] != ips[0] {
			t.Errorf("%s moved from %s to %s across the restart", name, before[0], ips[0])
		}
	}

	// The binary's endpoints: ready once restored, pool metrics current.
	f.eventually("/readyz is ok", 10*time.Second, func() (bool, string) {
		code, body := httpGet("http://" + second.healthAddr + "/readyz")
		return code == http.StatusOK, fmt.Sprint(code, body)
	})
	want := fmt.Sprintf(`herald_pool_addresses_in_use{family="IPv4",pool="burst"} %d`, n)
	f.eventually("pool metrics", 10*time.Second, func() (bool, string) {
		_, body := httpGet("http://" + second.metricsAddr + "/metrics")
		return strings.Contains(body, want) && strings.Contains(body, "herald_config_valid 1"), tail(body, 300)
	})
}
