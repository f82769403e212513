package inspect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker/election"
	"github.com/herald-lb/herald/speaker/plan"
)

// Event reasons the report reads (written by herald-controller and herald-speaker).
const (
	ReasonAllocationFailed     = v1beta1.EventReasonAllocationFailed
	ReasonInvalidConfiguration = v1beta1.EventReasonInvalidConfiguration
	ReasonIPNotRestored        = v1beta1.EventReasonIPNotRestored
	ReasonNotAnnounced         = v1beta1.EventReasonNotAnnounced
)

// Modes of an IP in a report.
const (
	ModeLayer2 = "layer2"
	ModeBGP    = "bgp"
)

// StatusReport is the answer of kubectl herald status.
type StatusReport struct {
	Config   ConfigReport    `json:"config"`
	Services []ServiceReport `json:"services"`
	// Problems counts the pending Services, the IPs not answered, the IPs in conflict and an
	// invalid configuration.
	Problems int `json:"problems"`
}

// ConfigReport says whether Herald's configuration is valid, as config.Parse (the controller's,
// the speakers' and the webhook's rules) finds it.
type ConfigReport struct {
	Valid    bool     `json:"valid"`
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ServiceReport is one Service of type LoadBalancer that Herald handles.
type ServiceReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Pending says why the Service has no IP; empty when it has one.
	Pending string     `json:"pending,omitempty"`
	IPs     []IPReport `json:"ips,omitempty"`
}

// IPReport is one IP of a Service.
type IPReport struct {
	IP   string `json:"ip"`
	Pool string `json:"pool,omitempty"`
	// Modes lists how the IP is announced: layer2, bgp or both; empty when no advertisement
	// covers it.
	Modes []string `json:"modes,omitempty"`
	// Answered is true when a speaker says it announces the IP: a node answers ARP/NDP for it
	// (ServiceL2Status) or advertises it on an established BGP session (ServiceBGPStatus and
	// BGPSessionStatus).
	Answered bool `json:"answered"`
	// Problem says in one line what is wrong: why the IP is not answered, or a conflict.
	Problem string        `json:"problem,omitempty"`
	Layer2  *Layer2Report `json:"layer2,omitempty"`
	BGP     *BGPReport    `json:"bgp,omitempty"`
}

// Layer2Report is the layer-2 side of an IP.
type Layer2Report struct {
	// Owner is the node answering ARP/NDP, from its ServiceL2Status.
	Owner      string   `json:"owner,omitempty"`
	Interfaces []string `json:"interfaces,omitempty"`
	// ExpectedOwner is the node the election picks among the nodes eligible as far as the
	// API server shows; the speakers may pick another when one of those is not a member.
	ExpectedOwner string     `json:"expectedOwner,omitempty"`
	Conflicts     []Conflict `json:"conflicts,omitempty"`
	// Nodes says for each node whether it may answer (see NodeReport).
	Nodes []NodeReport `json:"nodes,omitempty"`
}

// Conflict is another station claiming the IP, as one node sees it.
type Conflict struct {
	// Node is the node that sees the conflict.
	Node      string `json:"node"`
	Interface string `json:"interface,omitempty"`
	MAC       string `json:"mac"`
	// OtherNode is the Herald node the MAC belongs to; empty for a host that is not a speaker.
	OtherNode string `json:"otherNode,omitempty"`
	// Action is Kept, Yielded or NotAnnounced (see v1beta1.L2Conflict).
	Action string `json:"action"`
	Since  string `json:"since,omitempty"`
}

// BGPReport is the BGP side of an IP.
type BGPReport struct {
	// Announcers are the nodes advertising the IP, from their ServiceBGPStatus, with the state
	// of the sessions it goes out on.
	Announcers []Announcer   `json:"announcers,omitempty"`
	Nodes      []NodeReport  `json:"nodes,omitempty"`
	Sessions   []SessionInfo `json:"-"`
}

// Announcer is one node advertising an IP over BGP.
type Announcer struct {
	Node     string        `json:"node"`
	Sessions []SessionInfo `json:"sessions,omitempty"`
}

