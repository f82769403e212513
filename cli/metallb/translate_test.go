package metallb

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/cli/manifest"
)

// input reads MetalLB objects, Secrets and Services from YAML.
func input(t *testing.T, yaml string) Input {
	t.Helper()
	objs, err := manifest.Decode("metallb.yaml", strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("decoding the test input: %v", err)
	}
	in := Input{MetalLBNamespace: DefaultNamespace, HeraldNamespace: "herald-system"}
	for _, o := range objs {
		switch o.Object.GetKind() {
		case "Secret":
			var s corev1.Secret
			if err := sigsyaml.Unmarshal(o.Raw, &s); err != nil {
				t.Fatal(err)
			}
			in.Secrets = append(in.Secrets, s)
		case "Service":
			var s corev1.Service
			if err := sigsyaml.Unmarshal(o.Raw, &s); err != nil {
				t.Fatal(err)
			}
			in.Services = append(in.Services, s)
		default:
			in.Objects = append(in.Objects, o.Object)
		}
	}
	return in
}

func notes(r Result) []string {
	var out []string
	for _, n := range r.Notes {
		if n.Severity != Info {
			out = append(out, n.String())
		}
	}
	return out
}

// The MetalLB objects come from MetalLB's documentation (configuration, advanced BGP, IP address
// pool and layer-2 pages, v0.15).
func TestTranslate(t *testing.T) {
	tests := []struct {
		name      string
		metallb   string
		want      string // Herald's objects, as Manifests writes them
		wantNotes []string
	}{
		{
			name: "layer 2 (docs: configuration)",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: first-pool
  namespace: metallb-system
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: example
  namespace: metallb-system
spec:
  ipAddressPools:
  - first-pool
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: NodeA
  interfaces:
  - eth0
  - eth1
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/first-pool
  name: first-pool
  namespace: herald-system
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
  allocateNetworkAndBroadcast: true
---
apiVersion: herald.dev/v1beta1
kind: L2Advertisement
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 L2Advertisement metallb-system/example
  name: example
  namespace: herald-system
spec:
  interfaces:
  - eth0
  - eth1
  ipAddressPools:
  - first-pool
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: NodeA
`,
		},
		{
			name: "BGP with BFD (docs: configuration)",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses: [192.168.1.240-192.168.1.250]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: example, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: testbfdprofile
  namespace: metallb-system
spec:
  receiveInterval: 380
  transmitInterval: 270
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: peersample
  namespace: metallb-system
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  bfdProfile: testbfdprofile
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: BFDProfile
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BFDProfile metallb-system/testbfdprofile
  name: testbfdprofile
  namespace: herald-system
spec:
  receiveInterval: 380
  transmitInterval: 270
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/first-pool
  name: first-pool
  namespace: herald-system
spec:
  addresses:
  - 192.168.1.240-192.168.1.250
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/peersample
  name: peersample
  namespace: herald-system
spec:
  bfdProfile: testbfdprofile
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
---
apiVersion: herald.dev/v1beta1
kind: BGPAdvertisement
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BGPAdvertisement metallb-system/example
  name: example
  namespace: herald-system
spec: {}
`,
		},
		{
			name: "advanced BGP: aggregation, localPref, communities, aliases, node selectors, port, source (docs)",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses:
  - 198.51.100.10/24
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
  - name: vpn-only
    value: 1234:1
  - name: no-advertise
    value: 65535:65282
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: local, namespace: metallb-system}
spec:
  ipAddressPools: [first-pool]
  aggregationLength: 32
  localPref: 100
  communities: [65535:65282, vpn-only]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: external, namespace: metallb-system}
spec:
  ipAddressPools: [first-pool]
  aggregationLength: 24
  peers: [example]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: example, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  peerPort: 180
  sourceAddress: 172.30.0.2
  nodeSelectors:
  - matchLabels:
      rack: frontend
    matchExpressions:
    - key: network-speed
      operator: NotIn
      values: [slow]
  - matchExpressions:
    - key: kubernetes.io/hostname
      operator: In
      values: [hostA, hostB]
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: Community
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 Community metallb-system/communities
  name: communities
  namespace: herald-system
spec:
  communities:
  - name: vpn-only
    value: "1234:1"
  - name: no-advertise
    value: 65535:65282
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/first-pool
  name: first-pool
  namespace: herald-system
spec:
  addresses:
  - 198.51.100.0/24
  allocateNetworkAndBroadcast: true
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/example
  name: example
  namespace: herald-system
spec:
  myASN: 64512
  nodeSelectors:
  - matchExpressions:
    - key: network-speed
      operator: NotIn
      values:
      - slow
    matchLabels:
      rack: frontend
  - matchExpressions:
    - key: kubernetes.io/hostname
      operator: In
      values:
      - hostA
      - hostB
  peerASN: 64512
  peerAddress: 172.30.0.3
  peerPort: 180
  sourceAddress: 172.30.0.2
---
apiVersion: herald.dev/v1beta1
kind: BGPAdvertisement
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BGPAdvertisement metallb-system/external
  name: external
  namespace: herald-system
spec:
  aggregationLength: 24
  ipAddressPools:
  - first-pool
  peers:
  - example
---
apiVersion: herald.dev/v1beta1
kind: BGPAdvertisement
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BGPAdvertisement metallb-system/local
  name: local
  namespace: herald-system
spec:
  aggregationLength: 32
  communities:
  - 65535:65282
  - vpn-only
  ipAddressPools:
  - first-pool
  localPref: 100
`,
			wantNotes: []string{`changed: IPAddressPool metallb-system/first-pool: spec.addresses[0] "198.51.100.10/24": written 198.51.100.0/24: MetalLB takes a CIDR with host bits set as its network, Herald wants the network address`},
		},
		{
			name: "pools: autoAssign, serviceAllocation, a pool without priority goes last (docs: IP address pools)",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: expensive, namespace: metallb-system, labels: {cost: high}}
spec:
  addresses: [42.176.25.64/30]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ippool-ns-service-alloc-sample, namespace: metallb-system}
spec:
  addresses: [192.168.20.0/24]
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 50
    namespaces: [namespace-a, namespace-b]
    namespaceSelectors:
    - matchLabels: {foo: bar}
    serviceSelectors:
    - matchExpressions:
      - {key: app, operator: In, values: [bar]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: team-b, namespace: metallb-system}
spec:
  addresses: [192.168.30.0/24]
  serviceAllocation:
    namespaces: [namespace-b]
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/expensive
  labels:
    cost: high
  name: expensive
  namespace: herald-system
spec:
  addresses:
  - 42.176.25.64/30
  allocateNetworkAndBroadcast: true
  autoAssign: false
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/ippool-ns-service-alloc-sample
  name: ippool-ns-service-alloc-sample
  namespace: herald-system
spec:
  addresses:
  - 192.168.20.0/24
  allocateNetworkAndBroadcast: true
  avoidBuggyIPs: true
  serviceAllocation:
    namespaceSelectors:
    - matchLabels:
        foo: bar
    namespaces:
    - namespace-a
    - namespace-b
    priority: 50
    serviceSelectors:
    - matchExpressions:
      - key: app
        operator: In
        values:
        - bar
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/team-b
  name: team-b
  namespace: herald-system
spec:
  addresses:
  - 192.168.30.0/24
  allocateNetworkAndBroadcast: true
  serviceAllocation:
    namespaces:
    - namespace-b
    priority: 51
`,
			wantNotes: []string{`changed: IPAddressPool metallb-system/team-b: spec.serviceAllocation.priority: MetalLB tries a pool without priority after the pools with one; Herald tries the lowest number first, so the priority is set to 51 (after the others)`},
		},
		{
			name: "BGPPeer v1beta1: password in clear moves to a Secret; 0s timers mean unset",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64500
  peerAddress: 198.51.100.1
  holdTime: 0s
  keepaliveTime: 0s
  password: s3cret
  ebgpMultiHop: true
`,
			want: `---
apiVersion: v1
data:
  password: czNjcmV0
kind: Secret
metadata:
  labels:
    herald.dev/speaker-secret: "true"
  name: tor-bgp-password
  namespace: herald-system
type: Opaque
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BGPPeer metallb-system/tor
  name: tor
  namespace: herald-system
spec:
  ebgpMultiHop: true
  myASN: 64512
  passwordSecret:
    key: password
    name: tor-bgp-password
  peerASN: 64500
  peerAddress: 198.51.100.1
`,
			wantNotes: []string{`changed: BGPPeer metallb-system/tor: spec.password: the password moves to the Secret herald-system/tor-bgp-password (key password, labelled herald.dev/speaker-secret=true so that the speakers can read it)`},
		},
		{
			name: "BGPPeer v1beta2: passwordSecret copied, timers, graceful restart; hold time 0 dropped",
			metallb: `
apiVersion: v1
kind: Secret
metadata: {name: tor-auth, namespace: metallb-system}
type: kubernetes.io/basic-auth
data: {password: czNjcmV0}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64500
  peerAddress: 198.51.100.1
  holdTime: 9s
  keepaliveTime: 3s
  connectTime: 5s
  routerID: 198.51.100.10
  enableGracefulRestart: true
  passwordSecret: {name: tor-auth, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: zero, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64500
  peerAddress: 198.51.100.2
  holdTime: 0s
`,
			want: `---
apiVersion: v1
data:
  password: czNjcmV0
kind: Secret
metadata:
  labels:
    herald.dev/speaker-secret: "true"
  name: tor-auth
  namespace: herald-system
type: Opaque
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/tor
  name: tor
  namespace: herald-system
spec:
  connectTime: 5s
  enableGracefulRestart: true
  holdTime: 9s
  keepaliveTime: 3s
  myASN: 64512
  passwordSecret:
    key: password
    name: tor-auth
  peerASN: 64500
  peerAddress: 198.51.100.1
  routerID: 198.51.100.10
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/zero
  name: zero
  namespace: herald-system
spec:
  myASN: 64512
  peerASN: 64500
  peerAddress: 198.51.100.2
`,
			wantNotes: []string{
				`changed: BGPPeer metallb-system/tor: spec.passwordSecret "metallb-system/tor-auth": the password is copied into the Secret herald-system/tor-auth (labelled herald.dev/speaker-secret=true so that the speakers can read it)`,
				`dropped: BGPPeer metallb-system/zero: spec.holdTime "0s": a hold time of 0 (no keepalives) is not supported by Herald; the default, 90s, is used`,
			},
		},
		{
			name: "what has no equivalent (CRD fields interface, echoInterval, dualStackAddressFamily); dynamicASN and vrf translated",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: dual, namespace: metallb-system}
spec:
  addresses: [192.0.2.0/28, 2001:db8::/124]
  someFutureField: 1
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: example, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 172.30.0.3, peerPort: 179, vrf: red}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: dynamic, namespace: metallb-system}
spec: {myASN: 64512, dynamicASN: external, peerAddress: 172.30.0.4}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: unnumbered, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64600, interface: eth1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: mp, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64600, peerAddress: 172.30.0.5, disableMP: true}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: echo, namespace: metallb-system}
spec: {echoMode: true, echoInterval: 60}
---
apiVersion: metallb.io/v1beta3
kind: IPAddressPool
metadata: {name: future, namespace: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: elsewhere, namespace: default}
spec: {addresses: [203.0.113.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: status, namespace: metallb-system}
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: BFDProfile
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 BFDProfile metallb-system/echo
  name: echo
  namespace: herald-system
spec: {}
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/dual
  name: dual
  namespace: herald-system
spec:
  addresses:
  - 192.0.2.0/28
  - 2001:db8::/124
  allocateNetworkAndBroadcast: true
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/dynamic
  name: dynamic
  namespace: herald-system
spec:
  dynamicASN: external
  myASN: 64512
  peerAddress: 172.30.0.4
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/example
  name: example
  namespace: herald-system
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  peerPort: 179
  vrf: red
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/mp
  name: mp
  namespace: herald-system
spec:
  myASN: 64512
  peerASN: 64600
  peerAddress: 172.30.0.5
---
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta2 BGPPeer metallb-system/unnumbered
  name: unnumbered
  namespace: herald-system
spec:
  interface: eth1
  myASN: 64512
  peerASN: 64600
`,
			wantNotes: []string{
				`error: IPAddressPool metallb-system/future: apiVersion "metallb.io/v1beta3": this version of MetalLB's API is not known to the translation (v1beta1, v1beta2 are); not translated`,
				`dropped: BFDProfile metallb-system/echo: spec.echoMode "true": Herald's BFD has no echo function (asynchronous mode only); left out`,
				`dropped: BFDProfile metallb-system/echo: spec.echoInterval "60": Herald's BFDProfile has no echo interval; left out`,
				`dropped: IPAddressPool metallb-system/dual: spec.someFutureField: not a field this translation knows (a MetalLB newer than v0.15?); left out`,
				`changed: BGPPeer metallb-system/dynamic: spec.dualStackAddressFamily "false": Herald enables IPv4 and IPv6 unicast on every session (as MetalLB's dualStackAddressFamily: true): this session carries the routes of both families`,
				`changed: BGPPeer metallb-system/example: spec.dualStackAddressFamily "false": Herald enables IPv4 and IPv6 unicast on every session (as MetalLB's dualStackAddressFamily: true): this session carries the routes of both families`,
				`changed: BGPPeer metallb-system/mp: spec.disableMP "true": Herald runs one session per peer address with both IPv4 and IPv6 unicast enabled; there is no separate session per family`,
				`changed: BGPPeer metallb-system/mp: spec.dualStackAddressFamily "false": Herald enables IPv4 and IPv6 unicast on every session (as MetalLB's dualStackAddressFamily: true): this session carries the routes of both families`,
				`changed: BGPPeer metallb-system/unnumbered: spec.dualStackAddressFamily "false": Herald enables IPv4 and IPv6 unicast on every session (as MetalLB's dualStackAddressFamily: true): this session carries the routes of both families`,
			},
		},
		{
			// Overlapping pools: the later of the two (here by name) is the one Herald refuses.
			name: "invalid for Herald: reported with Herald's message",
			metallb: `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: a, namespace: metallb-system}
spec: {addresses: [192.0.2.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: b, namespace: metallb-system}
spec: {addresses: [192.0.2.128/25]}
`,
			want: `---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/a
  name: a
  namespace: herald-system
spec:
  addresses:
  - 192.0.2.0/24
  allocateNetworkAndBroadcast: true
---
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata:
  annotations:
    herald.dev/migrated-from: metallb.io/v1beta1 IPAddressPool metallb-system/b
  name: b
  namespace: herald-system
spec:
  addresses:
  - 192.0.2.128/25
  allocateNetworkAndBroadcast: true
`,
			wantNotes: []string{
				`error: Herald IPAddressPool herald-system/b: spec.addresses[0] "192.0.2.128/25": Herald's rules refuse the translation: overlaps IPAddressPool a spec.addresses[0] "192.0.2.0/24" in 192.0.2.128/25; an address may belong to one pool only; remove the common addresses from one of the pools`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Translate(input(t, tt.metallb))
			got, err := r.Manifests()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.Split(tt.want, "\n"), strings.Split(string(got), "\n")); diff != "" {
				t.Errorf("Herald objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNotes, notes(r)); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			wantProblems := 0
			for _, n := range tt.wantNotes {
				if strings.HasPrefix(n, "error:") || strings.HasPrefix(n, "dropped:") {
					wantProblems++
				}
			}
			if r.Problems() != wantProblems {
				t.Errorf("Problems() = %d, want %d", r.Problems(), wantProblems)
			}
		})
	}
}

