package agent

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
	"github.com/herald-lb/herald/speaker/layer2"
	"github.com/herald-lb/herald/speaker/plan"
	"github.com/herald-lb/herald/speaker/status"
)

// Event reasons of address conflicts on Services.
const (
	ReasonAddressConflict         = v1beta1.EventReasonAddressConflict
	ReasonAddressConflictResolved = v1beta1.EventReasonAddressConflictResolved
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
	// macs maps the MACs of other nodes' speakers to their node, as their ServiceL2Status objects
	// showed them. Kept after the objects go: during a split brain each side may delete the
	// other's status objects, while the MACs still tell a speaker from a foreign host.
	macs map[string]string
	// reported are the conflicts reported with an event: "service|ip|interface|mac" -> action.
	reported map[string]string
	// deleted are this node's ServiceL2Status objects deleted since the last sync, by name.
	deleted map[string]bool
	// ownMACs and byIP are the announcer's MACs and conflicts as of the last full computation,
	// for the status objects of the Services computed since (the loop's goroutine only).
	ownMACs map[string]string
	byIP    map[netip.Addr][]layer2.Conflict
	// conflicts is the announcer's list that byIP was made of.
	conflicts []layer2.Conflict
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

// watchL2Status lists and watches the ServiceL2Status objects of Herald's namespace into the
// agent's store (l2store.go), which the status writer reads. As they come and go, this node's
// objects are recorded for previousStatus and, with conflict detection, the MACs of other nodes'
// speakers are learnt and handed to the announcer, the Services some object names are counted
// (announcedBefore), and an object of this node deleted by another speaker makes the agent write it
// again (see restoreStatus).
func (a *Agent) watchL2Status(ctx context.Context) {
	s, g := a.l2s, a.guard()
	s.seen = func(st *v1beta1.ServiceL2Status, added bool) {
		if added && st.Labels[LabelNode] == a.opts.NodeName {
			a.prev.note("l2", st.Name, true)
		}
		if g != nil && st.Status.Node != "" && st.Status.Node != a.opts.NodeName {
			a.learnMACs(g, st.Status.Node, func(yield func(string) bool) {
				for _, ifi := range st.Status.Interfaces {
					if !yield(ifi.MAC) {
						return
					}
				}
			}, "status")
		}
	}
	if g != nil {
		s.counted = a.model.countStatus
	}
	s.removed = func(name string, o l2Object) {
		if o.node != a.opts.NodeName {
			return
		}
		a.prev.note("l2", name, false)
		if g == nil {
			return
		}
		a.l2c.mu.Lock()
		if a.l2c.deleted == nil {
			a.l2c.deleted = map[string]bool{}
		}
		a.l2c.deleted[name] = true
		a.l2c.mu.Unlock()
		if a.status.Wants(name) { // not one this node removed itself
			a.Trigger()
		}
	}
	runReflector(ctx, a.opts.Watcher, a.opts.Namespace, &v1beta1.ServiceL2Status{},
		func() client.ObjectList { return &v1beta1.ServiceL2StatusList{} }, s)
	a.synced = append(a.synced, s.hasSynced)
}

// learnMACs records the MACs another node's speaker reports, in its ServiceL2Status objects or in
// its memberlist metadata (from names which), and hands them to the announcer when they are new.
// It allocates nothing when they are known already: every ServiceL2Status event comes here.
func (a *Agent) learnMACs(g Layer2Guard, node string, macs iter.Seq[string], from string) {
	c := &a.l2c
	c.mu.Lock()
	changed := false
	for mac := range macs {
		if mac == "" {
			continue
		}
		mac = strings.ToLower(mac) // no copy when it is lower case already, as speakers write it
		if c.macs[mac] == node {
			continue
		}
		if c.macs == nil {
			c.macs = map[string]string{}
		}
		c.macs[mac] = node
		changed = true
	}
	if !changed {
		c.mu.Unlock()
		return
	}
	all := maps.Clone(c.macs)
	c.mu.Unlock()
	a.log.Info("learnt the MACs of a speaker", "node", node, "from", from, "macs", macList(all, node))
	g.SetPeerMACs(all)
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

// withConflicts adds to this node's ServiceL2Status objects the MAC of each interface and the
// conflicts on the Service's addresses, as the announcer reports them now (and remembers both for
// the Services computed until the next full computation). A speaker in conflict with another
// speaker is in a split brain: its view of who is alive is wrong, so it removes no other speaker's
// status objects.
func (a *Agent) withConflicts(d status.Desired) status.Desired {
	g := a.guard()
	if g == nil {
		return d
	}
	c := &a.l2c
	c.ownMACs = g.MACs()
	c.byIP = map[netip.Addr][]layer2.Conflict{}
	c.conflicts = g.Conflicts()
	for _, cf := range c.conflicts {
		c.byIP[cf.IP] = append(c.byIP[cf.IP], cf)
		if cf.Node != "" {
			d.Sweep = nil
		}
	}
	for name, st := range d.L2 {
		d.L2[name] = a.decorate(st, a.eng.l2Of(st.ServiceNamespace+"/"+st.ServiceName))
	}
	a.restoreStatus(func(name string) bool { _, ok := d.L2[name]; return ok })
	return d
}

// decorationsChanged reports whether the announcer's MACs or conflicts differ from those of the
// last full computation (withConflicts): the status objects built since carry those.
func (a *Agent) decorationsChanged() bool {
	g := a.guard()
	if g == nil {
		return false
	}
	return !maps.Equal(a.l2c.ownMACs, g.MACs()) || !reflect.DeepEqual(a.l2c.conflicts, g.Conflicts())
}

// decorate adds to a ServiceL2Status the MAC of each interface and the conflicts on the Service's
// addresses (as), as the last full computation saw them.
func (a *Agent) decorate(st v1beta1.ServiceL2StatusStatus, as []plan.L2Assignment) v1beta1.ServiceL2StatusStatus {
	if a.guard() == nil {
		return st
	}
	c := &a.l2c
	st.Interfaces = slices.Clone(st.Interfaces)
	for i := range st.Interfaces {
		st.Interfaces[i].MAC = c.ownMACs[st.Interfaces[i].Name]
	}
	st.Conflicts = nil
	for _, x := range as {
		for _, cf := range c.byIP[x.IP] {
			if !slices.ContainsFunc(st.Interfaces, func(i v1beta1.InterfaceInfo) bool { return i.Name == cf.Interface }) {
				continue
			}
			st.Conflicts = append(st.Conflicts, v1beta1.L2Conflict{
				IP: cf.IP.String(), Interface: cf.Interface, MAC: cf.MAC.String(), Node: cf.Node,
				Action: conflictAction(cf), Since: metav1.NewTime(cf.Since.UTC().Truncate(time.Second)),
			})
		}
	}
	return st
}

// restoreStatus makes the status writer write everything again when one of this node's
// ServiceL2Status objects that it wrote, and still wants, is gone: during a split brain the
// speakers on the other side see this one as dead and remove its objects, conflict reports
// included, while it still watches the wire.
func (a *Agent) restoreStatus(wanted func(name string) bool) {
	a.l2c.mu.Lock()
	deleted := a.l2c.deleted
	a.l2c.deleted = nil
	a.l2c.mu.Unlock()
	for name := range deleted {
		if wanted(name) && a.status.Wrote(name) {
			a.log.Info("a ServiceL2Status of this node was removed by another speaker; writing it again", "name", name)
			a.status.Recheck()
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
func (a *Agent) conflictEvents() {
	g := a.guard()
	if g == nil {
		return
	}
	svcsOf := func(ip netip.Addr) []string {
		var out []string
		for _, as := range a.eng.planOf(ip).L2 {
			out = append(out, as.Service)
		}
		return out
	}
	conflicts := g.Conflicts()
	c := &a.l2c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(conflicts) == 0 && len(c.reported) == 0 {
		return
	}
	now := map[string]string{}
	for _, cf := range conflicts {
		for _, key := range svcsOf(cf.IP) {
			id := strings.Join([]string{key, cf.IP.String(), cf.Interface, cf.MAC.String()}, "|")
			action := conflictAction(cf)
			now[id] = action
			if c.reported[id] == action {
				continue
			}
			if s, ok := a.model.serviceRef(key); ok {
				a.opts.Recorder.Event(s, corev1.EventTypeWarning, ReasonAddressConflict, a.conflictMessage(cf, a.members.alive))
			}
		}
	}
	for id := range c.reported {
		if _, ok := now[id]; ok {
			continue
		}
		parts := strings.Split(id, "|")
		ip, err := netip.ParseAddr(parts[1])
		if s, ok := a.model.serviceRef(parts[0]); ok && err == nil && slices.Contains(svcsOf(ip), parts[0]) {
			a.opts.Recorder.Eventf(s, corev1.EventTypeNormal, ReasonAddressConflictResolved,
				"%s: the conflict with %s on interface %s of node %s is over; node %s answers for the address",
				parts[1], parts[3], parts[2], a.opts.NodeName, a.opts.NodeName)
		}
	}
	c.reported = now
}

// conflictMessage explains a conflict and what to do about it; alive are the live speakers.
func (a *Agent) conflictMessage(c layer2.Conflict, alive []string) string {
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
	if slices.Contains(alive, c.Node) {
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