// SessionInfo is one BGP session of one node, from its BGPSessionStatus.
type SessionInfo struct {
	Peer      string `json:"peer"`
	Address   string `json:"address,omitempty"`
	State     string `json:"state"`
	LastError string `json:"lastError,omitempty"`
}

// NodeReport says whether one node may announce an IP as far as the API server shows.
type NodeReport struct {
	Node string `json:"node"`
	// Eligible: nothing the API server shows keeps the node from announcing the IP. Whether its
	// speaker is a memberlist member with an interface up only the speakers know.
	Eligible bool         `json:"eligible"`
	Reasons  []NodeReason `json:"reasons,omitempty"`
}

// NodeReason is one reason a node may not announce an IP.
type NodeReason struct {
	Cause   election.Cause `json:"cause"`
	Message string         `json:"message"`
}

// StatusOptions choose the Services of a StatusReport.
type StatusOptions struct {
	// Namespace limits the report to one namespace; empty for all.
	Namespace string
	// Service limits the report to one Service of Namespace; empty for all.
	Service string
}

// speakerOnlyNote ends the reason of an IP that nodes could announce as far as the API server
// shows, but that no speaker announces.
const speakerOnlyNote = "what keeps them from it is known only to the speakers: not a memberlist member (speaker not running, " +
	"or port 7946 blocked), not ready (no valid configuration yet), or no interface up to answer on; see the speakers' logs and herald_speaker_* metrics"

// Status reports on the Services that Herald handles.
func Status(c *Cluster, opts StatusOptions) StatusReport {
	var r StatusReport
	cfg := c.parseConfig(&r.Config)
	if !r.Config.Valid {
		r.Problems++
	}

	var svcs []*corev1.Service
	for i := range c.Services {
		if c.handles(&c.Services[i]) {
			svcs = append(svcs, &c.Services[i])
		}
	}
	sortServices(svcs)

	// The election needs every Service of the cluster (IPs are shared), not only those asked for.
	eps := plan.EndpointsByService(c.EndpointSlices)
	in := plan.Input{Config: cfg, Nodes: c.electionNodes(cfg)}
	svcInputs := map[string]plan.Service{}
	for _, s := range svcs {
		if ps, ok := plan.ServiceFromKube(s, eps); ok {
			in.Services = append(in.Services, ps)
			svcInputs[ps.Key] = ps
		}
	}
	computed := plan.Compute(in)
	unannounced := map[string]string{}
	for _, u := range computed.Unannounced {
		unannounced[u.Service+" "+u.IP.String()] = u.Reason
	}
	elections := map[netip.Addr]plan.Election{}
	for _, e := range plan.Elections(in) {
		elections[e.IP] = e
	}
	st := c.indexStatuses()

	for _, s := range svcs {
		if opts.Namespace != "" && s.Namespace != opts.Namespace || opts.Service != "" && s.Name != opts.Service {
			continue
		}
		key := s.Namespace + "/" + s.Name
		sr := ServiceReport{Namespace: s.Namespace, Name: s.Name}
		ps, hasIP := svcInputs[key]
		if !hasIP {
			sr.Pending = c.pendingReason(s)
			r.Problems++
			r.Services = append(r.Services, sr)
			continue
		}
		for _, ip := range ps.IPs {
			ir := c.ipReport(cfg, s, ps, ip, elections, unannounced[key+" "+ip.String()], st)
			if ir.Problem != "" {
				r.Problems++
			}
			sr.IPs = append(sr.IPs, ir)
		}
		r.Services = append(r.Services, sr)
	}
	return r
}

