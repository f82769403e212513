package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/plan"
)

// Event reasons of address conflicts on Services.
const (
	ReasonAddressConflict         = "AddressConflict"
	ReasonAddressConflictResolved = "AddressConflictResolved"
)

// Layer2Guard is what the agent uses of a layer-2 announcer that detects address conflicts
// (package layer2's Announcer with Config.Conflicts). When Options.L2 implements it, the agent
// marks the addresses nobody announced before so that they are probed first, tells the announcer
// the other speakers' MACs (learnt from their ServiceL2Status objects), and reports conflicts on
// ServiceL2Status, as events on the Services, and (through the announcer) as metrics.
type Layer2Guard interface {
	Layer2
	SetOwnedFresh(owned map[netip.Addr][]string, fresh map[netip.Addr]bool) error
	Conflicts() []layer2.Conflict
	ConflictChanges() <-chan struct{}
	SetPeerMACs(macs map[string]string)
	MACs() map[string]string
}

// conflictState is the agent's side of conflict detection.
type conflictState struct {
	mu sync.Mutex
	// seen are the addresses that had a layer-2 owner in the last plan: an address new to the
	// plan may be fresh, one that had an owner is a takeover.
	seen map[netip.Addr]bool
	// macs maps the MACs of other nodes' speakers to their node, as their ServiceL2Status objects
	// showed them. Kept after the objects go: during a split brain each side may delete the
	// other's status objects, while the MACs still tell a speaker from a foreign host.
	macs map[string]string
	// reported are the conflicts reported with an event: "service|ip|interface|mac" -> action.
	reported map[string]string
	// deleted are this node's ServiceL2Status objects deleted since the last sync, by name.
	deleted map[string]bool
}

// guard returns the announcer's conflict detection, nil when it has none.
func (a *Agent) guard() Layer2Guard {
	g, _ := a.opts.L2.(Layer2Guard)
	return g
}

// conflictChanges is the announcer's conflict signal, nil (never ready) without detection.
func (a *Agent) conflictChanges() <-chan struct{} {
	if g := a.guard(); g != nil {
		return g.ConflictChanges()
	}
	return nil
}

// watchPeerMACs learns the MACs of other nodes' speakers from the ServiceL2Status objects as they
// come and go, and hands them to the announcer.
func (a *Agent) watchPeerMACs(ctx context.Context) error {
	g := a.guard()
	if g == nil {
		return nil
	}
	inf, err := a.opts.Cache.GetInformer(ctx, &v1beta1.ServiceL2Status{})
	if err != nil {
		return fmt.Errorf("watching ServiceL2Status for the speakers' MACs: %w", err)
	}
	learn := func(obj any) {
		st, ok := obj.(*v1beta1.ServiceL2Status)
		if !ok || st.Namespace != a.opts.Namespace || st.Status.Node == "" || st.Status.Node == a.opts.NodeName {
			return
		}
		c := &a.l2c
		c.mu.Lock()
		changed := false
		for _, ifi := range st.Status.Interfaces {
			if ifi.MAC == "" || c.macs[strings.ToLower(ifi.MAC)] == st.Status.Node {
				continue
			}
			if c.macs == nil {
				c.macs = map[string]string{}
			}
			c.macs[strings.ToLower(ifi.MAC)] = st.Status.Node
			changed = true
		}
		macs := maps.Clone(c.macs)
		c.mu.Unlock()
		if changed {
			a.log.Info("learnt the MACs of a speaker", "node", st.Status.Node, "macs", macList(macs, st.Status.Node))
			g.SetPeerMACs(macs)
		}
	}
	// A status object of this node deleted by another speaker (one that sees this node as dead in a
	// split brain sweeps it) is written again: see restoreStatus.
	gone := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if st, ok := obj.(*v1beta1.ServiceL2Status); ok && st.Labels[LabelNode] == a.opts.NodeName && st.Namespace == a.opts.Namespace {
			a.l2c.mu.Lock()
			if a.l2c.deleted == nil {
				a.l2c.deleted = map[string]bool{}
			}
			a.l2c.deleted[st.Name] = true
			a.l2c.mu.Unlock()
			a.Trigger()
		}
	}
	if _, err := inf.AddEventHandler(macLearner{learn: learn, gone: gone}); err != nil {
		return fmt.Errorf("watching ServiceL2Status for the speakers' MACs: %w", err)
	}
	return nil
}

