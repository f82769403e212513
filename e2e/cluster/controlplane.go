package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-lb/herald/e2e/lab"
	"k8s.io/apimachinery/pkg/util/wait"
)

// controlPlane is etcd, kube-apiserver, kube-controller-manager and kube-scheduler, on the host.
type controlPlane struct {
	etcdDir string
	procs   []*lab.Proc // in start order
}

// EtcdDir is the etcd data folder of run pid: on /dev/shm, since Debian's etcd 3.4 has no
// --unsafe-no-fsync and the disk is slow.
func EtcdDir(pid int) string { return fmt.Sprintf("/dev/shm/%s%d-etcd", shmPrefix, pid) }

// shmPrefix starts every /dev/shm entry of a run (followed by the run's pid).
const shmPrefix = "hrld-"

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startControlPlane makes the PKI and the kubeconfigs and starts etcd, kube-apiserver (at the
// host's lab address), kube-controller-manager and kube-scheduler, then points the clients at it.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	var err error
	if c.pki, err = newPKI(filepath.Join(c.Dir, "pki")); err != nil {
		return err
	}
	api := c.APIServer()
	server := "https://" + api.String()
	svcV4, svcV6 := ServiceCIDRs[0].Addr().Next(), ServiceCIDRs[1].Addr().Next()
	apiCert, apiKey, err := c.pki.issue("kube-apiserver", "kube-apiserver", nil,
		api.Addr().String(), svcV4.String(), svcV6.String(), "127.0.0.1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	if err != nil {
		return err
	}
	kcCert, kcKey, err := c.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"})
	if err != nil {
		return err
	}
	saPub, saKey, err := c.pki.serviceAccountKey()
	if err != nil {
		return err
	}
	if c.AdminKubeconfig, err = c.pki.kubeconfig("admin", server, "herald-lab-admin", "system:masters"); err != nil {
		return err
	}
	kcmKC, err := c.pki.kubeconfig("kube-controller-manager", server, "system:kube-controller-manager")
	if err != nil {
		return err
	}
	schedKC, err := c.pki.kubeconfig("kube-scheduler", server, "system:kube-scheduler")
	if err != nil {
		return err
	}
	if err := c.setClients(); err != nil {
		return err
	}

	cp := &controlPlane{etcdDir: EtcdDir(os.Getpid())}
	c.cp = cp
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := cp.start(c.Dir, "etcd", filepath.Join(c.Assets, "etcd"),
		"--name=lab", "--data-dir="+cp.etcdDir,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=lab="+peerURL, "--initial-cluster-state=new",
		"--logger=zap", "--log-level=warn", "--quota-backend-bytes=2147483648",
	); err != nil {
		return err
	}
	svcRanges := ServiceCIDRs[0].String() + "," + ServiceCIDRs[1].String()
	if err := cp.start(c.Dir, "kube-apiserver", filepath.Join(c.Assets, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address="+api.Addr().String(), "--advertise-address="+api.Addr().String(),
		"--secure-port="+strconv.Itoa(int(api.Port())),
		"--cert-dir="+filepath.Join(c.Dir, "pki"),
		"--tls-cert-file="+apiCert, "--tls-private-key-file="+apiKey,
		"--client-ca-file="+c.pki.CAFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range="+svcRanges,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		// The API server has no kube-proxy in the root namespace: it reaches webhooks at their
		// endpoints (pod addresses, routed to the nodes) rather than at Service IPs.
		"--enable-aggregator-routing=true",
		"--kubelet-client-certificate="+kcCert, "--kubelet-client-key="+kcKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=0",
	); err != nil {
		return err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return err
	}
	if err := cp.start(c.Dir, "kube-controller-manager", filepath.Join(c.Assets, "kube-controller-manager"), append(componentFlags(kcmKC),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+c.pki.CAFile,
		"--cluster-name=herald-lab",
		"--allocate-node-cidrs=false",
		// A node that stops is NotReady after 16 s (the kubelets renew their lease every 2.5 s).
		"--node-monitor-period=2s", "--node-monitor-grace-period=16s",
	)...); err != nil {
		return err
	}
	return cp.start(c.Dir, "kube-scheduler", filepath.Join(c.Assets, "kube-scheduler"), componentFlags(schedKC)...)
}

// componentFlags are the flags kube-controller-manager and kube-scheduler share: kubeconfig kc for
// the API server and for delegated authentication and authorization, no serving port, no leader
// election, no profiling.
func componentFlags(kc string) []string {
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--profiling=false",
		"--v=0",
	}
}

func (cp *controlPlane) start(dir, name, bin string, args ...string) error {
	p, err := lab.StartProc(name, filepath.Join(dir, name+".log"), lab.RootCommand(append([]string{bin}, args...)...))
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return nil
}

// check returns an error naming every control-plane process that has ended.
func (cp *controlPlane) check() error {
	var errs []error
	for _, p := range cp.procs {
		if done, why := p.Exited(); done && !p.Stopped() {
			errs = append(errs, fmt.Errorf("%s ended (%w); last lines of %s:\n%s", p.Name, why, p.LogPath, p.Tail(20)))
		}
	}
	return errors.Join(errs...)
}

// waitAPIServer waits until kube-apiserver answers /readyz with the administrator's credentials.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	ca, err := os.ReadFile(c.pki.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.pki.dir, "admin.crt"), filepath.Join(c.pki.dir, "admin.key"))
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last string
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		if err := c.cp.check(); err != nil {
			return false, err
		}
		resp, err := hc.Get("https://" + c.APIServer().String() + "/readyz")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-apiserver at %s to be ready (last: %s): %w", c.APIServer(), last, err)
	}
	return nil
}

// stop stops the control plane in reverse order and removes etcd's data.
func (cp *controlPlane) stop() error {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		p := cp.procs[i]
		p.Stop(syscall.SIGTERM, 5*time.Second)
	}
	if err := os.RemoveAll(cp.etcdDir); err != nil {
		return fmt.Errorf("removing etcd's data: %w", err)
	}
	return nil
}