// parseConfig reads the snapshot as the controller and the speakers do (config.ParseUsable) and
// fills rep. Secrets the client could not read are assumed to exist.
func (c *Cluster) parseConfig(rep *ConfigReport) *config.Config {
	snap := c.Snapshot
	if len(c.MissingSecrets) > 0 {
		snap.Secrets = slices.Clone(snap.Secrets)
		for _, name := range c.MissingSecrets {
			snap.Secrets = append(snap.Secrets, placeholderSecret(c.Namespace, name, snap.Peers))
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("Secret %s/%s is not readable with these credentials: the password of the BGPPeers using it is not checked", c.Namespace, name))
		}
	}
	for _, e := range config.SecretsHiddenFromSpeakers(c.Snapshot) {
		rep.Warnings = append(rep.Warnings, e.Error())
	}
	// The configuration the controller and the speakers use: every valid object, the invalid
	// ones left out (they keep a last valid version the API server does not show).
	cfg, cr := config.ParseUsable(snap, nil)
	for _, e := range cr.Warnings {
		rep.Warnings = append(rep.Warnings, e.Error())
	}
	if err := cr.Err(); err != nil {
		rep.Errors = errorLines(err)
		c.invalidConfig = true
	} else {
		rep.Valid = true
	}
	return cfg
}

// placeholderSecret stands for a Secret the client may not read, with a valid password under
// every key the peers name.
func placeholderSecret(ns, name string, peers []v1beta1.BGPPeer) corev1.Secret {
	sec := corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue}}, Data: map[string][]byte{}}
	for _, p := range peers {
		if ref := p.Spec.PasswordSecret; ref != nil && ref.Name == name {
			key := ref.Key
			if key == "" {
				key = "password"
			}
			sec.Data[key] = []byte("unreadable")
		}
	}
	return sec
}

// errorLines is one line per configuration error.
func errorLines(err error) []string {
	var fes config.Errors
	if es, ok := err.(config.Errors); ok { //nolint:errorlint // Parse returns config.Errors itself
		fes = es
	}
	if len(fes) == 0 {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(fes))
	for _, fe := range fes {
		out = append(out, fe.Error())
	}
	return out
}

// anyInterface stands for the interfaces a node's speaker can answer on, which only the speakers
// know: with it every interface rule passes, and the report leaves the question to them.
const anyInterface = "(any)"

// electionNodes describes the nodes with what the API server shows, and the speaker-only facts
// assumed fine (a speaker Pod that is not ready, when speaker Pods are seen, counts as not a
// member).
func (c *Cluster) electionNodes(cfg *config.Config) []election.Node {
	ifaces := []string{anyInterface}
	if cfg != nil {
		for _, a := range cfg.L2Advertisements {
			ifaces = append(ifaces, a.Interfaces...)
		}
	}
	slices.Sort(ifaces)
	ifaces = slices.Compact(ifaces)
	out := make([]election.Node, 0, len(c.Nodes))
	for i := range c.Nodes {
		n := plan.NodeFromKube(&c.Nodes[i])
		n.Alive = true
		if c.SpeakerPods != nil {
			n.Alive = c.SpeakerPods[n.Name].Ready
		}
		// Whether the speaker says it can answer is gossip only: taken as its Pod's readiness.
		n.SpeakerReady = n.Alive
		n.Interfaces = ifaces
		n.DefaultInterfaces = []string{anyInterface}
		out = append(out, n)
	}
	return out
}

// statuses indexes the speakers' status objects.
type statuses struct {
	l2       map[string][]*v1beta1.ServiceL2Status  // by Service key
	bgp      map[string][]*v1beta1.ServiceBGPStatus // by Service key
	sessions map[string]*v1beta1.BGPSessionStatus   // by node + " " + peer
}

func (c *Cluster) indexStatuses() statuses {
	st := statuses{l2: map[string][]*v1beta1.ServiceL2Status{}, bgp: map[string][]*v1beta1.ServiceBGPStatus{},
		sessions: map[string]*v1beta1.BGPSessionStatus{}}
	for i := range c.L2Statuses {
		s := &c.L2Statuses[i]
		if s.Status.Node == "" {
			continue
		}
		key := s.Status.ServiceNamespace + "/" + s.Status.ServiceName
		st.l2[key] = append(st.l2[key], s)
	}
	for i := range c.BGPStatuses {
		s := &c.BGPStatuses[i]
		if s.Status.Node == "" {
			continue
		}
		key := s.Status.ServiceNamespace + "/" + s.Status.ServiceName
		st.bgp[key] = append(st.bgp[key], s)
	}
	for i := range c.Sessions {
		s := &c.Sessions[i]
		st.sessions[s.Status.Node+" "+s.Status.Peer] = s
	}
	return st
}

