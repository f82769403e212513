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
	start := RootCommand(args...)
	if ns != "" {
		start = func(out *os.File) (*exec.Cmd, error) { return l.net.Start(ns, out, out, args...) }
	}
	p, err := startProc(name, filepath.Join(l.RunDir, name+".log"), start)
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
		if err := l.goBuild(ctx, b.out, b.pkg); err != nil {
			return err
		}
	}
	return nil
}
