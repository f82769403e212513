// Package metallb translates a MetalLB configuration (metallb.io/v1beta1 and v1beta2 objects:
// IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community) and MetalLB's
// Service annotations (metallb.io/* and the older metallb.universe.tf/*) into Herald's objects and
// annotations, and says, field by field, what has no Herald equivalent or behaves differently.
//
// The result is checked with config.Parse, the rules Herald's controller, speakers and webhook
// apply. The package is pure: it takes the objects already read, as unstructured objects, and
// needs no MetalLB Go code.
package metallb

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

// Group is MetalLB's API group.
const Group = "metallb.io"

// MetalLB's kinds.
const (
	KindIPAddressPool    = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBGPPeer          = "BGPPeer"
	KindBFDProfile       = "BFDProfile"
	KindCommunity        = "Community"
)

// Kinds lists the configuration kinds, in the order they are translated (and applied: what is
// referred to before what refers to it).
var Kinds = []string{KindBFDProfile, KindCommunity, KindIPAddressPool, KindBGPPeer, KindL2Advertisement, KindBGPAdvertisement}

// Versions are the metallb.io versions read.
var Versions = []string{"v1beta1", "v1beta2"}

// Service annotation names (the part after the prefix).
const (
	annAddressPool  = "address-pool"
	annLBIPs        = "loadBalancerIPs"
	annSharedIP     = "allow-shared-ip"
	annFromPool     = "ip-allocated-from-pool"
	prefixCurrent   = "metallb.io/"
	prefixOld       = "metallb.universe.tf/"
	heraldPrefix    = "herald.dev/"
	annMigratedFrom = "herald.dev/migrated-from"
)

// DefaultNamespace is where MetalLB is installed by default; MetalLB reads its configuration
// there only.
const DefaultNamespace = "metallb-system"

// Input is what Translate reads.
type Input struct {
	// Objects are MetalLB's objects (other kinds are ignored).
	Objects []*unstructured.Unstructured
	// Secrets are the Secrets MetalLB's BGPPeers reference (passwordSecret).
	Secrets []corev1.Secret
	// Services are the cluster's Services; those of type LoadBalancer with class LBClass are
	// MetalLB's.
	Services []corev1.Service
	// MetalLBNamespace is MetalLB's namespace; HeraldNamespace is where the objects go.
	MetalLBNamespace, HeraldNamespace string
	// LBClass is the load-balancer class of MetalLB's Services (MetalLB's --lb-class), which
	// Herald must be run with to take them over; empty for Services without a class.
	LBClass string
}

// Severity says how much a Note matters.
type Severity string

// Severities of notes. Error and Dropped are problems: the migration loses something.
const (
	// Error: an object or a Service cannot be translated as it is; it needs a decision.
	Error Severity = "error"
	// Dropped: a setting has no Herald equivalent and is left out.
	Dropped Severity = "dropped"
	// Changed: translated, but Herald behaves differently in a way worth knowing.
	Changed Severity = "changed"
	// Info: what the translation did on its own.
	Info Severity = "info"
)