// pendingReason says why a Service has no IP.
func (c *Cluster) pendingReason(s *corev1.Service) string {
	if e := c.latestEvent(s, ReasonAllocationFailed, ReasonInvalidConfiguration); e != nil {
		return fmt.Sprintf("%s: %s (%s ago)", e.Reason, e.Message, age(c.Now, eventTime(e)))
	}
	return "no IP assigned and no AllocationFailed event: is herald-controller running (kubectl get pods -n " + c.Namespace + ")?"
}

// ipReport explains one IP of a Service.
func (c *Cluster) ipReport(cfg *config.Config, s *corev1.Service, ps plan.Service, ip netip.Addr,
	elections map[netip.Addr]plan.Election, unannounced string, st statuses) IPReport {
	key := ps.Key
	ir := IPReport{IP: ip.String()}
	el, elected := elections[ip]
	l2Covered := elected && slices.Contains(el.Layer2.Announced, key)
	bgpCovered := elected && slices.Contains(el.BGP.Announced, key)
	if cfg != nil {
		ir.Pool = poolOf(cfg, ip)
	}

	// What the speakers say they do.
	l2 := c.layer2State(s, ps, ip, el, st)
	bgp := c.bgpState(key, st)
	if l2Covered || (c.invalidConfig && l2 != nil) {
		ir.Modes = append(ir.Modes, ModeLayer2)
	}
	if bgpCovered || (c.invalidConfig && bgp != nil) {
		ir.Modes = append(ir.Modes, ModeBGP)
	}
	if l2Covered || l2 != nil {
		if l2 == nil {
			l2 = &Layer2Report{}
		}
		if l2Covered {
			l2.Nodes = c.nodeReports(el.Layer2)
			l2.ExpectedOwner, _ = election.Owner(ip, eligibleNames(l2.Nodes))
		}
		ir.Layer2 = l2
	}
	if bgpCovered || bgp != nil {
		if bgp == nil {
			bgp = &BGPReport{}
		}
		if bgpCovered {
			bgp.Nodes = c.nodeReports(el.BGP)
		}
		ir.BGP = bgp
	}

	l2Answering := l2 != nil && l2.Owner != "" && !yielded(l2)
	bgpAnswering := bgp != nil && slices.ContainsFunc(bgp.Announcers, func(a Announcer) bool {
		return slices.ContainsFunc(a.Sessions, func(si SessionInfo) bool { return si.State == "Established" })
	})
	ir.Answered = l2Answering || bgpAnswering

	switch {
	case ir.Answered && l2 != nil && len(l2.Conflicts) > 0:
		ir.Problem = conflictText(l2.Conflicts)
	case ir.Answered:
	case l2 != nil && len(l2.Conflicts) > 0:
		ir.Problem = "not answered: " + conflictText(l2.Conflicts)
	case c.invalidConfig && !l2Covered && !bgpCovered:
		ir.Problem = "not answered; an object of the configuration is invalid (see above): the speakers keep its last valid version, which the API server does not show"
	case ps.NoEndpoints || !l2Covered && !bgpCovered:
		// No endpoint, in no pool, or no advertisement: the speakers' own words.
		ir.Problem = "not answered: " + cmp.Or(unannounced, "no advertisement announces it")
	default:
		ir.Problem = "not answered: " + c.silentReason(s, ip, el, l2Covered, bgpCovered, bgp)
	}
	return ir
}

