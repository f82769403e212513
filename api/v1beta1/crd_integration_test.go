package v1beta1_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// decodeAll splits a multi-document YAML stream into objects.
func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("decoding YAML: %v\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	testenv.Require(t, env)
	ensureNamespace(t, "herald-system")
	files, err := filepath.Glob("../../manifests/samples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range decodeAll(t, data) {
			if err := env.Client.Create(t.Context(), obj); err != nil {
				t.Errorf("%s: %s %s rejected: %v", f, obj.GetKind(), obj.GetName(), err)
			}
			kinds[obj.GetKind()] = true
		}
	}
	for _, k := range []string{"IPAddressPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement", "BFDProfile", "Community"} {
		if !kinds[k] {
			t.Errorf("manifests/samples has no %s", k)
		}
	}
	// Defaults are applied by the API server.
	pool := &unstructured.Unstructured{}
	pool.SetAPIVersion("herald.dev/v1beta1")
	pool.SetKind("IPAddressPool")
	if err := env.Client.Get(t.Context(), keyOf("herald-system", "default"), pool); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedBool(pool.Object, "spec", "autoAssign"); !v {
		t.Errorf("spec.autoAssign default = %v, want true", v)
	}
	// Printer columns show addresses and auto-assign at a glance.
	out, err := env.Kubectl("get", "ipaddresspools", "-n", "herald-system")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ADDRESSES", "AUTO ASSIGN", "ASSIGNED IPV4", "AVAILABLE IPV6", "198.51.100.64/27"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get ipaddresspools does not show %q:\n%s", want, out)
		}
	}
}

// TestMultiHopBFDShapes: BFD on a multi-hop session (RFC 5883) and a BFDProfile's minimum TTL
// from 1 to 254 are accepted.
func TestMultiHopBFDShapes(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "crd-mhbfd")
	for i, obj := range []string{
		"kind: BGPPeer\nspec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, ebgpMultiHop: true, bfdProfile: fast}",
		"kind: BGPPeer\nspec: {myASN: 64512, dynamicASN: external, peerAddress: 192.0.2.1, ebgpMultiHop: true, bfdProfile: fast}",
		"kind: BFDProfile\nspec: {minimumTtl: 1}",
		"kind: BFDProfile\nspec: {minimumTtl: 254, passiveMode: true}",
	} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(obj), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetAPIVersion("herald.dev/v1beta1")
		u.SetNamespace(ns)
		u.SetName("mh-" + strconv.Itoa(i))
		if err := env.Client.Create(t.Context(), u); err != nil {
			t.Errorf("%s rejected: %v", obj, err)
		}
	}
}

// TestUint32FieldsTakeTheirWholeRange: the fields that are uint32 in Go (ASNs, maxPrefixes,
// localPref) accept every uint32 value, 4-byte ASNs above 2^31 included. Their schema says so
// with format int64: with format int32 (what controller-gen writes for uint32), kube-apiserver
// 1.36 rejects every object that sets them, because their maximum 4294967295 is not an int32.
func TestUint32FieldsTakeTheirWholeRange(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "crd-uint32")
	for i, obj := range []string{
		"kind: BGPPeer\nspec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1}",
		"kind: BGPPeer\nspec: {myASN: 4200000000, peerASN: 4294967295, peerAddress: 192.0.2.1, maxPrefixes: 4294967295}",
		"kind: BGPPeer\nspec: {myASN: 1, peerASN: 2147483648, peerAddress: 192.0.2.1, maxPrefixes: 1}",
		"kind: BGPAdvertisement\nspec: {localPref: 4294967295}",
		"kind: BGPAdvertisement\nspec: {localPref: 0}",
	} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(obj), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetAPIVersion("herald.dev/v1beta1")
		u.SetNamespace(ns)
		u.SetName("u32-" + strconv.Itoa(i))
		if err := env.Client.Create(t.Context(), u); err != nil {
			t.Errorf("%s rejected: %v", obj, err)
		}
	}
}

// TestGracefulRestartShapes: BGPPeers of before (enableGracefulRestart true, false or unset)
// stay valid, with a restart time or without, and so do the graceful shutdown settings.
func TestGracefulRestartShapes(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "crd-gr")
	for i, spec := range []string{
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, enableGracefulRestart: true}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, enableGracefulRestart: false}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulRestartTime: 30s}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, enableGracefulRestart: true, gracefulRestartTime: 4095s}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: true}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: false}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: true, gracefulShutdownTime: 1s}`,
		`{myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: true, gracefulShutdownTime: 60s}`,
		// BGP unnumbered.
		`{myASN: 64512, peerASN: 64500, interface: eth1}`,
		`{myASN: 64512, dynamicASN: external, interface: enp1s0f1.100, holdTime: 9s, gracefulShutdown: true}`,
	} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("kind: BGPPeer\nspec: "+spec), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetAPIVersion("herald.dev/v1beta1")
		u.SetNamespace(ns)
		u.SetName("gr-" + strconv.Itoa(i))
		if err := env.Client.Create(t.Context(), u); err != nil {
			t.Errorf("spec %s rejected: %v", spec, err)
		}
	}
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	testenv.Require(t, env)
	ns := env.NewNamespace(t, "crd-invalid")
	tests := []struct {
		name string
		yaml string
		want string // substring of the API server's message
	}{
		{"bad CIDR", `kind: IPAddressPool
