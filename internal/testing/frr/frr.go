// Package frr runs an FRRouting BGP router (zebra and bgpd from the Debian package) inside a
// network namespace, for tests, benchmarks and the end-to-end lab, and reads back what it learnt:
// BGP neighbors and routes through `vtysh ... json`, and the routes zebra installed in the
// namespace's kernel table through `ip -json route`.
//
// A Router owns a temporary directory holding its configuration, sockets, PID files and logs;
// Close stops both daemons and removes the directory. The package knows nothing about Herald's
// speaker: it is the "upstream router" of the lab.
package frr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// BinDir is where the Debian package installs the FRR daemons.
const BinDir = "/usr/lib/frr"

// ErrUnavailable is returned by Available when FRR cannot run here (not root, not installed).
var ErrUnavailable = errors.New("FRR unavailable")

// Available reports whether FRR daemons can be started by this process.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (running as uid %d)", ErrUnavailable, os.Geteuid())
	}
	for _, bin := range []string{filepath.Join(BinDir, "zebra"), filepath.Join(BinDir, "bgpd")} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	for _, bin := range []string{"vtysh", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if _, err := user.Lookup("frr"); err != nil {
		return fmt.Errorf("%w: user frr: %w", ErrUnavailable, err)
	}
	return nil
}

// Router is a running zebra+bgpd pair (and bfdd when asked for) in one namespace.
type Router struct {
	ns    string
	dir   string
	zebra *exec.Cmd
	bfdd  *exec.Cmd
	bgpd  *exec.Cmd
}

// startTimeout bounds how long Start waits for each daemon to answer.
const startTimeout = 15 * time.Second

// Start writes cfg into a new temporary directory and starts zebra and then bgpd inside the
// network namespace ns (a name under /run/netns). It returns once bgpd answers vtysh.
func Start(ctx context.Context, ns string, cfg Config) (r *Router, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	conf, err := cfg.Render()
	if err != nil {
		return nil, err
	}
	bfdConf, err := cfg.RenderBFD()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "herald-frr-")
	if err != nil {
		return nil, fmt.Errorf("creating FRR directory: %w", err)
	}
	r = &Router{ns: ns, dir: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Close())
		}
	}()
	u, err := user.Lookup("frr")
	if err != nil {
		return nil, fmt.Errorf("looking up user frr: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	files := map[string]string{
		"zebra.conf": "hostname " + cfg.hostname() + "\n",
		"bgpd.conf":  conf,
		"bfdd.conf":  bfdConf,
		// vtysh reads vtysh.conf from its own config directory; an empty one keeps it quiet.
		"vtysh.conf": "",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, fmt.Errorf("chown %s: %w", p, err)
		}
	}
	if err := os.Chmod(dir, 0o770); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", dir, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("chown %s: %w", dir, err)
	}

	if r.zebra, err = r.daemon("zebra"); err != nil {
		return nil, err
	}
	if err := r.waitFor(ctx, "zebra", func() error {
		_, err := os.Stat(filepath.Join(dir, "zserv.api"))
		return err
	}); err != nil {
		return nil, err
	}
	if cfg.BFD {
		if r.bfdd, err = r.daemon("bfdd"); err != nil {
			return nil, err
		}
		if err := r.waitFor(ctx, "bfdd", func() error {
			_, err := r.vtysh(ctx, "bfdd", "show bfd peers json")
			return err
		}); err != nil {
			return nil, err
		}
	}
	if r.bgpd, err = r.daemon("bgpd"); err != nil {
		return nil, err
	}
	if err := r.waitFor(ctx, "bgpd", func() error {
		_, err := r.Vtysh(ctx, "show bgp summary json")
		return err
	}); err != nil {
		return nil, err
	}
	return r, nil
}

func (c Config) hostname() string {
	if c.Hostname == "" {
		return "herald-frr"
	}
	return c.Hostname
}

