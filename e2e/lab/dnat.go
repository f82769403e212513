package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// NodeInfo is a lab node as the DNAT rules see it.
type NodeInfo struct {
	Name   string
	V4, V6 netip.Addr
}

// Forward is one DNAT rule on a node: traffic to LBIP:Port goes to the node's own address at
// NodePort, where the node's backend listens. It is the job kube-proxy does in a cluster.
type Forward struct {
	LBIP     netip.Addr
	Port     int32
	NodePort int32
}

// PlanForwards computes each node's forwards from the Services and EndpointSlices: a node
// forwards a Service's load-balancer IPs when one of the Service's ready endpoints is on that node
// (the runner gives every node a backend, so for externalTrafficPolicy Cluster it lists all nodes;
// for Local only the nodes that should receive traffic). Only TCP ports with a NodePort count.
func PlanForwards(nodes []NodeInfo, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) map[string][]Forward {
	readyOn := map[string]map[string]bool{} // namespace/service -> node -> ready endpoint
	for _, s := range eps {
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := s.Namespace + "/" + svc
		for _, e := range s.Endpoints {
			if e.NodeName == nil || (e.Conditions.Ready != nil && !*e.Conditions.Ready) {
				continue
			}
			if readyOn[key] == nil {
				readyOn[key] = map[string]bool{}
			}
			readyOn[key][*e.NodeName] = true
		}
	}
	out := map[string][]Forward{}
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		var ips []netip.Addr
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				ips = append(ips, a.Unmap())
			}
		}
		for _, n := range nodes {
			if !readyOn[svc.Namespace+"/"+svc.Name][n.Name] {
				continue
			}
			for _, ip := range ips {
				for _, p := range svc.Spec.Ports {
					if p.NodePort == 0 || (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) {
						continue
					}
					out[n.Name] = append(out[n.Name], Forward{LBIP: ip, Port: p.Port, NodePort: p.NodePort})
				}
			}
		}
	}
	for n := range out {
		slices.SortFunc(out[n], func(a, b Forward) int {
			if c := a.LBIP.Compare(b.LBIP); c != 0 {
				return c
			}
			return int(a.Port - b.Port)
		})
		out[n] = slices.Compact(out[n])
	}
	return out
}

// nftTable is the nftables table the runner owns in every node namespace.
const nftTable = "herald_lab"

// RenderNFT returns an nft script that atomically replaces the node's table with one DNAT rule per
// forward (to the node's address of the LB IP's family).
func RenderNFT(n NodeInfo, fws []Forward) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", nftTable, nftTable)
	fmt.Fprintf(&b, "table inet %s {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n", nftTable)
	for _, f := range fws {
		switch {
		case f.LBIP.Is4() && n.V4.IsValid():
			fmt.Fprintf(&b, "\t\tip daddr %s tcp dport %d dnat ip to %s:%d\n", f.LBIP, f.Port, n.V4, f.NodePort)
		case f.LBIP.Is6() && n.V6.IsValid():
			fmt.Fprintf(&b, "\t\tip6 daddr %s tcp dport %d dnat ip6 to [%s]:%d\n", f.LBIP, f.Port, n.V6, f.NodePort)
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// NodePorts returns the distinct node ports of fws, sorted: what the node's backend listens on.
func NodePorts(fws []Forward) []int32 {
	var out []int32
	for _, f := range fws {
		out = append(out, f.NodePort)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
