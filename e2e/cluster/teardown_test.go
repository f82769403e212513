package cluster_test

// This file sorts after the tests that share the package's cluster: its test closes that cluster
// (the machine runs one lab at a time) and brings up clusters of its own.

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-lb/herald/e2e/cluster"
	"github.com/herald-lb/herald/e2e/lab"
)

// childEnv makes the test binary a cluster runner that gets killed (TestKilledRunChild).
const childEnv = "HERALD_CLUSTER_CHILD"

// TestKilledRunChild is not a test: run by TestKilledRunCleanedHelmAndNothingLeft in a child
// process, it brings a cluster up with Herald and backend pods running, prints "UP <run folder>"
// and waits to be killed.
func TestKilledRunChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper process of TestKilledRunCleanedHelmAndNothingLeft")
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockedStart)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := cluster.Start(ctx, cluster.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.NewNamespace(ctx, "child")
	must(t, err)
	_, err = c.CreateBackend(ctx, cluster.Backend{Namespace: ns, Name: "web", Replicas: 3})
	must(t, err)
	_, err = c.WaitReadyPods(ctx, ns, "web", 3)
	must(t, err)
	fmt.Printf("UP %s\n", c.RunDir)
	<-ctx.Done() // killed long before
}

// TestKilledRunCleanedHelmAndNothingLeft: a cluster run killed with SIGKILL while Herald and
// backend pods run is cleaned up by the next run, which runs kube-proxy in iptables mode, installs
// Herald with `helm install` of the chart and serves a layer-2 Service through it; after that run's Close nothing of either
// run is left on the host: no process, mount, cgroup, namespace, link, etcd data, run folder,
// default containerd/kubelet/CNI path, and no root-namespace sysctl changed.
func TestKilledRunCleanedHelmAndNothingLeft(t *testing.T) {
	cluster.Require(t)
	closeCluster() // one lab at a time on a machine
	before, err := cluster.SnapshotHost()
	must(t, err)

	// A run that gets killed.
	child := exec.Command(os.Args[0], "-test.run=^TestKilledRunChild$", "-test.v")
	child.Env = append(os.Environ(), childEnv+"=1")
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	must(t, err)
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	childPID := child.Process.Pid
	upc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if dir, ok := strings.CutPrefix(sc.Text(), "UP "); ok {
				upc <- dir
				continue
			}
			fmt.Fprintln(os.Stderr, "child:", sc.Text())
		}
		close(upc)
	}()
	var childDir string
	select {
	case d, ok := <-upc:
		if !ok {
			t.Fatal("the child run ended before its cluster was up")
		}
		childDir = d
	case <-time.After(lockedStart):
		t.Fatal("the child run's cluster did not come up")
	}
	mid, err := cluster.SnapshotHost()
	must(t, err)
	marks := []string{fmt.Sprintf("hrld-%d-", childPID), childDir}
	if left := mid.Traces(before, marks...); len(left) < 10 {
		t.Fatalf("the child run shows only %d traces on the host, want its namespaces, cgroups, processes: %v", len(left), left)
	}
	must(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	t.Logf("killed the run %d (%s) with its cluster up", childPID, childDir)

	// The next run removes what it left, and installs Herald with helm.
	ctx := deadline(t, lockedStart)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Log: log, Install: cluster.InstallHelm, ProxyMode: cluster.ProxyIPTables})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	t.Logf("next run up in %v (helm install, kube-proxy in iptables mode): %v", time.Since(start).Round(time.Millisecond), c.Timings)
	for _, n := range c.Nodes {
		if out, err := c.Exec(ctx, n.Name, "iptables-save", "-t", "nat"); err != nil || !strings.Contains(out, "KUBE-SERVICES") {
			t.Errorf("node %s has no kube-proxy iptables rules (%v):\n%s", n.Name, err, out)
		}
	}
	now, err := cluster.SnapshotHost()
	must(t, err)
	if left := now.Traces(before, fmt.Sprintf("hrld-%d-", childPID), childDir, cluster.EtcdDir(childPID)); len(left) > 0 {
		t.Errorf("the killed run's traces survived the next run's start:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(childDir); err == nil {
		t.Errorf("the killed run's folder %s is still there", childDir)
	}

	// Herald from the chart serves a layer-2 Service.
	if out, err := exec.CommandContext(ctx, c.HelmPath(), "--kubeconfig", c.AdminKubeconfig, "status", cluster.HelmRelease).CombinedOutput(); err != nil || !strings.Contains(string(out), "STATUS: deployed") {
		t.Errorf("helm status %s: %v\n%s", cluster.HelmRelease, err, out)
	}
	ns, err := c.NewNamespace(ctx, "helm")
	must(t, err)
	_, err = c.CreateBackend(ctx, cluster.Backend{Namespace: ns, Name: "web", Replicas: 2})
	must(t, err)
	_, err = c.WaitReadyPods(ctx, ns, "web", 2)
	must(t, err)
	_, err = c.CreateLBService(ctx, cluster.LBService{Namespace: ns, Name: "web", App: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}})
	must(t, err)
	ips, err := c.WaitIngress(ctx, ns, "web", 1)
	must(t, err)
	owner, err := waitL2Owner(ctx, c, ns, "web", "")
	must(t, err)
	body, err := c.WaitCurl(ctx, "l2client", ips[0], 80, nil)
	must(t, err)
	t.Logf("helm-installed Herald: %s owned by %s, answered by a pod on %s", ips[0], owner, body)
	must(t, onlyOwnerAnswers(ctx, c, ips[0], owner))

	runDir, pid := c.RunDir, os.Getpid()
	closeStart := time.Now()
	must(t, c.Close())
	closed = true
	t.Logf("teardown took %v", time.Since(closeStart).Round(time.Millisecond))
	var left []string
	// Links and processes may take a moment to go after the namespaces are deleted.
	_ = wait.PollUntilContextCancel(deadline(t, 10*time.Second), 100*time.Millisecond, true, func(context.Context) (bool, error) {
		after, err := cluster.SnapshotHost()
		if err != nil {
			return false, err
		}
		left = after.Leftovers(before, fmt.Sprintf("hrld-%d-", childPID), childDir, fmt.Sprintf("hrld-%d-", pid), runDir, strconv.Itoa(pid)+"/cluster")
		return len(left) == 0, nil
	})
	if len(left) > 0 {
		t.Errorf("left on the host after both runs:\n%s", strings.Join(left, "\n"))
	}
}
