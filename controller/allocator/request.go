package allocator

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// CheckAddr rejects addresses that can never be load-balancer addresses: the zero address, a
// zoned, IPv4-mapped IPv6, unspecified or multicast address.
func CheckAddr(ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return fmt.Errorf("invalid (zero) address")
	case ip.Zone() != "":
		return fmt.Errorf("%s has an IPv6 zone, which a load-balancer address cannot have", ip)
	case ip.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address: write it as %s", ip, ip.Unmap())
	case ip.IsUnspecified() || ip.IsMulticast():
		return fmt.Errorf("%s is not a unicast address", ip)
	}
	return nil
}

// request is a validated Service: which families it wants and which addresses it asks for.
type request struct {
	policy FamilyPolicy
	// fams are the families to hold an address for, primary first: every family of the
	// Service, or, when it requests addresses, the families of those.
	fams []Family
	// req is the requested address per family index, zero when none.
	req    [2]netip.Addr
	hasReq bool
}

func (r *request) wants(f Family) bool { return slices.Contains(r.fams, f) }

// normalize validates in and returns a copy of it, with the protocol of every port filled in
// and Families resolved, and what it asks for.
func normalize(in *Service) (Service, request, error) {
	svc, rq, err := normalizeInto(in, nil, nil)
	svc.NamespaceLabels = maps.Clone(svc.NamespaceLabels)
	return svc, rq, err
}

// normalizeInto is normalize writing the copy's Ports and Families into the given buffers. The
// copy's NamespaceLabels are in's: the caller copies them (the Allocator shares one copy per
// namespace).
func normalizeInto(in *Service, ports []Port, famBuf []Family) (Service, request, error) {
	if in == nil {
		return Service{}, request{}, invalidf("nil Service")
	}
	if in.Key == "" {
		return Service{}, request{}, invalidf("Service has an empty key: want namespace/name")
	}
	svc := *in
	svc.Labels = maps.Clone(in.Labels)
	svc.RequestedIPs = slices.Clone(in.RequestedIPs)
	svc.Ports = ports[:0]
	for i, p := range in.Ports {
		p.Protocol = strings.ToUpper(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		if p.Protocol != "TCP" && p.Protocol != "UDP" && p.Protocol != "SCTP" {
			return Service{}, request{}, invalidf("port %d has protocol %q: want TCP, UDP or SCTP", p.Port, in.Ports[i].Protocol)
		}
		if p.Port < 1 || p.Port > 65535 {
			return Service{}, request{}, invalidf("port %d/%s is out of range 1-65535", p.Port, p.Protocol)
		}
		svc.Ports = append(svc.Ports, p)
	}

	rq := request{policy: in.FamilyPolicy}
	switch rq.policy {
	case "":
		rq.policy = SingleStack
	case SingleStack, PreferDualStack, RequireDualStack:
	default:
		return Service{}, request{}, invalidf("unknown ipFamilyPolicy %q: want SingleStack, PreferDualStack or RequireDualStack", in.FamilyPolicy)
	}
	svc.FamilyPolicy = rq.policy

	for i, ip := range in.RequestedIPs {
		if err := CheckAddr(ip); err != nil {
			return Service{}, request{}, invalidf("requested address: %v", err)
		}
		for _, prev := range in.RequestedIPs[:i] {
			if FamilyOf(prev) == FamilyOf(ip) {
				return Service{}, request{}, invalidf("requests two %s addresses, %s and %s: at most one per family", FamilyOf(ip), prev, ip)
			}
		}
	}

	fams := append(famBuf[:0], in.Families...)
	for i, f := range fams {
		if !f.valid() {
			return Service{}, request{}, invalidf("ipFamilies has an invalid family %v", f)
		}
		if slices.Contains(fams[:i], f) {
			return Service{}, request{}, invalidf("ipFamilies lists %s twice", f)
		}
	}
	if len(fams) == 0 {
		primary := IPv4
		if len(in.RequestedIPs) > 0 {
			primary = FamilyOf(in.RequestedIPs[0])
		}
		fams = append(fams, primary)
		if rq.policy != SingleStack {
			fams = append(fams, primary.other())
		}
	}
	switch {
	case rq.policy == SingleStack && len(fams) != 1:
		return Service{}, request{}, invalidf("ipFamilyPolicy SingleStack needs exactly one IP family, ipFamilies is [%s]", famList(fams))
	case rq.policy == RequireDualStack && len(fams) != 2:
		return Service{}, request{}, invalidf("ipFamilyPolicy RequireDualStack needs both IP families, ipFamilies is [%s]", famList(fams))
	}
	svc.Families = fams

	for _, ip := range in.RequestedIPs {
		f := FamilyOf(ip)
		if !slices.Contains(fams, f) {
			return Service{}, request{}, invalidf("requested address %s is %s but ipFamilies is [%s]", ip, f, famList(fams))
		}
		rq.req[f.index()] = ip
		rq.hasReq = true
	}
	if !rq.hasReq {
		rq.fams = fams
		return svc, rq, nil
	}
	for _, f := range fams {
		if rq.req[f.index()].IsValid() {
			rq.fams = append(rq.fams, f)
		}
	}
	if rq.policy == RequireDualStack && len(rq.fams) != 2 {
		return Service{}, request{}, invalidf("ipFamilyPolicy RequireDualStack but only an %s address (%s) is requested: request one address per family, or none", rq.fams[0], rq.req[rq.fams[0].index()])
	}
	return svc, rq, nil
}

func famList(fams []Family) string {
	s := make([]string, len(fams))
	for i, f := range fams {
		s[i] = f.String()
	}
	return strings.Join(s, ", ")
}
