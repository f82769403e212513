package inspect

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// PoolsReport is the answer of kubectl herald pools.
type PoolsReport struct {
	Pools []PoolReport `json:"pools"`
	// Pending lists the Services of type LoadBalancer that Herald handles and that have no IP.
	Pending []PendingService `json:"pending,omitempty"`
	// Problems counts the pending Services and the pools that are not valid.
	Problems int `json:"problems"`
}

// PoolReport is one IPAddressPool with its use, as the controller writes it in the pool's status.
type PoolReport struct {
	Name       string   `json:"name"`
	Addresses  []string `json:"addresses"`
	AutoAssign bool     `json:"autoAssign"`
	// Valid is the status of the pool's Valid condition (True, False, or empty when the
	// controller has not written it), with its message when not True.
	Valid        string        `json:"valid,omitempty"`
	ValidMessage string        `json:"validMessage,omitempty"`
	Families     []FamilyUsage `json:"families"`
}

// FamilyUsage is the use of one address family of a pool. Counts are decimal strings, exact for
// IPv6; empty when the controller has not written them yet.
type FamilyUsage struct {
	Family    string `json:"family"`
	Assigned  string `json:"assigned,omitempty"`
	Available string `json:"available,omitempty"`
	// Services counts the Services holding an address of this family of the pool.
	Services int `json:"services"`
}

// PendingService is a Service waiting for an address.
type PendingService struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Pool is the pool the Service asks for (herald.dev/address-pool); empty for any.
	Pool   string `json:"pool,omitempty"`
	Reason string `json:"reason"`
}

// Pools reports the pools and the Services waiting for an address.
func Pools(c *Cluster) PoolsReport {
	var r PoolsReport
	type held struct {
		ip  netip.Addr
		key string
	}
	var ips []held
	var pending []*corev1.Service
	for i := range c.Services {
		s := &c.Services[i]
		if !c.handles(s) {
			continue
		}
		addrs, _ := v1beta1.IngressIPs(s)
		for _, ip := range addrs {
			ips = append(ips, held{ip: ip, key: s.Namespace + "/" + s.Name})
		}
		if len(addrs) == 0 {
			pending = append(pending, s)
		}
	}

	pools := slices.Clone(c.Snapshot.Pools)
	slices.SortFunc(pools, func(a, b v1beta1.IPAddressPool) int { return cmp.Compare(a.Name, b.Name) })
	for i := range pools {
		p := &pools[i]
		pr := PoolReport{Name: p.Name, Addresses: p.Spec.Addresses, AutoAssign: p.Spec.AutoAssign == nil || *p.Spec.AutoAssign}
		if cond := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionValid); cond != nil {
			pr.Valid = string(cond.Status)
			if cond.Status != "True" {
				pr.ValidMessage = cond.Message
				r.Problems++
			}
		}
		var ranges []config.Range
		for _, a := range p.Spec.Addresses {
			if rg, err := config.ParseAddresses(a); err == nil {
				ranges = append(ranges, rg)
			}
		}
		for _, fam := range []struct {
			name                string
			is4                 bool
			assigned, available string
		}{
			{"IPv4", true, p.Status.AssignedIPv4, p.Status.AvailableIPv4},
			{"IPv6", false, p.Status.AssignedIPv6, p.Status.AvailableIPv6},
		} {
			if !slices.ContainsFunc(ranges, func(rg config.Range) bool { return rg.Is4() == fam.is4 }) {
				continue
			}
			fu := FamilyUsage{Family: fam.name, Assigned: fam.assigned, Available: fam.available}
			seen := map[string]bool{}
			for _, h := range ips {
				if h.ip.Is4() == fam.is4 && !seen[h.key] && slices.ContainsFunc(ranges, func(rg config.Range) bool { return rg.Contains(h.ip) }) {
					seen[h.key] = true
					fu.Services++
				}
			}
			pr.Families = append(pr.Families, fu)
		}
		r.Pools = append(r.Pools, pr)
	}

	sortServices(pending)
	for _, s := range pending {
		r.Pending = append(r.Pending, PendingService{Namespace: s.Namespace, Name: s.Name,
			Pool: strings.TrimSpace(s.Annotations[v1beta1.AnnotationAddressPool]), Reason: c.pendingReason(s)})
		r.Problems++
	}
	return r
}
