package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a long-running process of the lab (controller, speaker, backend) with its log file.
type Proc struct {
	// Name says what it is ("controller", "speaker-n1", "backend-n1").
	Name string
	// LogPath is the file its standard output and error are appended to.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	exitErr  error
	stopping bool
}

// startProc starts a process; start does the actual exec (in a namespace or not). The log file
// is opened for appending, so a restarted process keeps adding to the same file.
func startProc(name, logPath string, start func(out *os.File) (*exec.Cmd, error)) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", name, err)
	}
	_, _ = fmt.Fprintf(f, "---- %s: lab starts %s\n", time.Now().Format(time.RFC3339Nano), name)
	cmd, err := start(f)
	f.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		if err == nil {
			p.exitErr = errors.New("exit status 0")
		}
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID of the process (of `ip netns exec`, which execs the command in place).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.exitErr
	default:
		return false, nil
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d) with %v: %w", p.Name, p.PID(), sig, err)
	}
	return nil
}

// Stop sends sig, waits up to grace for the process to end, then kills its process group.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.done
	}
}

// Stopped reports whether the lab asked this process to stop (as opposed to a crash).
func (p *Proc) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string { return tailFile(p.LogPath, n) }

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RootCommand returns a starter, for StartProc, of a process in the root namespace, in its own
// process group, killed with the runner if the runner dies.
func RootCommand(args ...string) func(out *os.File) (*exec.Cmd, error) {
	return func(out *os.File) (*exec.Cmd, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", filepath.Base(args[0]), err)
		}
		return cmd, nil
	}
}