func (r *Router) daemon(name string) (*exec.Cmd, error) {
	args := []string{"netns", "exec", r.ns, filepath.Join(BinDir, name),
		"-u", "frr", "-g", "frr",
		"-f", filepath.Join(r.dir, name+".conf"),
		"-i", filepath.Join(r.dir, name+".pid"),
		"-z", filepath.Join(r.dir, "zserv.api"),
		"--vty_socket", r.dir,
		"-P", "0",
		"--log", "file:" + filepath.Join(r.dir, name+".log"),
	}
	out, err := os.Create(filepath.Join(r.dir, name+".out"))
	if err != nil {
		return nil, fmt.Errorf("creating %s output file: %w", name, err)
	}
	defer out.Close()
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", name, r.ns, err)
	}
	return cmd, nil
}

// waitFor polls ready until it succeeds, the daemon exits, or startTimeout passes.
func (r *Router) waitFor(ctx context.Context, name string, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		if err := ready(); err != nil {
			if _, perr := os.Stat(filepath.Join("/proc", strconv.Itoa(r.pid(name)))); perr != nil {
				return false, fmt.Errorf("%s exited: %s", name, r.Log(name))
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s in %s: %w: %s", name, r.ns, err, r.Log(name))
	}
	return nil
}

func (r *Router) pid(name string) int {
	var c *exec.Cmd
	switch name {
	case "zebra":
		c = r.zebra
	case "bgpd":
		c = r.bgpd
	case "bfdd":
		c = r.bfdd
	}
	if c == nil || c.Process == nil {
		return -1
	}
	return c.Process.Pid
}

// Dir is the router's directory (configuration, sockets, logs).
func (r *Router) Dir() string { return r.dir }

// Namespace is the network namespace the router runs in.
func (r *Router) Namespace() string { return r.ns }

// Log returns the log and console output of daemon ("zebra" or "bgpd"), for test failures.
func (r *Router) Log(daemon string) string {
	var b bytes.Buffer
	for _, suffix := range []string{".out", ".log"} {
		if data, err := os.ReadFile(filepath.Join(r.dir, daemon+suffix)); err == nil {
			b.Write(data)
		}
	}
	return b.String()
}

// Close stops bgpd and zebra (SIGTERM, then SIGKILL after 5 s) and removes the directory.
func (r *Router) Close() error {
	var errs []error
	for _, c := range []*exec.Cmd{r.bgpd, r.bfdd, r.zebra} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			_ = c.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	r.bgpd, r.bfdd, r.zebra = nil, nil, nil
	if r.dir != "" {
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", r.dir, err))
		}
		r.dir = ""
	}
	return errors.Join(errs...)
}

// Vtysh runs one or more commands in bgpd's vtysh and returns the output.
func (r *Router) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	return r.vtysh(ctx, "bgpd", cmds...)
}

// VtyshFile applies the configuration commands of a file to bgpd (vtysh -f), for changes too
// large for command-line arguments, such as thousands of networks.
func (r *Router) VtyshFile(ctx context.Context, file string) (string, error) {
	cmd := exec.CommandContext(ctx, "vtysh", "--vty_socket", r.dir, "--config_dir", r.dir, "-d", "bgpd", "-f", file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh -f %s: %w: %s", file, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// VtyshDaemon runs commands in the vtysh of one daemon ("bgpd", "bfdd", "zebra").
func (r *Router) VtyshDaemon(ctx context.Context, daemon string, cmds ...string) (string, error) {
	return r.vtysh(ctx, daemon, cmds...)
}

func (r *Router) vtysh(ctx context.Context, daemon string, cmds ...string) (string, error) {
	args := []string{"--vty_socket", r.dir, "--config_dir", r.dir, "-d", daemon}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	cmd := exec.CommandContext(ctx, "vtysh", args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("vtysh %q: %w: %s%s", strings.Join(cmds, "; "), err,
			strings.TrimSpace(stderr.String()), strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// VtyshJSON runs a vtysh command that prints JSON and decodes it into v.
func (r *Router) VtyshJSON(ctx context.Context, cmd string, v any) error {
	out, err := r.Vtysh(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decoding output of %q: %w: %.300s", cmd, err, out)
	}
	return nil
}

// Poll calls cond every interval until it returns true or an error, or ctx ends: it is
// wait.PollUntilContextCancel(ctx, interval, true, ...), which the helpers here and the tests use
// directly. It stays for callers not yet converted.
func Poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	return wait.PollUntilContextCancel(ctx, interval, true, func(context.Context) (bool, error) { return cond() })
}