// silentReason says why an IP that an advertisement covers is not answered.
func (c *Cluster) silentReason(s *corev1.Service, ip netip.Addr, el plan.Election, l2Covered, bgpCovered bool, bgp *BGPReport) string {
	var parts []string
	var candidates []string
	for _, m := range []struct {
		name    string
		covered bool
		exp     election.Explanation
	}{{"layer 2", l2Covered, el.Layer2}, {"BGP", bgpCovered, el.BGP}} {
		if !m.covered {
			continue
		}
		known := c.knownOnly(m.exp)
		if names := known.Eligible(); len(names) > 0 {
			candidates = append(candidates, names...)
			continue
		}
		parts = append(parts, m.name+": "+known.SummaryWith(c.reasonText))
	}
	if len(candidates) == 0 {
		return fmt.Sprintf("no node is eligible to announce %s of pool %q (%s)", ip, el.Pool, strings.Join(parts, "; "))
	}
	if bgp != nil && len(bgp.Announcers) > 0 {
		var down []string
		for _, a := range bgp.Announcers {
			for _, si := range a.Sessions {
				d := fmt.Sprintf("%s/%s %s", a.Node, si.Peer, si.State)
				if si.LastError != "" {
					d += " (" + si.LastError + ")"
				}
				down = append(down, d)
			}
		}
		if len(down) == 0 {
			return "advertised by " + names(bgp.Announcers) + " to no BGP peer: no BGPAdvertisement names a peer of these nodes"
		}
		return "advertised by " + names(bgp.Announcers) + ", but no BGP session is Established: " + strings.Join(down, "; ")
	}
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)
	msg := fmt.Sprintf("%s may announce it as far as the API server shows, yet no speaker does; %s", strings.Join(candidates, ", "), speakerOnlyNote)
	if e := c.latestEvent(s, ReasonNotAnnounced); e != nil && strings.Contains(e.Message, ip.String()) {
		msg += fmt.Sprintf(". The speakers said (%s ago): %s", age(c.Now, eventTime(e)), e.Message)
	}
	return msg
}

// knownOnly returns the explanation without the reasons only speakers know (unless the speaker
// Pods tell): a node is eligible in it when the API server shows nothing against it.
func (c *Cluster) knownOnly(e election.Explanation) election.Explanation {
	out := e
	out.Nodes = make([]election.NodeVerdict, 0, len(e.Nodes))
	for _, v := range e.Nodes {
		var kept []election.Reason
		for _, r := range v.Reasons {
			if r.Cause.SpeakerOnly() && (r.Cause != election.CauseNotMember || c.SpeakerPods == nil) {
				continue
			}
			kept = append(kept, r)
		}
		out.Nodes = append(out.Nodes, election.NodeVerdict{Node: v.Node, Reasons: kept})
	}
	return out
}

// reasonText says a reason; "not a member" is said from the speaker Pods when they are known.
func (c *Cluster) reasonText(r election.Reason) string {
	if r.Cause == election.CauseNotMember && c.SpeakerPods != nil {
		return "no ready speaker Pod on it"
	}
	return r.String()
}

// nodeReports turns an explanation into per-node reports of what the API server shows.
func (c *Cluster) nodeReports(e election.Explanation) []NodeReport {
	known := c.knownOnly(e)
	out := make([]NodeReport, 0, len(known.Nodes))
	for _, v := range known.Nodes {
		nr := NodeReport{Node: v.Node, Eligible: v.Eligible()}
		for _, r := range v.Reasons {
			msg := c.reasonText(r)
			if r.Cause == election.CauseNotMember {
				msg = c.podText(v.Node)
			}
			nr.Reasons = append(nr.Reasons, NodeReason{Cause: r.Cause, Message: msg})
		}
		out = append(out, nr)
	}
	return out
}

// podText says why a node's speaker is not a member, from its Pod.
func (c *Cluster) podText(node string) string {
	p, ok := c.SpeakerPods[node]
	if !ok {
		return "no speaker Pod runs on it"
	}
	return fmt.Sprintf("its speaker Pod %s is not ready (%s)", p.Name, p.State)
}

func eligibleNames(nodes []NodeReport) []string {
	var out []string
	for _, n := range nodes {
		if n.Eligible {
			out = append(out, n.Node)
		}
	}
	return out
}

func names(as []Announcer) string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Node)
	}
	return strings.Join(out, ", ")
}

