// Package netlab creates throw-away network namespaces, bridges and veth pairs for tests, benchmarks
// and the local lab, and removes them again. It drives iproute2 (`ip`) rather than netlink so that what
// it does can be read and repeated by hand.
//
// Every namespace it creates is named "hrld-<pid>-<name>", where pid is the creating process. Close
// removes what a Lab made; RemoveStale removes what crashed or interrupted runs left behind (namespaces
// whose creating process is gone), so a new run starts clean without touching a concurrent run's lab.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace netlab creates.
const Prefix = "hrld-"

// ErrUnavailable is returned by Available when this process cannot build a lab (not root, no iproute2).
var ErrUnavailable = errors.New("network namespaces unavailable")

// Available reports whether namespaces, veth pairs and bridges can be created here.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: iproute2 'ip' not found: %w", ErrUnavailable, err)
	}
	return nil
}

// Lab is a set of namespaces and the processes started in them. It is safe for concurrent use.
type Lab struct {
	mu    sync.Mutex
	nss   []string
	procs []*exec.Cmd
}

// New returns an empty lab after removing what earlier, dead runs left behind.
func New() (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := RemoveStale(); err != nil {
		return nil, err
	}
	return &Lab{}, nil
}

// NSName is the full namespace name a Lab uses for the short name.
func NSName(short string) string { return fmt.Sprintf("%s%d-%s", Prefix, os.Getpid(), short) }

// AddNS creates a namespace, brings its loopback up and returns its full name.
func (l *Lab) AddNS(short string) (string, error) {
	name := NSName(short)
	if _, err := run("ip", "netns", "add", name); err != nil {
		return "", fmt.Errorf("creating namespace %s: %w", name, err)
	}
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		// Addresses usable at once, and neighbour entries learnt from gratuitous frames.
		{"sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
	} {
		if _, err := l.Exec(name, c...); err != nil {
			return "", err
		}
	}
	return name, nil
}

// Bridge creates a bridge in ns with STP off, no forwarding delay and no multicast snooping, and brings it up.
func (l *Lab) Bridge(ns, name string) error {
	if _, err := l.Exec(ns, "ip", "link", "add", name, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	_, err := l.Exec(ns, "ip", "link", "set", name, "up")
	return err
}

// Veth connects namespace a (interface aIf) to namespace b (interface bIf) and brings both ends up.
// If bridge is not empty, the b end is enslaved to that bridge in b.
func (l *Lab) Veth(a, aIf, b, bIf, bridge string) error {
	if _, err := l.Exec(a, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b); err != nil {
		return err
	}
	if _, err := l.Exec(a, "ip", "link", "set", aIf, "up"); err != nil {
		return err
	}
	if bridge != "" {
		if _, err := l.Exec(b, "ip", "link", "set", bIf, "master", bridge); err != nil {
			return err
		}
	}
	_, err := l.Exec(b, "ip", "link", "set", bIf, "up")
	return err
}

// Exec runs a command inside ns and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Start starts a long-running command inside ns. Its output goes to the given writers (nil: discarded).
// Close stops it.
func (l *Lab) Start(ns string, stdout, stderr *os.File, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %q in %s: %w", strings.Join(args, " "), ns, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
	return cmd, nil
}

// Close kills every process started in the lab's namespaces and deletes the namespaces.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, nss := l.procs, l.nss
	l.procs, l.nss = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		if p.Process != nil {
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			_ = p.Wait()
		}
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := removeNS(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveStale deletes namespaces left by netlab runs whose process no longer exists.
func RemoveStale() error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("listing namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := removeNS(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveAll deletes every namespace netlab has ever created on this machine, live runs' included.
// It is for `make clean`-style teardown by a person, not for tests.
func RemoveAll() error {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil //nolint:nilerr // no namespaces directory: nothing to remove
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), Prefix) {
			errs = append(errs, removeNS(e.Name()))
		}
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removeNS kills what still runs inside a namespace, waits for it, and deletes the namespace.
func removeNS(name string) error {
	out, _ := run("ip", "netns", "pids", name)
	pids := strings.Fields(out)
	for _, p := range pids {
		if pid, err := strconv.Atoi(p); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		pid, err := strconv.Atoi(p)
		if err != nil {
			continue
		}
		for processAlive(pid) && time.Now().Before(deadline) {
			// Not our child: poll /proc until the kernel has reaped it.
			if _, err := os.Stat(filepath.Join("/proc", p)); err != nil {
				break
			}
			if st, err := os.ReadFile(filepath.Join("/proc", p, "stat")); err == nil && bytes.Contains(st, []byte(") Z ")) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := run("ip", "netns", "del", name); err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	return nil
}

// Do runs fn on an OS thread switched into namespace ns. Sockets fn creates stay in ns after it returns,
// so a test can open a packet socket inside a namespace and use it from any goroutine.
func Do(ns string, fn func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine instead of serving others in ns.
			errc <- errors.Join(ferr, fmt.Errorf("leaving namespace %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func run(args ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