func TestTranslateServices(t *testing.T) {
	in := input(t, `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: production-public-ips, namespace: metallb-system}
spec: {addresses: [192.168.1.0/24]}
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  namespace: web
  annotations:
    metallb.io/loadBalancerIPs: 192.168.1.100
    metallb.io/ip-allocated-from-pool: production-public-ips
spec: {type: LoadBalancer}
---
apiVersion: v1
kind: Service
metadata:
  name: both-prefixes
  namespace: web
  annotations:
    metallb.universe.tf/address-pool: old-name
    metallb.io/address-pool: production-public-ips
    metallb.universe.tf/allow-shared-ip: key-1
spec: {type: LoadBalancer}
---
apiVersion: v1
kind: Service
metadata:
  name: conflicting
  namespace: web
  annotations:
    metallb.io/address-pool: production-public-ips
    herald.dev/address-pool: other
    metallb.io/something-new: "x"
spec: {type: LoadBalancer}
---
apiVersion: v1
kind: Service
metadata:
  name: already
  namespace: web
  annotations:
    metallb.io/address-pool: production-public-ips
    herald.dev/address-pool: production-public-ips
spec: {type: LoadBalancer}
---
apiVersion: v1
kind: Service
metadata:
  name: cluster-ip
  namespace: web
  annotations: {metallb.io/address-pool: production-public-ips}
spec: {type: ClusterIP}
---
apiVersion: v1
kind: Service
metadata:
  name: other-class
  namespace: web
  annotations: {metallb.io/address-pool: production-public-ips}
spec: {type: LoadBalancer, loadBalancerClass: example.com/other}
`)
	r := Translate(in)
	want := []ServiceChange{
		{Namespace: "web", Name: "both-prefixes", Annotations: map[string]string{"herald.dev/address-pool": "production-public-ips", "herald.dev/allow-shared-ip": "key-1"}},
		{Namespace: "web", Name: "nginx", Annotations: map[string]string{"herald.dev/loadBalancerIPs": "192.168.1.100"}},
	}
	if diff := cmp.Diff(want, r.Services); diff != "" {
		t.Errorf("Service changes (-want +got):\n%s", diff)
	}
	wantNotes := []string{
		`error: Service web/conflicting: metadata.annotations[herald.dev/address-pool] "other": already set, to another value than metallb.io/address-pool "production-public-ips"; decide which one Herald should follow`,
		`dropped: Service web/conflicting: metadata.annotations[metallb.io/something-new] "x": no Herald equivalent; left out`,
	}
	if diff := cmp.Diff(wantNotes, notes(r)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}

	// With MetalLB's load-balancer class, only that class's Services are MetalLB's.
	in.LBClass = "example.com/other"
	r = Translate(in)
	if diff := cmp.Diff([]ServiceChange{{Namespace: "web", Name: "other-class", Annotations: map[string]string{"herald.dev/address-pool": "production-public-ips"}}}, r.Services); diff != "" {
		t.Errorf("Service changes with a class (-want +got):\n%s", diff)
	}
}