// layer2State reads the ServiceL2Status objects of the Service: which node answers for ip, and
// the conflicts about ip. Nil when no node reports the Service.
func (c *Cluster) layer2State(s *corev1.Service, ps plan.Service, ip netip.Addr, el plan.Election, st statuses) *Layer2Report {
	objs := st.l2[ps.Key]
	if len(objs) == 0 {
		return nil
	}
	rep := &Layer2Report{}
	var owners []string
	for _, o := range objs {
		owners = append(owners, o.Status.Node)
		for _, cf := range o.Status.Conflicts {
			if a, err := netip.ParseAddr(cf.IP); err != nil || a != ip {
				continue
			}
			since := ""
			if !cf.Since.IsZero() {
				since = cf.Since.UTC().Format("2006-01-02T15:04:05Z")
			}
			rep.Conflicts = append(rep.Conflicts, Conflict{Node: o.Status.Node, Interface: cf.Interface, MAC: cf.MAC, OtherNode: cf.Node, Action: cf.Action, Since: since})
		}
	}
	// A status object names a node and a Service, not an IP: with several IPs (dual-stack, or
	// owners that differ per IP) the owner of ip is the one among the reporting nodes that the
	// election picks.
	owner := ""
	if len(owners) == 1 {
		owner = owners[0]
	} else if el.Layer2Owner != "" && slices.Contains(owners, el.Layer2Owner) {
		owner = el.Layer2Owner
	} else {
		owner, _ = election.Owner(ip, owners)
	}
	// A node that yielded the IP to a conflict still reports the Service: it does not answer.
	rep.Owner = owner
	for _, o := range objs {
		if o.Status.Node != owner {
			continue
		}
		for _, ifi := range o.Status.Interfaces {
			rep.Interfaces = append(rep.Interfaces, ifi.Name)
		}
	}
	return rep
}

// yielded reports whether the owner stopped answering ip because of a conflict.
func yielded(l2 *Layer2Report) bool {
	for _, cf := range l2.Conflicts {
		if cf.Node == l2.Owner && (cf.Action == v1beta1.L2ConflictYielded || cf.Action == v1beta1.L2ConflictNotAnnounced) {
			return true
		}
	}
	return false
}

func conflictText(cs []Conflict) string {
	parts := make([]string, 0, len(cs))
	for _, cf := range cs {
		who := "a host that is not a Herald speaker"
		if cf.OtherNode != "" {
			who = "the speaker of node " + cf.OtherNode + " (split brain: the speakers do not see each other in memberlist)"
		}
		what := map[string]string{
			v1beta1.L2ConflictKept:         "keeps answering",
			v1beta1.L2ConflictYielded:      "stopped answering",
			v1beta1.L2ConflictNotAnnounced: "never announced it",
		}[cf.Action]
		parts = append(parts, fmt.Sprintf("%s (MAC %s) claims it too, seen by node %s on %s, which %s", who, cf.MAC, cf.Node, cf.Interface, cmp.Or(what, cf.Action)))
	}
	return "address conflict: " + strings.Join(parts, "; ")
}

// bgpState reads the ServiceBGPStatus objects of the Service and the sessions they use. Nil when
// no node reports the Service.
func (c *Cluster) bgpState(key string, st statuses) *BGPReport {
	objs := st.bgp[key]
	if len(objs) == 0 {
		return nil
	}
	rep := &BGPReport{}
	for _, o := range objs {
		a := Announcer{Node: o.Status.Node}
		for _, peer := range o.Status.Peers {
			si := SessionInfo{Peer: peer, State: "Unknown", LastError: "no BGPSessionStatus for this node and peer"}
			if ss := st.sessions[o.Status.Node+" "+peer]; ss != nil {
				si = SessionInfo{Peer: peer, Address: ss.Status.PeerAddress, State: ss.Status.State, LastError: ss.Status.LastError}
			}
			a.Sessions = append(a.Sessions, si)
		}
		rep.Announcers = append(rep.Announcers, a)
	}
	slices.SortFunc(rep.Announcers, func(a, b Announcer) int { return strings.Compare(a.Node, b.Node) })
	return rep
}

// poolOf names the pool holding ip; empty when none does.
func poolOf(cfg *config.Config, ip netip.Addr) string {
	for _, name := range cfg.PoolNames() {
		if cfg.Pools[name].Contains(ip) {
			return name
		}
	}
	return ""
}
