package inspect

import (
	"cmp"
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

// printer writes formatted text and keeps the first error, so that a report is written with one
// error check at the end.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) println(args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, args...)
	}
}

// flush flushes a table written through p.
func (p *printer) flush(tw *tabwriter.Writer) {
	if p.err == nil {
		p.err = tw.Flush()
	}
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
	p := &printer{w: w}
	if !r.Config.Valid {
		p.printf("The Herald configuration is invalid (%d problem(s)); the controller and the speakers keep their last valid one:\n", len(r.Config.Errors))
		for _, e := range r.Config.Errors {
			p.printf("  - %s\n", e)
		}
		p.println()
	}
	for _, warn := range r.Config.Warnings {
		p.printf("Warning: %s\n", warn)
	}
	if len(r.Services) == 0 {
		p.println("No Services of type LoadBalancer handled by Herald found.")
		return p.err
	}
	tw := newTable(w)
	t := &printer{w: tw}
	header := "NAMESPACE\tNAME\tIP\tPOOL\tMODE\tANNOUNCED BY\tSTATUS"
	if wide {
		header += "\tEXPECTED OWNER\tSESSIONS\tCONFLICTS"
	}
	t.println(header)
	var problems []string
	for _, s := range r.Services {
		if s.Pending != "" {
			row := fmt.Sprintf("%s\t%s\t<pending>\t<none>\t<none>\t<none>\tPENDING", s.Namespace, s.Name)
			if wide {
				row += "\t<none>\t<none>\t<none>"
			}
			t.println(row)
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
			t.println(row)
			if ip.Problem != "" {
				problems = append(problems, fmt.Sprintf("%s/%s %s: %s", s.Namespace, s.Name, ip.IP, ip.Problem))
			}
		}
	}
	p.err = cmp.Or(p.err, t.err)
	p.flush(tw)
	if len(problems) > 0 {
		p.println()
		for _, line := range problems {
			p.println(line)
		}
	}
	if detail {
		for _, s := range r.Services {
			for _, ip := range s.IPs {
				writeDetail(p, s, ip)
			}
		}
	}
	return p.err
}

// writeDetail prints every node's verdict for one IP.
func writeDetail(p *printer, s ServiceReport, ip IPReport) {
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
		p.printf("\n%s/%s %s, %s (pool %s):\n", s.Namespace, s.Name, ip.IP, m.name, none(ip.Pool))
		tw := newTable(p.w)
		t := &printer{w: tw}
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
			t.printf("  %s\t%s\n", n.Node, verdict)
		}
		p.err = cmp.Or(p.err, t.err)
		p.flush(tw)
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
	p := &printer{w: w}
	if len(r.Pools) == 0 {
		p.println("No IPAddressPool found.")
	} else {
		tw := newTable(w)
		t := &printer{w: tw}
		t.println("NAME\tFAMILY\tADDRESSES\tAUTO ASSIGN\tSERVICES\tASSIGNED\tAVAILABLE\tVALID")
		for _, pool := range r.Pools {
			if len(pool.Families) == 0 {
				t.printf("%s\t<none>\t%s\t%t\t0\t<none>\t<none>\t%s\n", pool.Name, none(strings.Join(pool.Addresses, ",")), pool.AutoAssign, none(pool.Valid))
			}
			for _, f := range pool.Families {
				t.printf("%s\t%s\t%s\t%t\t%d\t%s\t%s\t%s\n", pool.Name, f.Family, none(familyAddresses(pool.Addresses, f.Family)),
					pool.AutoAssign, f.Services, none(f.Assigned), none(f.Available), none(pool.Valid))
			}
		}
		p.err = cmp.Or(p.err, t.err)
		p.flush(tw)
		for _, pool := range r.Pools {
			if pool.ValidMessage != "" {
				p.printf("\nIPAddressPool %s is not valid: %s\n", pool.Name, pool.ValidMessage)
			}
		}
	}
	if len(r.Pending) == 0 {
		return p.err
	}
	p.printf("\n%d Service(s) waiting for an address:\n", len(r.Pending))
	tw := newTable(w)
	t := &printer{w: tw}
	t.println("NAMESPACE\tNAME\tPOOL\tREASON")
	for _, ps := range r.Pending {
		pool := ps.Pool
		if pool == "" {
			pool = "<any>"
		}
		t.printf("%s\t%s\t%s\t%s\n", ps.Namespace, ps.Name, pool, ps.Reason)
	}
	p.err = cmp.Or(p.err, t.err)
	p.flush(tw)
	return p.err
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
