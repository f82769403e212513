package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// StartProcess starts a process that is not Herald's (another load balancer under test, such as
// MetalLB's controller and speakers in a migration test) in a lab node's namespace, or in the
// root namespace when node is "" or a node of kind host. Its output goes to <RunDir>/<name>.log;
// Proc(name) finds it, and Close stops it with the others.
func (l *Lab) StartProcess(name, node string, args ...string) (*Proc, error) {
	ns, ok := l.ns[node]
	if node != "" && !ok {
		return nil, fmt.Errorf("no lab node %q", node)
	}
	if old := l.Proc(name); old != nil {
		if done, _ := old.Exited(); !done {
			return nil, fmt.Errorf("%s is still running (pid %d)", name, old.PID())
		}
	}
	p, err := startProc(name, filepath.Join(l.RunDir, name+".log"), func(out *os.File) (*exec.Cmd, error) {
		if ns == "" {
			return rootCommand(out, args...)
		}
		return l.net.Start(ns, out, out, args...)
	})
	if err != nil {
		return nil, err
	}
	l.addProc(p)
	return p, nil
}

// BuildHerald builds herald-controller and herald-speaker into the run folder, for a lab started
// with NoHerald whose test starts Herald later with StartController and StartSpeaker (a migration
// from another load balancer). Start builds them itself otherwise.
func (l *Lab) BuildHerald(ctx context.Context) error {
	for _, b := range []struct{ out, pkg string }{{"herald-controller", "./controller"}, {"herald-speaker", "./speaker"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(l.binDir, b.out), b.pkg)
		cmd.Dir = l.opts.RepoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w: %s", b.pkg, err, out)
		}
	}
	return nil
}
