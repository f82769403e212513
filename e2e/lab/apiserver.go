package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// apiServerProc names the kube-apiserver the lab restarted itself (see StartAPIServer).
const apiServerProc = "kube-apiserver"

// StopAPIServer stops the lab's kube-apiserver process the way a control-plane upgrade does
// (SIGTERM; SIGKILL after apiServerGrace, since with watches open kube-apiserver takes a minute to
// drain, and kubelet does not wait that long for a static pod either), and closes the lab's listener in front of it, so processes in the
// lab get "connection refused" as in-cluster clients of a stopped API server do. etcd keeps running
// with everything in it. StartAPIServer brings the API server back.
func (l *Lab) StopAPIServer(ctx context.Context) error {
	l.mu.Lock()
	ln := l.proxy
	l.proxy = nil
	l.apiStopped = true
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if p := l.Proc(apiServerProc); p != nil {
		if done, _ := p.Exited(); !done {
			p.Stop(syscall.SIGTERM, apiServerGrace)
		}
		return nil
	}
	// The API server envtest started: remember its command line, then stop it. envtest's own
	// goroutine waits for it; here only /proc tells when it is gone.
	pid, err := l.findAPIServer()
	if err != nil {
		return err
	}
	if l.apiServerCmd, err = processCommand(pid); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping kube-apiserver (pid %d): %w", pid, err)
	}
	gone := func(context.Context) (bool, error) { return !pidAlive(pid) || zombie(pid), nil }
	gctx, cancel := context.WithTimeout(ctx, apiServerGrace)
	defer cancel()
	if err := wait.PollUntilContextCancel(gctx, 20*time.Millisecond, true, gone); err == nil {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(kctx, 20*time.Millisecond, true, gone); err != nil {
		return fmt.Errorf("waiting for kube-apiserver (pid %d) to end: %w", pid, err)
	}
	return nil
}

// apiServerGrace is how long StopAPIServer lets kube-apiserver shut down before it kills it.
const apiServerGrace = 5 * time.Second

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the command line,
// certificates and etcd it had, logging to kube-apiserver.log in the run folder, and opens the
// lab's listener again. It does not wait for the API server to be ready: see WaitAPIServerReady.
func (l *Lab) StartAPIServer() error {
	if len(l.apiServerCmd) == 0 {
		return errors.New("starting kube-apiserver: it was not stopped with StopAPIServer")
	}
	if p := l.Proc(apiServerProc); p != nil {
		if done, _ := p.Exited(); !done {
			return fmt.Errorf("kube-apiserver is still running (pid %d)", p.PID())
		}
	}
	p, err := startProc(apiServerProc, filepath.Join(l.RunDir, "kube-apiserver.log"), RootCommand(l.apiServerCmd...))
	if err != nil {
		return err
	}
	l.addProc(p)
	ln, err := net.Listen("tcp", l.Plan.APIServerAddr.String())
	if err != nil {
		return fmt.Errorf("listening for the lab on %s again: %w", l.Plan.APIServerAddr, err)
	}
	l.mu.Lock()
	l.proxy = ln
	l.apiStopped = false
	l.mu.Unlock()
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		relay(ln, l.apiServerBackend)
	}()
	return nil
}

// APIServerStopped reports whether StopAPIServer stopped the API server and StartAPIServer has not
// started it again.
func (l *Lab) APIServerStopped() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.apiStopped
}

// WaitAPIServerReady polls the API server's /readyz every 10 ms until it answers "ok", and returns
// the time of that answer.
func (l *Lab) WaitAPIServerReady(ctx context.Context) (time.Time, error) {
	var ready time.Time
	var last error
	rc := l.Clientset.Discovery().RESTClient()
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		body, err := rc.Get().AbsPath("/readyz").DoRaw(actx)
		if err != nil {
			last = err
			return false, nil
		}
		ready = time.Now()
		return strings.TrimSpace(string(body)) == "ok", nil
	})
	if err != nil {
		if last != nil {
			err = fmt.Errorf("%w (last error: %w)", err, last)
		}
		return time.Time{}, fmt.Errorf("waiting for kube-apiserver's /readyz: %w", err)
	}
	return ready, nil
}

// findAPIServer returns the pid of the kube-apiserver envtest started for this lab: a child of
// this process whose command line names the run folder (its certificates live there).
func (l *Lab) findAPIServer() (int, error) {
	for _, pid := range referringPIDs(l.RunDir) {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err == nil && filepath.Base(exe) == "kube-apiserver" && parentPID(pid) == os.Getpid() {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("finding kube-apiserver: no child process of %d runs it with files in %s", os.Getpid(), l.RunDir)
}

// parentPID reads the parent of pid from /proc (0 when unknown).
func parentPID(pid int) int {
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// processCommand returns the executable and arguments of a running process.
func processCommand(pid int) ([]string, error) {
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return nil, fmt.Errorf("reading the command of pid %d: %w", pid, err)
	}
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading the command of pid %d: %w", pid, err)
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(args) == 0 {
		return nil, fmt.Errorf("pid %d has an empty command line", pid)
	}
	args[0] = exe
	return args, nil
}