func macList(macs map[string]string, node string) []string {
	var out []string
	for m, n := range macs {
		if n == node {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

type macLearner struct{ learn, gone func(any) }

func (h macLearner) OnAdd(obj any, _ bool) { h.learn(obj) }
func (h macLearner) OnUpdate(_, obj any)   { h.learn(obj) }
func (h macLearner) OnDelete(obj any)      { h.gone(obj) }

// setL2Owned hands the plan's layer-2 addresses to the announcer. With conflict detection, the
// addresses nobody has announced before (new to the plan, and of Services no ServiceL2Status
// names) are marked fresh: they are probed before their first announcement. Everything else is a
// takeover and answered at once: a failover must never wait for a probe, and a dead owner does
// not answer one anyway.
func (a *Agent) setL2Owned(ctx context.Context, p plan.Plan) error {
	g := a.guard()
	if g == nil {
		return a.opts.L2.SetOwned(p.L2Owned)
	}
	svcs := map[netip.Addr][]string{}
	for _, as := range p.L2 {
		svcs[as.IP] = append(svcs[as.IP], as.Service)
	}
	c := &a.l2c
	c.mu.Lock()
	fresh := map[netip.Addr]bool{}
	for ip := range p.L2Owned {
		if !c.seen[ip] && !a.announcedBefore(ctx, svcs[ip]) {
			fresh[ip] = true
		}
	}
	c.seen = make(map[netip.Addr]bool, len(p.L2Owners))
	for ip := range p.L2Owners {
		c.seen[ip] = true
	}
	c.mu.Unlock()
	return g.SetOwnedFresh(p.L2Owned, fresh)
}

// announcedBefore reports whether a ServiceL2Status (of any node) names one of the Services, or
// whether that cannot be told: an address is only probed when it is certainly new.
func (a *Agent) announcedBefore(ctx context.Context, svcs []string) bool {
	for _, key := range svcs {
		ns, name, _ := strings.Cut(key, "/")
		var l v1beta1.ServiceL2StatusList
		if err := a.opts.Cache.List(ctx, &l, client.InNamespace(a.opts.Namespace),
			client.MatchingLabels{LabelServiceNamespace: ns, LabelServiceName: name}); err != nil || len(l.Items) > 0 {
			return true
		}
	}
	return false
}

// withConflicts adds to this node's ServiceL2Status objects the MAC of each interface and the
// conflicts on the Service's addresses. A speaker in conflict with another speaker is in a split
// brain: its view of who is alive is wrong, so it removes no other speaker's status objects.
func (a *Agent) withConflicts(d desired, p plan.Plan) desired {
	g := a.guard()
	if g == nil {
		return d
	}
	macs := g.MACs()
	byIP := map[netip.Addr][]layer2.Conflict{}
	for _, c := range g.Conflicts() {
		byIP[c.IP] = append(byIP[c.IP], c)
		if c.Node != "" {
			d.sweep = nil
		}
	}
	ipsOf := map[string][]netip.Addr{}
	for _, as := range p.L2 {
		ipsOf[as.Service] = append(ipsOf[as.Service], as.IP)
	}
	for name, st := range d.l2 {
		st.Interfaces = slices.Clone(st.Interfaces)
		for i := range st.Interfaces {
			st.Interfaces[i].MAC = macs[st.Interfaces[i].Name]
		}
		st.Conflicts = nil
		for _, ip := range ipsOf[st.ServiceNamespace+"/"+st.ServiceName] {
			for _, c := range byIP[ip] {
				if !slices.ContainsFunc(st.Interfaces, func(i v1beta1.InterfaceInfo) bool { return i.Name == c.Interface }) {
					continue
				}
				st.Conflicts = append(st.Conflicts, v1beta1.L2Conflict{
					IP: c.IP.String(), Interface: c.Interface, MAC: c.MAC.String(), Node: c.Node,
					Action: conflictAction(c), Since: metav1.NewTime(c.Since.UTC().Truncate(time.Second)),
				})
			}
		}
		d.l2[name] = st
	}
	a.restoreStatus(d)
	return d
}

// restoreStatus makes the status writer write d again when one of this node's ServiceL2Status
// objects that it wrote is gone: during a split brain the speakers on the other side see this
// one as dead and remove its objects, conflict reports included, while it still watches the wire.
func (a *Agent) restoreStatus(d desired) {
	a.l2c.mu.Lock()
	deleted := a.l2c.deleted
	a.l2c.deleted = nil
	a.l2c.mu.Unlock()
	w := a.status
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied == nil {
		return
	}
	for name := range deleted {
		_, wrote := w.applied.l2[name]
		if _, want := d.l2[name]; wrote && want {
			a.log.Info("a ServiceL2Status of this node was removed by another speaker; writing it again", "name", name)
			w.applied = nil
			return
		}
	}
}

func conflictAction(c layer2.Conflict) string {
	switch {
	case c.Answering:
		return v1beta1.L2ConflictKept
	case c.NeverAnnounced:
		return v1beta1.L2ConflictNotAnnounced
	default:
		return v1beta1.L2ConflictYielded
	}
}

// conflictEvents reports each new conflict (or change of what this node does about it) as a
// Warning event on the Services of the address, and its end as a Normal one.
func (a *Agent) conflictEvents(p plan.Plan, svcs map[string]*corev1.Service) {
	g := a.guard()
	if g == nil {
		return
	}
	svcsOf := map[netip.Addr][]string{}
	for _, as := range p.L2 {
		svcsOf[as.IP] = append(svcsOf[as.IP], as.Service)
	}
	c := &a.l2c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := map[string]string{}
	for _, cf := range g.Conflicts() {
		for _, key := range svcsOf[cf.IP] {
			id := strings.Join([]string{key, cf.IP.String(), cf.Interface, cf.MAC.String()}, "|")
			action := conflictAction(cf)
			now[id] = action
			if c.reported[id] == action {
				continue
			}
			if s := svcs[key]; s != nil {
				a.opts.Recorder.Event(s, corev1.EventTypeWarning, ReasonAddressConflict, a.conflictMessage(cf))
			}
		}
	}
	for id := range c.reported {
		if _, ok := now[id]; ok {
			continue
		}
		parts := strings.Split(id, "|")
		ip, err := netip.ParseAddr(parts[1])
		if s := svcs[parts[0]]; s != nil && err == nil && slices.Contains(svcsOf[ip], parts[0]) {
			a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonAddressConflictResolved,
				"%s: the conflict with %s on interface %s of node %s is over; node %s answers for the address",
				parts[1], parts[3], parts[2], a.opts.NodeName, a.opts.NodeName)
		}
	}
	c.reported = now
}

// conflictMessage explains a conflict and what to do about it.
func (a *Agent) conflictMessage(c layer2.Conflict) string {
	self := a.opts.NodeName
	if c.Node == "" {
		if c.NeverAnnounced {
			return fmt.Sprintf("%s is already in use by %s, a host that is not a Herald speaker, on interface %s of node %s: "+
				"node %s does not announce it and checks again now and then; free the address on that host or give the Service another one",
				c.IP, c.MAC, c.Interface, self, self)
		}
		return fmt.Sprintf("%s is also answered by %s, a host that is not a Herald speaker, on interface %s of node %s (a duplicate address): "+
			"node %s stopped answering for it and checks again now and then; free the address on that host or give the Service another one",
			c.IP, c.MAC, c.Interface, self, self)
	}
	splitBrain := fmt.Sprintf("%s is also announced by node %s (%s) on interface %s of node %s: the speakers of %s and %s do not see each other "+
		"in memberlist (a split brain: check that TCP and UDP port 7946 pass between the nodes and that the speakers share the memberlist key)",
		c.IP, c.Node, c.MAC, c.Interface, self, self, c.Node)
	if slices.Contains(a.opts.Members.Members(), c.Node) {
		// Both speakers see each other: node c.Node's host itself answers.
		splitBrain = fmt.Sprintf("%s is also answered by node %s (%s) on interface %s of node %s, although the speakers see each other and %s's does not announce it: "+
			"the address is configured on node %s (for example by kube-proxy in IPVS mode without strictARP)",
			c.IP, c.Node, c.MAC, c.Interface, self, c.Node, c.Node)
	}
	if c.Answering {
		return splitBrain + fmt.Sprintf("; node %s keeps answering, node %s stops", self, c.Node)
	}
	return splitBrain + fmt.Sprintf("; node %s stopped answering and leaves the address to node %s", self, c.Node)
}