spec: {addresses: ["192.0.2.300/24"]}`, "each address must be a CIDR"},
		{"range across families", `kind: IPAddressPool
spec: {addresses: ["192.0.2.1-2001:db8::1"]}`, "each address must be a CIDR"},
		{"garbage address", `kind: IPAddressPool
spec: {addresses: ["pool"]}`, "each address must be a CIDR"},
		{"CIDR with host bits", `kind: IPAddressPool
spec: {addresses: ["192.0.2.5/24"]}`, "a CIDR must not have host bits set"},
		{"hold time not whole seconds", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 3500ms}`, "holdTime 3500ms must be a whole number of seconds"},
		{"hold time 0", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 0s}`, "holdTime 0s must be between 3s and 65535s (default 90s); 0s (no keepalives) is not supported"},
		{"keepalive not whole seconds", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, keepaliveTime: 2.5s}`, "keepaliveTime 2.5s must be a whole number of seconds"},
		{"keepalive 0", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, keepaliveTime: 0s}`, "keepaliveTime 0s must be at least 1s"},
		{"keepalive above the default hold time", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, keepaliveTime: 91s}`, "keepaliveTime 91s must not be longer than holdTime 90s (the default)"},
		{"connect time not whole seconds", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, connectTime: 1500ms}`, "connectTime 1500ms must be a whole number of seconds"},
		{"peer address unspecified", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 0.0.0.0}`, "peerAddress 0.0.0.0 is not a unicast address a router can be reached at"},
		{"peer address loopback", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: "::1"}`, "peerAddress ::1 is not a unicast address"},
		{"peer address link-local", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: "fe80::1"}`, "peerAddress fe80::1 is not a unicast address"},
		{"peer address multicast", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 224.0.0.5}`, "peerAddress 224.0.0.5 is not a unicast address"},
		{"peer address broadcast", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 255.255.255.255}`, "peerAddress 255.255.255.255 is not a unicast address"},
		{"peer address in 0.0.0.0/8", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 0.1.2.3}`, "peerAddress 0.1.2.3 is not a unicast address"},
		{"peer address in 240.0.0.0/4", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 240.0.0.1}`, "peerAddress 240.0.0.1 is not a unicast address"},
		{"peer address IPv4-mapped", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: "::ffff:192.0.2.1"}`, "peerAddress must be an IPv4 or IPv6 address"},
		{"source address loopback", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, sourceAddress: 127.0.0.1}`, "sourceAddress 127.0.0.1 is not a unicast address"},
		{"router ID 0.0.0.0", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, routerID: 0.0.0.0}`, "routerID 0.0.0.0 is not a usable BGP identifier"},
		{"router ID multicast", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, routerID: 224.0.0.1}`, "routerID 224.0.0.1 is not a usable BGP identifier"},
		{"max prefixes 0", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, maxPrefixes: 0}`, "spec.maxPrefixes: Invalid value: 0"},
		{"empty pool", `kind: IPAddressPool
spec: {addresses: []}`, "spec.addresses: Invalid value: 0: spec.addresses in body should have at least 1 items"},
		{"empty serviceAllocation", `kind: IPAddressPool
spec: {addresses: ["192.0.2.0/28"], serviceAllocation: {}}`, "serviceAllocation must set at least one of"},
		{"ASN 0", `kind: BGPPeer
spec: {myASN: 0, peerASN: 64500, peerAddress: 192.0.2.1}`, "spec.myASN: Invalid value: 0: spec.myASN in body should be greater than or equal to 1"},
		{"ASN too large", `kind: BGPPeer
spec: {myASN: 4294967296, peerASN: 64500, peerAddress: 192.0.2.1}`, "spec.myASN"},
		{"peer ASN too large", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 4294967296, peerAddress: 192.0.2.1}`, "spec.peerASN"},
		{"max prefixes too large", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, maxPrefixes: 4294967296}`, "spec.maxPrefixes"},
		{"local preference too large", `kind: BGPAdvertisement
spec: {localPref: 4294967296}`, "spec.localPref"},
		{"local preference negative", `kind: BGPAdvertisement
