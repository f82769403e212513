package lab

import (
	"os"
	"os/exec"
)

// StartProc starts a long-running process for runners built on the lab (e2e/cluster): start does
// the actual exec with the log file as output, which is opened for appending, so a restarted
// process keeps adding to the same file.
func StartProc(name, logPath string, start func(out *os.File) (*exec.Cmd, error)) (*Proc, error) {
	return startProc(name, logPath, start)
}

// KillReferring kills every process whose command line mentions path (as a folder, or as a whole
// word) and waits, up to 5 s, for them to end. RemoveStale and Close use it on run folders.
func KillReferring(path string) { killReferring(path) }

// PIDAlive reports whether a process with this pid exists.
func PIDAlive(pid int) bool { return pidAlive(pid) }