// Note is one remark about the translation of one object.
type Note struct {
	Severity Severity `json:"severity"`
	// Object is the MetalLB object or Service: "BGPPeer metallb-system/tor".
	Object  string `json:"object"`
	Field   string `json:"field,omitempty"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

func (n Note) String() string {
	var b strings.Builder
	b.WriteString(string(n.Severity))
	b.WriteString(": ")
	b.WriteString(n.Object)
	if n.Field != "" {
		b.WriteString(": ")
		b.WriteString(n.Field)
		if n.Value != "" {
			fmt.Fprintf(&b, " %q", n.Value)
		}
	}
	b.WriteString(": ")
	b.WriteString(n.Message)
	return b.String()
}

// ServiceChange is what changes on one Service: the Herald annotations to set.
type ServiceChange struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Annotations map[string]string `json:"annotations"`
}

// Result is the translation.
type Result struct {
	// Config holds the Herald objects, and the Secrets for BGP passwords.
	Config   config.Snapshot `json:"-"`
	Services []ServiceChange `json:"services,omitempty"`
	Notes    []Note          `json:"notes,omitempty"`
}

// Problems counts the notes that are errors or dropped settings.
func (r Result) Problems() int {
	n := 0
	for _, note := range r.Notes {
		if note.Severity == Error || note.Severity == Dropped {
			n++
		}
	}
	return n
}

// translator holds the state of one Translate.
type translator struct {
	in  Input
	out Result
}

func (t *translator) note(sev Severity, object, field, value, format string, args ...any) {
	t.out.Notes = append(t.out.Notes, Note{Severity: sev, Object: object, Field: field, Value: value, Message: fmt.Sprintf(format, args...)})
}

// Translate turns MetalLB's configuration and annotations into Herald's.
func Translate(in Input) Result {
	t := &translator{in: in}
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range in.Objects {
		gvk := o.GroupVersionKind()
		if gvk.Group != Group {
			continue
		}
		name := gvk.Kind + " " + o.GetNamespace() + "/" + o.GetName()
		switch {
		case !slices.Contains(Kinds, gvk.Kind):
			continue // status kinds and others: nothing to translate
		case !slices.Contains(Versions, gvk.Version):
			t.note(Error, name, "apiVersion", o.GetAPIVersion(), "this version of MetalLB's API is not known to the translation (%s are); not translated", strings.Join(Versions, ", "))
			continue
		case o.GetNamespace() != "" && o.GetNamespace() != in.MetalLBNamespace:
			t.note(Info, name, "", "", "not in MetalLB's namespace %s, so MetalLB ignores it; not translated", in.MetalLBNamespace)
			continue
		}
		byKind[gvk.Kind] = append(byKind[gvk.Kind], o)
	}
	for _, k := range Kinds {
		slices.SortFunc(byKind[k], func(a, b *unstructured.Unstructured) int { return cmp.Compare(a.GetName(), b.GetName()) })
	}

	for _, o := range byKind[KindBFDProfile] {
		t.bfdProfile(o)
	}
	for _, o := range byKind[KindCommunity] {
		t.community(o)
	}
	t.pools(byKind[KindIPAddressPool])
	dualStack := false
	for _, p := range t.out.Config.Pools {
		fams := map[bool]bool{}
		for _, a := range p.Spec.Addresses {
			if r, err := config.ParseAddresses(a); err == nil {
				fams[r.Is4()] = true
			}
		}
		dualStack = dualStack || len(fams) == 2
	}
	for _, o := range byKind[KindBGPPeer] {
		t.peer(o, dualStack)
	}
	for _, o := range byKind[KindL2Advertisement] {
		t.l2Advertisement(o)
	}
	for _, o := range byKind[KindBGPAdvertisement] {
		t.bgpAdvertisement(o)
	}
	t.services()

	// The rules Herald's controller and speakers apply: an object in error is left out (the
	// newer of two conflicting ones), so each error is one object the migration would lose.
	_, rep := config.ParseUsable(t.out.Config, nil)
	for _, fe := range rep.Errors {
		t.note(Error, "Herald "+fe.Kind+" "+fe.Namespace+"/"+fe.Name, fe.Field, fe.Value, "Herald's rules refuse the translation: %s", fe.Reason)
	}
	for _, fe := range rep.Warnings {
		t.note(Info, "Herald "+fe.Kind+" "+fe.Namespace+"/"+fe.Name, fe.Field, fe.Value, "Herald accepts it with a warning: %s", fe.Reason)
	}
	return t.out
}

// decode reads the object's spec into spec and reports the spec fields the translation does not
// know. It returns the note subject, or false when the spec cannot be read.
func (t *translator) decode(o *unstructured.Unstructured, spec any) (string, bool) {
	subject := o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
	raw, found, err := unstructured.NestedMap(o.Object, "spec")
	if err != nil {
		t.note(Error, subject, "spec", "", "not an object: %v; not translated", err)
		return subject, false
	}
	if !found {
		raw = map[string]any{}
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if !slices.Contains(knownFields[o.GetKind()], k) {
			t.note(Dropped, subject, "spec."+k, "", "not a field this translation knows (a MetalLB newer than v0.15?); left out")
		}
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, spec)
	}
	if err != nil {
		t.note(Error, subject, "spec", "", "cannot be read as MetalLB's %s: %v; not translated", o.GetKind(), err)
		return subject, false
	}
	return subject, true
}

// meta is the Herald object's metadata: the same name and labels (selectors of pools use them),
// in Herald's namespace, with where it came from.
func (t *translator) meta(o *unstructured.Unstructured) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: o.GetName(), Namespace: t.in.HeraldNamespace, Labels: maps.Clone(o.GetLabels()),
		Annotations: map[string]string{annMigratedFrom: o.GetAPIVersion() + " " + o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()},
	}
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: kind}
}

func (t *translator) pools(objs []*unstructured.Unstructured) {
	type decoded struct {
		o    *unstructured.Unstructured
		spec poolSpec
		name string
	}
	var ds []decoded
	maxPriority := 0
	for _, o := range objs {
		var spec poolSpec
		subject, ok := t.decode(o, &spec)
		if !ok {
			continue
		}
		if sa := spec.ServiceAllocation; sa != nil && sa.Priority > maxPriority {
			maxPriority = sa.Priority
		}
		ds = append(ds, decoded{o: o, spec: spec, name: subject})
	}
	for _, d := range ds {
		addrs := make([]string, 0, len(d.spec.Addresses))
		edges := false // a CIDR whose network or broadcast address Herald would skip
		for i, a := range d.spec.Addresses {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(a))
			if err != nil {
				addrs = append(addrs, a)
				continue
			}
			// MetalLB reads a CIDR with host bits set as its network; Herald wants it written so.
			if pfx != pfx.Masked() {
				t.note(Changed, d.name, fmt.Sprintf("spec.addresses[%d]", i), a, "written %s: MetalLB takes a CIDR with host bits set as its network, Herald wants the network address", pfx.Masked())
				a = pfx.Masked().String()
			}
			edges = edges || len(config.NetworkAndBroadcast(pfx)) > 0
			addrs = append(addrs, a)
		}
		p := v1beta1.IPAddressPool{TypeMeta: typeMeta(KindIPAddressPool), ObjectMeta: t.meta(d.o), Spec: v1beta1.IPAddressPoolSpec{
			Addresses: addrs, AutoAssign: d.spec.AutoAssign, AvoidBuggyIPs: d.spec.AvoidBuggyIPs,
			// MetalLB hands out every address of a CIDR, network and broadcast included.
			AllocateNetworkAndBroadcast: edges,
		}}
		if edges {
			t.note(Info, d.name, "spec.allocateNetworkAndBroadcast", "true", "set, because MetalLB hands out the network and broadcast addresses of a CIDR (Herald skips them by default); new Services get the same addresses as with MetalLB")
		}
		if sa := d.spec.ServiceAllocation; sa != nil {
			hsa := &v1beta1.ServiceAllocation{Priority: int32(sa.Priority), Namespaces: sa.Namespaces, NamespaceSelectors: sa.NamespaceSelectors, ServiceSelectors: sa.ServiceSelectors}
			if sa.Priority == 0 && maxPriority > 0 {
				// MetalLB tries a pool without priority after those with one; Herald tries
				// lower numbers first, 0 included.
				hsa.Priority = int32(maxPriority + 1)
				t.note(Changed, d.name, "spec.serviceAllocation.priority", "", "MetalLB tries a pool without priority after the pools with one; Herald tries the lowest number first, so the priority is set to %d (after the others)", hsa.Priority)
			}
			if hsa.Priority == 0 && len(hsa.Namespaces)+len(hsa.NamespaceSelectors)+len(hsa.ServiceSelectors) == 0 {
				hsa = nil // an empty serviceAllocation restricts nothing (Herald refuses an empty one)
			}
			p.Spec.ServiceAllocation = hsa
		}
		t.out.Config.Pools = append(t.out.Config.Pools, p)
	}
}

func (t *translator) l2Advertisement(o *unstructured.Unstructured) {
	var spec l2AdvertisementSpec
	if _, ok := t.decode(o, &spec); !ok {
		return
	}
	t.out.Config.L2Advertisements = append(t.out.Config.L2Advertisements, v1beta1.L2Advertisement{TypeMeta: typeMeta(KindL2Advertisement), ObjectMeta: t.meta(o),
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: spec.IPAddressPools, IPAddressPoolSelectors: spec.IPAddressPoolSelectors,
			NodeSelectors: spec.NodeSelectors, Interfaces: spec.Interfaces}})
}

func (t *translator) bgpAdvertisement(o *unstructured.Unstructured) {
	var spec bgpAdvertisementSpec
	if _, ok := t.decode(o, &spec); !ok {
		return
	}
	a := v1beta1.BGPAdvertisement{TypeMeta: typeMeta(KindBGPAdvertisement), ObjectMeta: t.meta(o), Spec: v1beta1.BGPAdvertisementSpec{
		AggregationLength: spec.AggregationLength, AggregationLengthV6: spec.AggregationLengthV6, Communities: spec.Communities,
		IPAddressPools: spec.IPAddressPools, IPAddressPoolSelectors: spec.IPAddressPoolSelectors, NodeSelectors: spec.NodeSelectors, Peers: spec.Peers,
	}}
	if spec.LocalPref != 0 { // 0 is MetalLB's "not set"
		lp := spec.LocalPref
		a.Spec.LocalPref = &lp
	}
	t.out.Config.BGPAdvertisements = append(t.out.Config.BGPAdvertisements, a)
}

func (t *translator) bfdProfile(o *unstructured.Unstructured) {
	var spec bfdProfileSpec
	subject, ok := t.decode(o, &spec)
	if !ok {
		return
	}
	p := v1beta1.BFDProfile{TypeMeta: typeMeta(KindBFDProfile), ObjectMeta: t.meta(o), Spec: v1beta1.BFDProfileSpec{
		ReceiveInterval: spec.ReceiveInterval, TransmitInterval: spec.TransmitInterval, DetectMultiplier: spec.DetectMultiplier,
		PassiveMode: spec.PassiveMode != nil && *spec.PassiveMode, MinimumTTL: spec.MinimumTTL,
	}}
	if spec.EchoMode != nil && *spec.EchoMode {
		t.note(Dropped, subject, "spec.echoMode", "true", "Herald's BFD has no echo function (asynchronous mode only); left out")
	}
	if spec.EchoInterval != nil {
		t.note(Dropped, subject, "spec.echoInterval", fmt.Sprint(*spec.EchoInterval), "Herald's BFDProfile has no echo interval; left out")
	}
	t.out.Config.BFDProfiles = append(t.out.Config.BFDProfiles, p)
}

func (t *translator) community(o *unstructured.Unstructured) {
	var spec communitySpec
	if _, ok := t.decode(o, &spec); !ok {
		return
	}
	c := v1beta1.Community{TypeMeta: typeMeta(KindCommunity), ObjectMeta: t.meta(o)}
	for _, a := range spec.Communities {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: a.Name, Value: a.Value})
	}
	t.out.Config.Communities = append(t.out.Config.Communities, c)
}

// passwordKey is the key of the password in the Secrets, MetalLB's and Herald's.
const passwordKey = "password"

func (t *translator) peer(o *unstructured.Unstructured, dualStack bool) {
	var spec bgpPeerSpec
	subject, ok := t.decode(o, &spec)
	if !ok {
		return
	}
	p := v1beta1.BGPPeer{TypeMeta: typeMeta(KindBGPPeer), ObjectMeta: t.meta(o), Spec: v1beta1.BGPPeerSpec{
		MyASN: spec.MyASN, PeerASN: spec.PeerASN, PeerAddress: spec.PeerAddress, PeerPort: spec.PeerPort, SourceAddress: spec.SourceAddress,
		KeepaliveTime: spec.KeepaliveTime, ConnectTime: spec.ConnectTime, RouterID: spec.RouterID, NodeSelectors: spec.NodeSelectors,
		EBGPMultiHop: spec.EBGPMultiHop, BFDProfile: spec.BFDProfile, VRF: spec.VRF,
		// MetalLB's graceful restart is off unless asked for; Herald's is on unless turned off,
		// and a translated peer gets Herald's default (the router keeps the node's routes
		// through a speaker restart; a node that goes away still withdraws them first).
		EnableGracefulRestart: enableGracefulRestart(spec.EnableGracefulRestart),
	}}
	if spec.DynamicASN != "" && spec.PeerASN == 0 {
		p.Spec.DynamicASN = v1beta1.DynamicASN(spec.DynamicASN)
	} else if spec.DynamicASN != "" {
		t.note(Dropped, subject, "spec.dynamicASN", spec.DynamicASN, "Herald checks the router's AS number against peerASN (%d); dynamicASN is left out", spec.PeerASN)
	}
	switch {
	case spec.Interface != "" && spec.PeerAddress == "":
		// BGP unnumbered: the same field in Herald.
		p.Spec.Interface = spec.Interface
	case spec.Interface != "":
		t.note(Dropped, subject, "spec.interface", spec.Interface, "Herald peers with either peerAddress or interface; peerAddress %s is kept, the interface is left out", spec.PeerAddress)
	}
	// v1beta1's timers are not pointers: 0s there means "not set".
	if h := spec.HoldTime; h != nil && (h.Duration != 0 || o.GroupVersionKind().Version != "v1beta1") {
		if h.Duration == 0 {
			t.note(Dropped, subject, "spec.holdTime", h.Duration.String(), "a hold time of 0 (no keepalives) is not supported by Herald; the default, 90s, is used")
		} else {
			p.Spec.HoldTime = h
		}
	}
	if k := spec.KeepaliveTime; k != nil && k.Duration == 0 {
		p.Spec.KeepaliveTime = nil
	}
	if spec.BFDProfile != "" && spec.VRF != "" {
		p.Spec.BFDProfile = ""
		t.note(Dropped, subject, "spec.bfdProfile", spec.BFDProfile, "Herald runs no BFD on a session in a VRF (%s): this session runs without BFD", spec.VRF)
	}
	if spec.DisableMP {
		t.note(Changed, subject, "spec.disableMP", "true", "Herald runs one session per peer address with both IPv4 and IPv6 unicast enabled; there is no separate session per family")
	}
	if dualStack && !spec.DualStackAddressFamily {
		t.note(Changed, subject, "spec.dualStackAddressFamily", "false", "Herald enables IPv4 and IPv6 unicast on every session (as MetalLB's dualStackAddressFamily: true): this session carries the routes of both families")
	}
	switch {
	case spec.Password != "":
		name := o.GetName() + "-bgp-password"
		t.secret(name, []byte(spec.Password))
		p.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: name, Key: passwordKey}
		t.note(Changed, subject, "spec.password", "", "the password moves to the Secret %s/%s (key %s, labelled %s=%s so that the speakers can read it)",
			t.in.HeraldNamespace, name, passwordKey, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue)
	case spec.PasswordSecret != nil && spec.PasswordSecret.Name != "":
		ref := spec.PasswordSecret
		ns := cmp.Or(ref.Namespace, t.in.MetalLBNamespace)
		p.Spec.PasswordSecret = &v1beta1.SecretKeyReference{Name: ref.Name, Key: passwordKey}
		i := slices.IndexFunc(t.in.Secrets, func(s corev1.Secret) bool { return s.Namespace == ns && s.Name == ref.Name })
		if i < 0 {
			t.note(Error, subject, "spec.passwordSecret", ns+"/"+ref.Name, "the Secret cannot be read; copy it into %s under the key %s with the label %s=%s",
				t.in.HeraldNamespace, passwordKey, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue)
			break
		}
		pw := t.in.Secrets[i].Data[passwordKey]
		if len(pw) == 0 {
			if s, ok := t.in.Secrets[i].StringData[passwordKey]; ok {
				pw = []byte(s)
			}
		}
		t.secret(ref.Name, pw)
		t.note(Changed, subject, "spec.passwordSecret", ns+"/"+ref.Name, "the password is copied into the Secret %s/%s (labelled %s=%s so that the speakers can read it)",
			t.in.HeraldNamespace, ref.Name, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue)
	}
	t.out.Config.Peers = append(t.out.Config.Peers, p)
}

// secret adds a password Secret for the speakers, once per name.
func (t *translator) secret(name string, password []byte) {
	if slices.ContainsFunc(t.out.Config.Secrets, func(s corev1.Secret) bool { return s.Name == name }) {
		return
	}
	t.out.Config.Secrets = append(t.out.Config.Secrets, corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.in.HeraldNamespace,
			Labels: map[string]string{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{passwordKey: password},
	})
}

// annotation returns MetalLB's value of an annotation: metallb.io/ wins over metallb.universe.tf/,
// as in MetalLB.
func annotation(a map[string]string, name string) (string, string, bool) {
	if v, ok := a[prefixCurrent+name]; ok {
		return v, prefixCurrent + name, true
	}
	v, ok := a[prefixOld+name]
	return v, prefixOld + name, ok
}

// services translates the annotations of MetalLB's Services.
func (t *translator) services() {
	svcs := slices.Clone(t.in.Services)
	slices.SortFunc(svcs, func(a, b corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for i := range svcs {
		s := &svcs[i]
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || cmp.Or(ptrValue(s.Spec.LoadBalancerClass), "") != t.in.LBClass {
			continue
		}
		subject := "Service " + s.Namespace + "/" + s.Name
		set := map[string]string{}
		for _, name := range []string{annAddressPool, annLBIPs, annSharedIP} {
			v, from, ok := annotation(s.Annotations, name)
			if !ok {
				continue
			}
			to := heraldPrefix + name
			if cur, has := s.Annotations[to]; has && cur != v {
				t.note(Error, subject, "metadata.annotations["+to+"]", cur, "already set, to another value than %s %q; decide which one Herald should follow", from, v)
				continue
			}
			if s.Annotations[to] != v {
				set[to] = v
			}
		}
		for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
			name, isMetalLB := strings.CutPrefix(k, prefixCurrent)
			if !isMetalLB {
				name, isMetalLB = strings.CutPrefix(k, prefixOld)
			}
			if !isMetalLB || slices.Contains([]string{annAddressPool, annLBIPs, annSharedIP, annFromPool}, name) {
				continue
			}
			t.note(Dropped, subject, "metadata.annotations["+k+"]", s.Annotations[k], "no Herald equivalent; left out")
		}
		if len(set) > 0 {
			t.out.Services = append(t.out.Services, ServiceChange{Namespace: s.Namespace, Name: s.Name, Annotations: set})
		}
	}
}

func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Objects returns the Herald objects and Secrets of the result, in the order to create them:
// Secrets, BFD profiles, communities, pools, peers, advertisements.
func (r Result) Objects() []any {
	c := r.Config
	var out []any
	out = appendPointers(out, c.Secrets)
	out = appendPointers(out, c.BFDProfiles)
	out = appendPointers(out, c.Communities)
	out = appendPointers(out, c.Pools)
	out = appendPointers(out, c.Peers)
	out = appendPointers(out, c.L2Advertisements)
	return appendPointers(out, c.BGPAdvertisements)
}

// appendPointers appends a pointer to each of items to out.
func appendPointers[T any](out []any, items []T) []any {
	for i := range items {
		out = append(out, &items[i])
	}
	return out
}

// enableGracefulRestart is Herald's enableGracefulRestart for MetalLB's: true stays true, and
// unset (false) leaves Herald's default, on.
func enableGracefulRestart(on bool) *bool {
	if !on {
		return nil
	}
	return &on
}