spec: {localPref: -1}`, "spec.localPref"},
		{"peer address not an IP", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: router.example}`, "peerAddress must be an IPv4 or IPv6 address"},
		{"multihop on iBGP", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64512, peerAddress: 192.0.2.1, ebgpMultiHop: true}`, "ebgpMultiHop applies only to eBGP"},
		{"hold time 2s", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 2s}`, "holdTime 2s must be between 3s and 65535s"},
		{"keepalive above hold", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s, keepaliveTime: 10s}`, "keepaliveTime 10s must not be longer than holdTime 9s"},
		{"hold time not a duration", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: "90"}`, "spec.holdTime"},
		{"router ID IPv6", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, routerID: "2001:db8::1"}`, "routerID must be an IPv4 address"},
		{"source family differs", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, sourceAddress: "2001:db8::2"}`, "sourceAddress must be of the same IP family"},
		{"standard community overflow", `kind: BGPAdvertisement
spec: {communities: ["65536:1"]}`, "a community must be standard a:b with 16-bit parts"},
		{"large community too short", `kind: BGPAdvertisement
spec: {communities: ["large:1:2"]}`, "a community must be standard a:b"},
		{"aggregation length 33", `kind: BGPAdvertisement
spec: {aggregationLength: 33}`, "spec.aggregationLength: Invalid value: 33"},
		{"bad alias value", `kind: Community
spec: {communities: [{name: x, value: "1:2:3"}]}`, "value must be a standard community"},
		{"BFD multiplier 1", `kind: BFDProfile
spec: {detectMultiplier: 1}`, "spec.detectMultiplier: Invalid value: 1"},
		{"BFD echo mode", `kind: BFDProfile
spec: {echoMode: true}`, "the BFD echo function is not supported"},
		{"BFD minimum TTL 255", `kind: BFDProfile
spec: {minimumTtl: 255}`, "spec.minimumTtl: Invalid value: 255"},
		{"BFD minimum TTL 0", `kind: BFDProfile
spec: {minimumTtl: 0}`, "spec.minimumTtl: Invalid value: 0"},
		{"no peer AS", `kind: BGPPeer
spec: {myASN: 64512, peerAddress: 192.0.2.1}`, "set exactly one of peerASN (the router's AS number, such as 64500) and dynamicASN"},
		{"peer AS and dynamic AS", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, dynamicASN: external, peerAddress: 192.0.2.1}`, "set exactly one of peerASN"},
		{"dynamic AS unknown", `kind: BGPPeer
spec: {myASN: 64512, dynamicASN: any, peerAddress: 192.0.2.1}`, `spec.dynamicASN: Unsupported value: "any"`},
		{"multihop on dynamic internal", `kind: BGPPeer
spec: {myASN: 64512, dynamicASN: internal, peerAddress: 192.0.2.1, ebgpMultiHop: true}`, "ebgpMultiHop applies only to eBGP"},
		{"VRF not a device name", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, vrf: "red/blue"}`, "vrf red/blue is not a Linux device name"},
		{"VRF name too long", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, vrf: "sixteen-chars-xx"}`, "spec.vrf: Too long"},
		{"BFD in a VRF", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, vrf: red, bfdProfile: fast}`, "BFD on a session in a VRF is not supported"},
		{"graceful restart time too long", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulRestartTime: 4096s}`, "gracefulRestartTime 4096s must be between 1s and 4095s"},
		{"graceful restart time not whole seconds", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulRestartTime: 1500ms}`, "gracefulRestartTime 1500ms must be a whole number of seconds"},
		{"graceful restart time with graceful restart off", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, enableGracefulRestart: false, gracefulRestartTime: 30s}`, "gracefulRestartTime applies only with graceful restart"},
		{"graceful shutdown time without graceful shutdown", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdownTime: 10s}`, "gracefulShutdownTime applies only with gracefulShutdown: true"},
		{"graceful shutdown time too long", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: true, gracefulShutdownTime: 61s}`, "gracefulShutdownTime 61s must be between 1s and 60s"},
		{"graceful shutdown time too short", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, gracefulShutdown: true, gracefulShutdownTime: 500ms}`, "gracefulShutdownTime 500ms must be between 1s and 60s"},
		{"neither peer address nor interface", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500}`, "set exactly one of peerAddress (the router's address, such as 198.51.100.1) and interface"},
		{"peer address and interface", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, peerAddress: 192.0.2.1, interface: eth1}`, "set exactly one of peerAddress"},
		{"unnumbered interface not a device name", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: "eth 1"}`, "interface eth 1 is not a Linux device name"},
		{"unnumbered interface name too long", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: "sixteen-chars-xx"}`, "spec.interface: Too long"},
		{"unnumbered with multihop", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: eth1, ebgpMultiHop: true}`, "ebgpMultiHop does not apply to an unnumbered session"},
		{"unnumbered with source address", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: eth1, sourceAddress: "2001:db8::2"}`, "sourceAddress does not apply to an unnumbered session"},
		{"unnumbered in a VRF", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: eth1, vrf: red}`, "an unnumbered session (interface) in a VRF is not supported"},
		{"unnumbered with BFD", `kind: BGPPeer
spec: {myASN: 64512, peerASN: 64500, interface: eth1, bfdProfile: fast}`, "BFD on an unnumbered session (interface) is not supported"},
		{"interface with slash", `kind: L2Advertisement
spec: {interfaces: ["eth0/1"]}`, "spec.interfaces[0]"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tc.yaml), &u.Object); err != nil {
				t.Fatal(err)
			}
			u.SetAPIVersion("herald.dev/v1beta1")
			u.SetNamespace(ns)
			u.SetName("bad-" + strings.ToLower(u.GetKind()) + "-" + strconv.Itoa(i))
			err := env.Client.Create(t.Context(), u)
			if err == nil {
				t.Fatalf("accepted; want rejection containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant an Invalid error containing %q", err, tc.want)
			}
		})
	}
}
