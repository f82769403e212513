package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Batch runs iproute2 commands (one per line, without the leading "ip") inside ns with
// `ip -batch`, which makes hundreds of links in a fraction of a second.
func Batch(ns string, cmds []string) error {
	f, err := os.CreateTemp("", "netlab-batch-*")
	if err != nil {
		return fmt.Errorf("writing an ip batch: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString(strings.Join(cmds, "\n") + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("writing an ip batch: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing an ip batch: %w", err)
	}
	if _, err := run("ip", "-n", ns, "-batch", f.Name()); err != nil {
		return fmt.Errorf("running %d ip commands in %s: %w", len(cmds), ns, err)
	}
	return nil
}

// PodVeth is one pod interface made by RoutedVeths.
type PodVeth struct {
	// Host is the host end's name in the node namespace, Pod the pod end's in the pods namespace.
	Host, Pod string
	// Addr is the pod's address, routed to Host in the node namespace.
	Addr netip.Addr
}

// RoutedVeths gives node n pod interfaces the way routed CNIs do (Calico, Cilium, AWS VPC CNI,
// the ptp plugin; this kernel has no dummy links): for each, a veth pair whose host end
// <prefix><i> stays in node, up, outside any bridge, holding the ptp plugin's gateway address
// 10.22.0.1/32 and a /32 route to the pod; the pod end is moved to the pods namespace (one
// namespace holds them all), renamed p<prefix><i>, brought up with the pod's address. Pod
// addresses are 10.22.<i/250+1>.<i%250+1>, so first+n must stay below 62,500. Deleting the pods
// namespace removes every pair.
func RoutedVeths(node, pods, prefix string, first, n int) ([]PodVeth, error) {
	var out []PodVeth
	var hostCmds, podCmds []string
	for i := first; i < first+n; i++ {
		v := PodVeth{
			Host: fmt.Sprintf("%s%d", prefix, i),
			Pod:  fmt.Sprintf("p%s%d", prefix, i),
			Addr: netip.AddrFrom4([4]byte{10, 22, byte(i/250 + 1), byte(i%250 + 1)}),
		}
		if len(v.Pod) > 15 {
			return nil, fmt.Errorf("pod interface name %q is longer than 15 bytes", v.Pod)
		}
		out = append(out, v)
		hostCmds = append(hostCmds,
			fmt.Sprintf("link add %s type veth peer name %s netns %s", v.Host, v.Pod, pods),
			fmt.Sprintf("addr add 10.22.0.1/32 dev %s", v.Host),
			fmt.Sprintf("link set %s up", v.Host),
			fmt.Sprintf("route add %s/32 dev %s scope link", v.Addr, v.Host))
		podCmds = append(podCmds,
			fmt.Sprintf("addr add %s/32 dev %s", v.Addr, v.Pod),
			fmt.Sprintf("link set %s up", v.Pod))
	}
	if err := Batch(node, hostCmds); err != nil {
		return nil, err
	}
	if err := Batch(pods, podCmds); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVeths deletes the named links (either end of a veth pair removes both) inside ns.
func DeleteVeths(ns string, names []string) error {
	cmds := make([]string, 0, len(names))
	for _, n := range names {
		cmds = append(cmds, "link del "+n)
	}
	return Batch(ns, cmds)
}
