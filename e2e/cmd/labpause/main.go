// Command labpause is the pause program of the cluster lab's sandbox image (e2e/cluster), which
// containerd's CRI starts first in every pod to hold its namespaces: there is no registry to pull
// registry.k8s.io/pause from. Like the real one it sleeps until SIGINT or SIGTERM and, being the
// init of pods that share a process namespace, reaps the children it inherits.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
