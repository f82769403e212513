package inspect

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/herald-lb/herald/config"
)

// newTable returns a tab writer laid out as kubectl lays out its tables.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
}

func none(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// WriteTable prints the report as kubectl prints a table: one row per Service and IP, then the
// problems, one line each. wide adds the expected layer-2 owner, the BGP sessions and the
// conflicts; detail adds, under each IP, every node with why it may or may not announce it.
func (r StatusReport) WriteTable(w io.Writer, wide, detail bool) error {
	if !r.Config.Valid {
		fmt.Fprintf(w, "The Herald configuration is invalid (%d problem(s)); the controller and the speakers keep their last valid one:\n", len(r.Config.Errors))
		for _, e := range r.Config.Errors {
			fmt.Fprintf(w, "  - %s\n", e)
		}
		fmt.Fprintln(w)
	}
	for _, warn := range r.Config.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if len(r.Services) == 0 {
		fmt.Fprintln(w, "No Services of type LoadBalancer handled by Herald found.")
		return nil
	}
	tw := newTable(w)
	header := "NAMESPACE\tNAME\tIP\tPOOL\tMODE\tANNOUNCED BY\tSTATUS"
	if wide {
		header += "\tEXPECTED OWNER\tSESSIONS\tCONFLICTS"
	}
	fmt.Fprintln(tw, header)
	var problems []string
	for _, s := range r.Services {
		if s.Pending != "" {
			row := fmt.Sprintf("%s\t%s\t<pending>\t<none>\t<none>\t<none>\tPENDING", s.Namespace, s.Name)
			if wide {
				row += "\t<none>\t<none>\t<none>"
			}
			fmt.Fprintln(tw, row)
			problems = append(problems, fmt.Sprintf("%s/%s: pending: %s", s.Namespace, s.Name, s.Pending))
			continue
		}
		for _, ip := range s.IPs {
			state := "OK"
			switch {
			case ip.Problem != "" && !ip.Answered:
				state = "NOT ANSWERED"
			case ip.Problem != "":
				state = "CONFLICT"
			}
			row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", s.Namespace, s.Name, ip.IP, none(ip.Pool),
				none(strings.Join(ip.Modes, "+")), none(announcedBy(ip)), state)
			if wide {
				expected := ""
				if ip.Layer2 != nil {
					expected = ip.Layer2.ExpectedOwner
				}
				row += fmt.Sprintf("\t%s\t%s\t%s", none(expected), none(sessions(ip)), none(conflicts(ip)))
			}
			fmt.Fprintln(tw, row)
			if ip.Problem != "" {
				problems = append(problems, fmt.Sprintf("%s/%s %s: %s", s.Namespace, s.Name, ip.IP, ip.Problem))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		fmt.Fprintln(w)
		for _, p := range problems {
			fmt.Fprintln(w, p)
		}
	}
	if detail {
		for _, s := range r.Services {
			for _, ip := range s.IPs {
				writeDetail(w, s, ip)
			}
		}
	}
	return nil
}

// writeDetail prints every node's verdict for one IP.
func writeDetail(w io.Writer, s ServiceReport, ip IPReport) {
	for _, m := range []struct {
		name   string
		nodes  []NodeReport
		active func(string) string
	}{
		{"layer 2", layer2Nodes(ip), func(n string) string {
			if ip.Layer2 != nil && ip.Layer2.Owner == n {
				return "answering ARP/NDP" + on(ip.Layer2.Interfaces)
			}
			return ""
		}},
		{"BGP", bgpNodes(ip), func(n string) string {
			if ip.BGP == nil {
				return ""
			}
			for _, a := range ip.BGP.Announcers {
				if a.Node == n {
					var ss []string
					for _, si := range a.Sessions {
						ss = append(ss, si.Peer+" "+si.State)
					}
					return "advertising to " + none(strings.Join(ss, ", "))
				}
			}
			return ""
		}},
	} {
		if len(m.nodes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s/%s %s, %s (pool %s):\n", s.Namespace, s.Name, ip.IP, m.name, none(ip.Pool))
		tw := newTable(w)
		for _, n := range m.nodes {
			var verdict string
			if n.Eligible {
				verdict = "eligible"
			} else {
				msgs := make([]string, 0, len(n.Reasons))
				for _, r := range n.Reasons {
					msgs = append(msgs, r.Message)
				}
				verdict = "not eligible: " + strings.Join(msgs, "; ")
			}
			if a := m.active(n.Node); a != "" {
				verdict += ", " + a
			}
			fmt.Fprintf(tw, "  %s\t%s\n", n.Node, verdict)
		}
		_ = tw.Flush()
	}
}

func layer2Nodes(ip IPReport) []NodeReport {
	if ip.Layer2 == nil {
		return nil
	}
	return ip.Layer2.Nodes
}

func bgpNodes(ip IPReport) []NodeReport {
	if ip.BGP == nil {
		return nil
	}
	return ip.BGP.Nodes
}

func on(ifaces []string) string {
	if len(ifaces) == 0 {
		return ""
	}
	return " on " + strings.Join(ifaces, ",")
}

// announcedBy is the ANNOUNCED BY column: the layer-2 owner and its interfaces, the BGP
// announcers and their peers.
func announcedBy(ip IPReport) string {
	var parts []string
	if ip.Layer2 != nil && ip.Layer2.Owner != "" {
		parts = append(parts, ip.Layer2.Owner+on(ip.Layer2.Interfaces))
	}
	if ip.BGP != nil && len(ip.BGP.Announcers) > 0 {
		var nodes, peers []string
		for _, a := range ip.BGP.Announcers {
			nodes = append(nodes, a.Node)
			for _, si := range a.Sessions {
				peers = append(peers, si.Peer)
			}
		}
		slices.Sort(peers)
		s := strings.Join(nodes, ",")
		if peers = slices.Compact(peers); len(peers) > 0 {
			s += " to " + strings.Join(peers, ",")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func sessions(ip IPReport) string {
	if ip.BGP == nil {
		return ""
	}
	var out []string
	for _, a := range ip.BGP.Announcers {
		for _, si := range a.Sessions {
			out = append(out, a.Node+"/"+si.Peer+"="+si.State)
		}
	}
	return strings.Join(out, ",")
}

func conflicts(ip IPReport) string {
	if ip.Layer2 == nil {
		return ""
	}
	var out []string
	for _, c := range ip.Layer2.Conflicts {
		out = append(out, c.MAC+"@"+c.Node+"="+c.Action)
	}
	return strings.Join(out, ",")
}

// WriteTable prints the pools, one row per pool and family, then the pending Services.
func (r PoolsReport) WriteTable(w io.Writer) error {
	if len(r.Pools) == 0 {
		fmt.Fprintln(w, "No IPAddressPool found.")
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "NAME\tFAMILY\tADDRESSES\tAUTO ASSIGN\tSERVICES\tASSIGNED\tAVAILABLE\tVALID")
		for _, p := range r.Pools {
			if len(p.Families) == 0 {
				fmt.Fprintf(tw, "%s\t<none>\t%s\t%t\t0\t<none>\t<none>\t%s\n", p.Name, none(strings.Join(p.Addresses, ",")), p.AutoAssign, none(p.Valid))
			}
			for _, f := range p.Families {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%d\t%s\t%s\t%s\n", p.Name, f.Family, none(familyAddresses(p.Addresses, f.Family)),
					p.AutoAssign, f.Services, none(f.Assigned), none(f.Available), none(p.Valid))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, p := range r.Pools {
			if p.ValidMessage != "" {
				fmt.Fprintf(w, "\nIPAddressPool %s is not valid: %s\n", p.Name, p.ValidMessage)
			}
		}
	}
	if len(r.Pending) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n%d Service(s) waiting for an address:\n", len(r.Pending))
	tw := newTable(w)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tPOOL\tREASON")
	for _, p := range r.Pending {
		pool := p.Pool
		if pool == "" {
			pool = "<any>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Namespace, p.Name, pool, p.Reason)
	}
	return tw.Flush()
}

// familyAddresses keeps the entries of addrs of one family ("IPv4", "IPv6").
func familyAddresses(addrs []string, family string) string {
	var out []string
	for _, a := range addrs {
		rg, err := config.ParseAddresses(a)
		if err != nil {
			continue
		}
		if rg.Is4() == (family == "IPv4") {
			out = append(out, a)
		}
	}
	return strings.Join(out, ",")
}