// FuzzTranslate: any MetalLB object, however malformed, is translated or reported, never a panic.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"metallb.io/v1beta2","kind":"BGPPeer","metadata":{"name":"p","namespace":"metallb-system"},"spec":{"myASN":1,"peerASN":2,"peerAddress":"192.0.2.1","holdTime":"0s","password":"x"}}`,
		`{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"a","namespace":"metallb-system"},"spec":{"addresses":["192.0.2.9/24"],"serviceAllocation":{}}}`,
		`{"apiVersion":"metallb.io/v1beta1","kind":"BGPAdvertisement","metadata":{"name":"a","namespace":"metallb-system"},"spec":"x"}`,
		`{"apiVersion":"metallb.io/v1beta1","kind":"BFDProfile","metadata":{"name":"a","namespace":"metallb-system"},"spec":{"echoInterval":-1}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(s)); err != nil {
			return
		}
		r := Translate(Input{Objects: []*unstructured.Unstructured{u}, MetalLBNamespace: DefaultNamespace, HeraldNamespace: "herald-system"})
		if _, err := r.Manifests(); err != nil {
			t.Fatalf("Manifests: %v", err)
		}
		for _, n := range r.Notes {
			if n.Object == "" || n.Message == "" {
				t.Fatalf("a note without object or message: %+v", n)
			}
		}
	})
}

// TestHeraldAnnotationsAreTheAPIs: the annotations the translation writes are the ones Herald reads.
func TestHeraldAnnotationsAreTheAPIs(t *testing.T) {
	for got, want := range map[string]string{
		heraldPrefix + annAddressPool: v1beta1.AnnotationAddressPool,
		heraldPrefix + annLBIPs:       v1beta1.AnnotationLoadBalancerIPs,
		heraldPrefix + annSharedIP:    v1beta1.AnnotationAllowSharedIP,
		heraldPrefix + annFromPool:    v1beta1.AnnotationAllocatedFromPool,
	} {
		if got != want {
			t.Errorf("translated annotation %q, Herald reads %q", got, want)
		}
	}
}

// TestBFDProfileKeptOnSingleAndMultiHopPeers: Herald runs single-hop and multi-hop BFD, so a
// BFD profile is kept on every peer (multi-hop ones included), with its minimum TTL, without a
// note.
func TestBFDProfileKeptOnSingleAndMultiHopPeers(t *testing.T) {
	for _, multihop := range []bool{false, true} {
		r := Translate(input(t, fmt.Sprintf(`
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, minimumTtl: 250}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: p, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 172.30.0.3, bfdProfile: fast, ebgpMultiHop: %t}
`, multihop)))
		if len(r.Config.Peers) != 1 {
			t.Fatalf("multihop %t: %d peers translated, want 1 (notes %v)", multihop, len(r.Config.Peers), notes(r))
		}
		if got := r.Config.Peers[0].Spec.BFDProfile; got != "fast" {
			t.Errorf("multihop %t: bfdProfile %q, want fast (notes %v)", multihop, got, notes(r))
		}
		if len(r.Config.BFDProfiles) != 1 || r.Config.BFDProfiles[0].Spec.MinimumTTL == nil || *r.Config.BFDProfiles[0].Spec.MinimumTTL != 250 {
			t.Errorf("multihop %t: BFD profiles %+v, want one with minimumTtl 250", multihop, r.Config.BFDProfiles)
		}
		if len(notes(r)) != 0 {
			t.Errorf("multihop %t: notes %v, want none", multihop, notes(r))
		}
	}
}
