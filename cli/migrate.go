package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli/manifest"
	"github.com/herald-lb/herald/cli/metallb"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/service"
)

// fieldManager owns what kubectl herald applies.
const fieldManager = "kubectl-herald"

type migrateOptions struct {
	output    string
	files     []string
	recursive bool
	namespace string
	apply     bool
	force     bool
	layer2    bool
}

func newMigrateCommand(g *globals) *cobra.Command {
	var o migrateOptions
	cmd := &cobra.Command{
		Use:   "migrate-from-metallb",
		Short: "Translate MetalLB's configuration and Service annotations into Herald's (dry run unless --apply)",
		Long: `Reads MetalLB's configuration (metallb.io/v1beta1 and v1beta2 IPAddressPool, L2Advertisement,
BGPAdvertisement, BGPPeer, BFDProfile, Community, from MetalLB's namespace), the Secrets of its BGP
passwords, and the Services of type LoadBalancer with MetalLB's annotations (metallb.io/* and
metallb.universe.tf/*: address-pool, loadBalancerIPs, allow-shared-ip), from the cluster or from
files (-f), and writes the equivalent Herald objects and herald.dev/* annotations.

Every setting without a Herald equivalent, or that behaves differently, is reported on stderr,
field by field. The result is checked with Herald's configuration rules, and every Service's
current IP is checked against the translated pools exactly as herald-controller restores IPs when
it starts: a Service that would not keep its IP is reported.

By default nothing is changed: the Herald objects and the Service annotations are printed as YAML
for kubectl apply --server-side. --apply creates them (server-side apply, field manager
kubectl-herald); it refuses when something is reported as error or dropped, unless --force.
MetalLB's objects and annotations are left as they are.`,
		Example: `  kubectl herald migrate-from-metallb > herald-config.yaml
  kubectl herald migrate-from-metallb --apply
  kubectl herald migrate-from-metallb -f metallb-config/ -f services.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(o.output, "yaml", "json"); err != nil {
				return err
			}
			if o.apply && o.output != "" {
				return errors.New("-o is for the dry run; --apply prints a summary")
			}
			return g.migrate(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	outputFlag(fs, &o.output, "yaml", "json")
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "Read MetalLB's objects, Secrets and Services from these files or directories instead of the cluster (repeatable; - for stdin)")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Read the directories of -f recursively")
	fs.StringVar(&o.namespace, "metallb-namespace", metallb.DefaultNamespace, "Namespace MetalLB is installed in (it reads its configuration there only)")
	fs.BoolVar(&o.apply, "apply", false, "Create the Herald objects and annotate the Services (default: print them)")
	fs.BoolVar(&o.force, "force", false, "With --apply, apply even when settings are dropped or objects could not be translated")
	fs.BoolVar(&o.layer2, "layer2", true, "Include the L2Advertisements; --layer2=false leaves them out, so that Herald's speakers can replace MetalLB's node by node over BGP while MetalLB still answers ARP/NDP (run again without it to hand layer 2 over)")
	return cmd
}

// migration is what migrate read and computed.
type migration struct {
	in         metallb.Input
	nsLabels   map[string]map[string]string
	result     metallb.Result
	keepErrors []string
}

func (g *globals) migrate(ctx context.Context, o migrateOptions) error {
	in := metallb.Input{MetalLBNamespace: o.namespace, HeraldNamespace: g.herald, LBClass: g.lbClass}
	var c client.Client
	nsLabels := map[string]map[string]string{}
	if len(o.files) > 0 {
		if err := readMetalLBFiles(&in, o, g.streams.In); err != nil {
			return err
		}
	} else {
		var err error
		if c, _, _, err = g.client(); err != nil {
			return err
		}
		if nsLabels, err = readMetalLBCluster(ctx, c, &in); err != nil {
			return err
		}
	}
	if o.apply && c == nil {
		var err error
		if c, _, _, err = g.client(); err != nil {
			return err
		}
	}
	m := &migration{in: in, nsLabels: nsLabels, result: metallb.Translate(in)}
	if !o.layer2 {
		m.result.Config.L2Advertisements = nil
	}
	m.keepErrors = keepCheck(m.result, in.Services, nsLabels, g.lbClass)

	found := m.result.Problems() + len(m.keepErrors)
	m.writeNotes(g.streams.Err)
	if !o.apply {
		if err := m.writeDryRun(g.streams.Out, o.output); err != nil {
			return err
		}
		if found > 0 {
			return problems()
		}
		return nil
	}
	if found > 0 && !o.force {
		return &exitError{code: ExitProblems, err: fmt.Errorf("nothing applied: %d problem(s) above; fix them, or use --force to apply anyway", found)}
	}
	if err := m.apply(ctx, c, g.streams.Out); err != nil {
		return err
	}
	if found > 0 {
		return problems()
	}
	return nil
}

// readMetalLBFiles reads the MetalLB objects, Secrets and Services of the files.
func readMetalLBFiles(in *metallb.Input, o migrateOptions, stdin io.Reader) error {
	objs, err := manifest.Load(o.files, o.recursive, stdin)
	if err != nil {
		return failure("%w", err)
	}
	for _, obj := range objs {
		gvk := obj.Object.GroupVersionKind()
		switch {
		case gvk.Group == metallb.Group:
			in.Objects = append(in.Objects, obj.Object)
		case gvk.Group == "" && gvk.Kind == "Secret":
			var s corev1.Secret
			if err := sigsyaml.Unmarshal(obj.Raw, &s); err != nil {
				return failure("%s: reading the Secret: %w", obj.Source, err)
			}
			s.Namespace = cmp.Or(s.Namespace, o.namespace)
			in.Secrets = append(in.Secrets, s)
		case gvk.Group == "" && gvk.Kind == "Service":
			var s corev1.Service
			if err := sigsyaml.Unmarshal(obj.Raw, &s); err != nil {
				return failure("%s: reading the Service: %w", obj.Source, err)
			}
			in.Services = append(in.Services, s)
		}
	}
	return nil
}

// readMetalLBCluster reads MetalLB's objects from its namespace (the newest version served), the
// Secrets its peers name, the Services, and the namespaces' labels.
func readMetalLBCluster(ctx context.Context, c client.Client, in *metallb.Input) (map[string]map[string]string, error) {
	for _, kind := range metallb.Kinds {
		versions := slices.Clone(metallb.Versions)
		slices.Reverse(versions) // v1beta2 first
		for _, v := range versions {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(schema.GroupVersionKind{Group: metallb.Group, Version: v, Kind: kind + "List"})
			err := c.List(ctx, list, client.InNamespace(in.MetalLBNamespace))
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue // this version (or MetalLB's CRD) is not served
			}
			if err != nil {
				return nil, failure("reading MetalLB's %s objects (%s/%s) from the API server: %w", kind, metallb.Group, v, err)
			}
			for i := range list.Items {
				in.Objects = append(in.Objects, &list.Items[i])
			}
			break
		}
	}
	for _, o := range in.Objects {
		if o.GetKind() != metallb.KindBGPPeer {
			continue
		}
		name, _, _ := unstructured.NestedString(o.Object, "spec", "passwordSecret", "name")
		ns, _, _ := unstructured.NestedString(o.Object, "spec", "passwordSecret", "namespace")
		if name == "" {
			continue
		}
		var s corev1.Secret
		err := c.Get(ctx, types.NamespacedName{Namespace: cmp.Or(ns, in.MetalLBNamespace), Name: name}, &s)
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			continue // reported by the translation
		}
		if err != nil {
			return nil, failure("reading the Secret %s of BGPPeer %s: %w", name, o.GetName(), err)
		}
		in.Secrets = append(in.Secrets, s)
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return nil, failure("reading the Services from the API server: %w", err)
	}
	in.Services = svcs.Items
	labels := map[string]map[string]string{}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss); err != nil && !apierrors.IsForbidden(err) {
		return nil, failure("reading the namespaces from the API server: %w", err)
	}
	for _, ns := range nss.Items {
		labels[ns.Name] = ns.Labels
	}
	return labels, nil
}

// keepCheck restores every Service's current IPs into an allocator made of the translated pools,
// as herald-controller does when it starts, with the Herald annotations the migration sets, and
// returns one line per Service that would not keep an IP.
func keepCheck(r metallb.Result, services []corev1.Service, nsLabels map[string]map[string]string, lbClass string) []string {
	cfg, err := config.Parse(r.Config)
	if err != nil {
		return nil // reported by the translation; nothing to restore into
	}
	alloc, err := allocator.New(service.ToAllocatorPools(cfg))
	if err != nil {
		return []string{fmt.Sprintf("herald-controller would not start with the translated pools: %v", err)}
	}
	changes := map[string]map[string]string{}
	for _, sc := range r.Services {
		changes[sc.Namespace+"/"+sc.Name] = sc.Annotations
	}
	svcs := slices.Clone(services)
	slices.SortFunc(svcs, func(a, b corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var out []string
	for i := range svcs {
		s := svcs[i].DeepCopy()
		if !v1beta1.ManagedService(s, lbClass) || len(s.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		if set := changes[s.Namespace+"/"+s.Name]; len(set) > 0 {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			maps.Copy(s.Annotations, set)
		}
		ips, perr := v1beta1.IngressIPs(s)
		desc, _ := service.ToAllocatorService(s, nsLabels[s.Namespace])
		if desc == nil {
			continue
		}
		var rerr error
		if len(ips) > 0 {
			_, rerr = alloc.Reserve(desc, ips)
		}
		if err := errors.Join(perr, service.AllocationError(rerr)); err != nil {
			out = append(out, fmt.Sprintf("Service %s/%s would lose %s: %v", s.Namespace, s.Name, addrList(ips), err))
		}
	}
	return out
}

func addrList(ips []netip.Addr) string {
	if len(ips) == 0 {
		return "its addresses"
	}
	out := ""
	for i, ip := range ips {
		if i > 0 {
			out += ", "
		}
		out += ip.String()
	}
	return out
}

// writeNotes reports the translation on w (stderr), one line each.
func (m *migration) writeNotes(w io.Writer) {
	var b strings.Builder
	for _, n := range m.result.Notes {
		b.WriteString(n.String() + "\n")
	}
	for _, k := range m.keepErrors {
		b.WriteString("error: " + k + "\n")
	}
	held := 0
	for _, s := range m.in.Services {
		if v1beta1.ManagedService(&s, m.in.LBClass) && len(s.Status.LoadBalancer.Ingress) > 0 {
			held++
		}
	}
	b.WriteString(fmt.Sprintf("%d MetalLB object(s) read, %d Herald object(s) and %d Secret(s) written, %d Service(s) annotated; %d Service(s) hold addresses, %d would not keep them; %d problem(s)\n",
		countMetalLB(m.in.Objects), len(m.result.Objects())-len(m.result.Config.Secrets), len(m.result.Config.Secrets), len(m.result.Services),
		held, len(m.keepErrors), m.result.Problems()+len(m.keepErrors)))
	_, _ = io.WriteString(w, b.String()) // stderr: nothing to do if it fails
}

func countMetalLB(objs []*unstructured.Unstructured) int {
	n := 0
	for _, o := range objs {
		if o.GroupVersionKind().Group == metallb.Group && slices.Contains(metallb.Kinds, o.GetKind()) {
			n++
		}
	}
	return n
}

// dryRun is the -o json/yaml form of a dry run.
type dryRun struct {
	Objects    []any                   `json:"objects"`
	Services   []metallb.ServiceChange `json:"services,omitempty"`
	Notes      []metallb.Note          `json:"notes,omitempty"`
	KeepErrors []string                `json:"keepErrors,omitempty"`
	Problems   int                     `json:"problems"`
}

func (m *migration) writeDryRun(w io.Writer, format string) error {
	if format == "json" {
		return writeStructured(w, "json", dryRun{Objects: m.result.Objects(), Services: m.result.Services, Notes: m.result.Notes,
			KeepErrors: m.keepErrors, Problems: m.result.Problems() + len(m.keepErrors)})
	}
	b, err := m.result.Manifests()
	if err != nil {
		return failure("%w", err)
	}
	header := "# Herald's configuration translated from MetalLB's by kubectl herald migrate-from-metallb.\n" +
		"# Apply with: kubectl apply --server-side -f FILE (the Services are partial: only the annotations are added).\n"
	if _, err := io.WriteString(w, header+string(b)); err != nil {
		return failure("writing the manifests: %w", err)
	}
	return nil
}

// apply creates the Herald objects (referred-to objects first) and annotates the Services, with
// server-side apply.
func (m *migration) apply(ctx context.Context, c client.Client, out io.Writer) error {
	ns := &corev1.Namespace{}
	ns.Name = m.in.HeraldNamespace
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return failure("creating namespace %s: %w", ns.Name, err)
	}
	n := 0
	for _, o := range m.result.Objects() {
		obj, ok := o.(client.Object)
		if !ok {
			continue
		}
		u, err := toUnstructured(obj)
		if err != nil {
			return failure("%w", err)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return failure("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		n++
	}
	for _, sc := range m.result.Services {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Service")
		u.SetNamespace(sc.Namespace)
		u.SetName(sc.Name)
		u.SetAnnotations(sc.Annotations)
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager)); err != nil {
			return failure("annotating Service %s/%s: %w", sc.Namespace, sc.Name, err)
		}
	}
	if _, err := fmt.Fprintf(out, "applied %d object(s) in namespace %s and annotated %d Service(s)\n", n, m.in.HeraldNamespace, len(m.result.Services)); err != nil {
		return failure("writing the summary: %w", err)
	}
	return nil
}

// toUnstructured converts a typed object for server-side apply, without the fields a new object
// leaves empty.
func toUnstructured(o client.Object) (*unstructured.Unstructured, error) {
	b, err := sigsyaml.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.GetName(), err)
	}
	u := &unstructured.Unstructured{}
	if err := sigsyaml.Unmarshal(b, &u.Object); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", o.GetName(), err)
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
