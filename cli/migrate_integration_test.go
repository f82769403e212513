package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli"
	"github.com/herald-lb/herald/cli/manifest"
)

var installMetalLB sync.Once

// metalLBCRDs installs the test CRDs with MetalLB's group, versions and kinds.
func metalLBCRDs(t *testing.T) {
	t.Helper()
	var err error
	installMetalLB.Do(func() {
		_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join("testdata", "metallb-crds.yaml")}, ErrorIfPathMissing: true})
	})
	if err != nil {
		t.Fatalf("installing MetalLB's CRDs: %v", err)
	}
}

// createYAML creates every object of the documents, with its status when it has one (through the
// status subresource, as a controller writes it).
func (w *world) createYAML(doc string) {
	w.t.Helper()
	objs, err := manifest.Decode("test.yaml", strings.NewReader(doc))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, o := range objs {
		u := o.Object
		status, hasStatus, _ := unstructured.NestedFieldCopy(u.Object, "status")
		if err := w.c.Create(context.Background(), u); err != nil {
			w.t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if hasStatus {
			if err := unstructured.SetNestedField(u.Object, status, "status"); err != nil {
				w.t.Fatal(err)
			}
			if err := w.c.Status().Update(context.Background(), u); err != nil {
				w.t.Fatalf("writing the status of %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// serviceIPs returns the status IPs and annotations of a Service.
func (w *world) serviceState(name string) ([]string, map[string]string) {
	w.t.Helper()
	var s corev1.Service
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: name}, &s); err != nil {
		w.t.Fatal(err)
	}
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return ips, s.Annotations
}

// TestMigrateFromMetalLB: a MetalLB configuration and annotated Services with their IPs in the
// cluster; the dry run prints Herald's objects, --apply creates them, and herald-controller
// started afterwards keeps every Service's IP.
func TestMigrateFromMetalLB(t *testing.T) {
	w := newWorld(t)
	metalLBCRDs(t)
	mlb := env.NewNamespace(t, "metallb")
	w.createYAML(strings.ReplaceAll(strings.ReplaceAll(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: l2-pool, namespace: MLB}
spec:
  addresses: [198.51.100.96/28, 2001:db8:1::/124]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp-pool, namespace: MLB, labels: {mode: bgp}}
spec:
  addresses: [198.51.100.200-198.51.100.210]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: MLB}
spec:
  ipAddressPools: [l2-pool]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: MLB}
spec:
  ipAddressPoolSelectors:
  - matchLabels: {mode: bgp}
  localPref: 50
---
apiVersion: v1
kind: Secret
metadata: {name: tor-auth, namespace: MLB}
type: kubernetes.io/basic-auth
stringData: {password: s3cret}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: MLB}
spec:
  myASN: 64512
  peerASN: 64500
  peerAddress: 198.51.100.1
  holdTime: 9s
  passwordSecret: {name: tor-auth, namespace: MLB}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ignored, namespace: default}
spec:
  addresses: [203.0.113.0/24]
`, "MLB", mlb), "\n---\n", "\n---\n"))
	w.createYAML(strings.ReplaceAll(strings.ReplaceAll(`
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: SVC
  annotations: {metallb.universe.tf/allow-shared-ip: shared, metallb.universe.tf/ip-allocated-from-pool: l2-pool}
spec:
  type: LoadBalancer
  loadBalancerClass: CLASS
  allocateLoadBalancerNodePorts: false
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{name: http, port: 80}]
  selector: {app: web}
status:
  loadBalancer: {ingress: [{ip: 198.51.100.96, ipMode: VIP}, {ip: "2001:db8:1::5", ipMode: VIP}]}
---
apiVersion: v1
kind: Service
metadata:
  name: dns
  namespace: SVC
  annotations: {metallb.io/allow-shared-ip: shared}
spec:
  type: LoadBalancer
  loadBalancerClass: CLASS
  allocateLoadBalancerNodePorts: false
  ports: [{name: dns, port: 53, protocol: UDP}]
  selector: {app: dns}
status:
  loadBalancer: {ingress: [{ip: 198.51.100.96, ipMode: VIP}]}
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: SVC
  annotations: {metallb.io/address-pool: bgp-pool, metallb.io/loadBalancerIPs: 198.51.100.205}
spec:
  type: LoadBalancer
  loadBalancerClass: CLASS
  allocateLoadBalancerNodePorts: false
  ports: [{name: https, port: 443}]
  selector: {app: api}
status:
  loadBalancer: {ingress: [{ip: 198.51.100.205, ipMode: VIP}]}
`, "SVC", w.ns), "CLASS", w.class))

	args := []string{"migrate-from-metallb", "--metallb-namespace", mlb}
	code, out, errOut := w.run(args...)
	if code != cli.ExitOK {
		t.Fatalf("dry run: exit %d, want 0; stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "3 Service(s) hold addresses, 0 would not keep them; 0 problem(s)") {
		t.Errorf("dry run summary missing:\n%s", errOut)
	}
	objs, err := manifest.Decode("dry-run", strings.NewReader(out))
	if err != nil {
		t.Fatalf("the dry run is not YAML: %v\n%s", err, out)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Object.GetKind()+"/"+o.Object.GetName())
	}
	want := "Secret/tor-auth IPAddressPool/bgp-pool IPAddressPool/l2-pool BGPPeer/tor L2Advertisement/l2 BGPAdvertisement/bgp Service/api Service/dns Service/web"
	if strings.Join(kinds, " ") != want {
		t.Errorf("dry run objects:\n got %s\nwant %s", strings.Join(kinds, " "), want)
	}
	// Nothing changed yet.
	var pools v1beta1.IPAddressPoolList
	if err := w.c.List(context.Background(), &pools, client.InNamespace(w.herald)); err != nil || len(pools.Items) != 0 {
		t.Fatalf("the dry run created pools: %v %v", pools.Items, err)
	}

	// First without layer 2 (the node-by-node runbook), then all of it.
	code, out, errOut = w.run(append(args, "--apply", "--layer2=false")...)
	var l2ads v1beta1.L2AdvertisementList
	_ = w.c.List(context.Background(), &l2ads, client.InNamespace(w.herald))
	if code != cli.ExitOK || !strings.Contains(out, "applied 5 object(s) in namespace "+w.herald+" and annotated 3 Service(s)") || len(l2ads.Items) != 0 {
		t.Fatalf("--apply --layer2=false: exit %d, %d L2Advertisements, stdout %q, stderr:\n%s", code, len(l2ads.Items), out, errOut)
	}
	code, out, errOut = w.run(append(args, "--apply")...)
	_ = w.c.List(context.Background(), &l2ads, client.InNamespace(w.herald))
	if code != cli.ExitOK || !strings.Contains(out, "applied 6 object(s) in namespace "+w.herald+" and annotated 0 Service(s)") || len(l2ads.Items) != 1 { // annotated by the first run
		t.Fatalf("--apply: exit %d, %d L2Advertisements, stdout %q, stderr:\n%s", code, len(l2ads.Items), out, errOut)
	}
	var sec corev1.Secret
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.herald, Name: "tor-auth"}, &sec); err != nil ||
		string(sec.Data["password"]) != "s3cret" || sec.Labels[v1beta1.LabelSpeakerSecret] != "true" {
		t.Errorf("password Secret in Herald's namespace: %v %v %v", err, sec.Data, sec.Labels)
	}
	var peer v1beta1.BGPPeer
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.herald, Name: "tor"}, &peer); err != nil ||
		peer.Spec.HoldTime == nil || peer.Spec.HoldTime.Duration.String() != "9s" || peer.Spec.PasswordSecret.Name != "tor-auth" {
		t.Errorf("BGPPeer tor: %v %+v", err, peer.Spec)
	}
	if _, ann := w.serviceState("api"); ann[v1beta1.AnnotationAddressPool] != "bgp-pool" || ann[v1beta1.AnnotationLoadBalancerIPs] != "198.51.100.205" {
		t.Errorf("api annotations: %v", ann)
	}
	// Applying again changes nothing and succeeds (server-side apply).
	if code, _, errOut := w.run(append(args, "--apply")...); code != cli.ExitOK {
		t.Errorf("second --apply: exit %d: %s", code, errOut)
	}
	// The dry run's output passes validate (Herald's rules, offline).
	_, dryOut, _ := w.run(args...)
	if code, vout, _ := w.run("validate", "-f", writeFile(t, dryOut), "--herald-namespace", w.herald); code != cli.ExitOK {
		t.Errorf("validate of the dry run: exit %d:\n%s", code, vout)
	}

	// herald-controller takes over: every Service keeps its IPs, from status.
	before := map[string][]string{}
	for _, name := range []string{"web", "dns", "api"} {
		before[name], _ = w.serviceState(name)
	}
	w.startController()
	for name, ips := range before {
		w.eventually("herald-controller annotates "+name, func() bool {
			_, ann := w.serviceState(name)
			return ann[v1beta1.AnnotationAllocatedFromPool] != ""
		})
		got, ann := w.serviceState(name)
		if strings.Join(got, ",") != strings.Join(ips, ",") {
			t.Errorf("Service %s: IPs %v after Herald took over, want %v", name, got, ips)
		}
		if name == "api" && ann[v1beta1.AnnotationAllocatedFromPool] != "bgp-pool" || name != "api" && ann[v1beta1.AnnotationAllocatedFromPool] != "l2-pool" {
			t.Errorf("Service %s allocated from %q", name, ann[v1beta1.AnnotationAllocatedFromPool])
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A Service whose IP the translated pools do not hold: the dry run says so and exits 1, --apply
// refuses, --force applies.
func TestMigrateRefusesToLoseAnIP(t *testing.T) {
	w := newWorld(t)
	metalLBCRDs(t)
	mlb := env.NewNamespace(t, "metallb")
	pool := &unstructured.Unstructured{}
	if err := sigsyaml.Unmarshal([]byte("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: small, namespace: "+mlb+"}\nspec: {addresses: [198.51.100.96/30]}\n"), &pool.Object); err != nil {
		t.Fatal(err)
	}
	w.create(pool)
	w.service("lost", func(s *corev1.Service) { s.Annotations = map[string]string{"metallb.io/address-pool": "small"} })
	var s corev1.Service
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "lost"}, &s); err != nil {
		t.Fatal(err)
	}
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.150", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	if err := w.c.Status().Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}

	args := []string{"migrate-from-metallb", "--metallb-namespace", mlb}
	code, out, errOut := w.run(append(args, "-o", "json")...)
	var dry struct {
		KeepErrors []string `json:"keepErrors"`
		Problems   int      `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	wantErr := "Service " + w.ns + "/lost would lose 198.51.100.150"
	if code != cli.ExitProblems || dry.Problems != 1 || len(dry.KeepErrors) != 1 || !strings.HasPrefix(dry.KeepErrors[0], wantErr) {
		t.Errorf("dry run: exit %d, %+v; want 1 and %q", code, dry, wantErr)
	}
	if !strings.Contains(errOut, "error: "+wantErr) {
		t.Errorf("stderr lacks %q:\n%s", wantErr, errOut)
	}
	code, _, errOut = w.run(append(args, "--apply")...)
	var pools v1beta1.IPAddressPoolList
	_ = w.c.List(context.Background(), &pools, client.InNamespace(w.herald))
	if code != cli.ExitProblems || !strings.Contains(errOut, "nothing applied: 1 problem(s) above") || len(pools.Items) != 0 {
		t.Errorf("--apply with a lost IP: exit %d, %d pools; stderr:\n%s", code, len(pools.Items), errOut)
	}
	code, _, errOut = w.run(append(args, "--apply", "--force")...)
	_ = w.c.List(context.Background(), &pools, client.InNamespace(w.herald))
	if code != cli.ExitProblems || len(pools.Items) != 1 {
		t.Errorf("--apply --force: exit %d (want 1: applied with problems), %d pools; stderr:\n%s", code, len(pools.Items), errOut)
	}
}

// From files: the same translation without a cluster.
func TestMigrateFromFiles(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "metallb.yaml"), []byte(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: metallb-system}
spec: {addresses: [192.0.2.0/24]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: unnumbered, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64600, interface: eth1, ebgpMultiHop: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := w.run("migrate-from-metallb", "-f", dir, "--server", "https://127.0.0.1:1")
	if code != cli.ExitProblems || !strings.Contains(errOut, `BGPPeer herald-`) || !strings.Contains(errOut, `spec.ebgpMultiHop "true": Herald's rules refuse the translation: does not apply to an unnumbered session`) || !strings.Contains(out, "kind: IPAddressPool") {
		t.Errorf("from files: exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
