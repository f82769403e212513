package validate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/cli/manifest"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/controller/webhook"
)

func decode(t *testing.T, yaml string) []manifest.Object {
	t.Helper()
	objs, err := manifest.Decode("config.yaml", strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return objs
}

const pool = `
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata: {name: default}
spec:
  addresses: ["198.51.100.64/27"]
`

func messages(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name         string
		yaml         string
		wantErrors   []string
		wantWarnings []string
		wantObjects  int
	}{
		{name: "valid", yaml: pool + `---
apiVersion: herald.dev/v1beta1
kind: L2Advertisement
metadata: {name: default, namespace: herald-system}
spec: {ipAddressPools: [default]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
`, wantObjects: 2},
		{
			name: "bad address (an error) and a dangling reference (a warning), reported with the file",
			yaml: `
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata: {name: bad}
spec:
  addresses: ["192.0.2.300/24"]
---
apiVersion: herald.dev/v1beta1
kind: L2Advertisement
metadata: {name: l2}
spec: {ipAddressPools: [nope]}
`,
			wantObjects: 2,
			wantErrors: []string{
				`config.yaml (document 1): IPAddressPool herald-system/bad: spec.addresses[0] "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
			},
			wantWarnings: []string{
				`config.yaml (document 2): L2Advertisement herald-system/l2: spec.ipAddressPools[0] "nope": no IPAddressPool with this name (known: bad); the advertisement covers its other pools; name an existing pool or create it`,
			},
		},
		{
			name: "unknown field: reported, and the object is still checked",
			yaml: `
apiVersion: herald.dev/v1beta1
kind: IPAddressPool
metadata: {name: typo}
spec:
  addresses: ["192.0.2.0/33"]
  autoAsign: false
`,
			wantObjects: 1,
			wantErrors: []string{
				`config.yaml (document 1): IPAddressPool herald-system/typo: strict decoding error: unknown field "spec.autoAsign"`,
				`config.yaml (document 1): IPAddressPool herald-system/typo: spec.addresses[0] "192.0.2.0/33": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
			},
		},
		{
			name:       "wrong type: not decoded",
			yaml:       "apiVersion: herald.dev/v1beta1\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {addresses: 5}\n",
			wantErrors: []string{`config.yaml (document 1): IPAddressPool herald-system/x: decoding: json: cannot unmarshal number into Go struct field IPAddressPoolSpec.spec.addresses of type []string`},
		},
		{
			name:       "another version",
			yaml:       "apiVersion: herald.dev/v1\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {addresses: []}\n",
			wantErrors: []string{`config.yaml (document 1): IPAddressPool: apiVersion herald.dev/v1 is not served by Herald; use herald.dev/v1beta1`},
		},
		{
			name:         "another namespace: ignored, with the webhook's warning",
			yaml:         strings.Replace(pool, "{name: default}", "{name: default, namespace: default}", 1),
			wantWarnings: []string{`config.yaml (document 1): IPAddressPool default/default is not in namespace herald-system; Herald ignores it: create Herald objects in herald-system`},
		},
		{
			name: "peer with its password Secret in the files (stringData), unlabelled",
			yaml: `
apiVersion: herald.dev/v1beta1
kind: BGPPeer
metadata: {name: tor}
spec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.1, passwordSecret: {name: tor-password}}
---
apiVersion: v1
kind: Secret
metadata: {name: tor-password}
stringData: {password: s3cret}
`,
			wantObjects: 1,
			wantWarnings: []string{`config.yaml (document 1): BGPPeer herald-system/tor: spec.passwordSecret.name "tor-password": Secret herald-system/tor-password lacks the label ` +
				`herald.dev/speaker-secret=true, so the speakers cannot read the password; add it: kubectl label secret -n herald-system tor-password herald.dev/speaker-secret=true`},
		},
		{
			name:        "peer whose Secret is missing",
			yaml:        "apiVersion: herald.dev/v1beta1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {myASN: 64512, peerASN: 64500, peerAddress: 198.51.100.1, passwordSecret: {name: gone}}\n",
			wantObjects: 1,
			wantErrors: []string{`config.yaml (document 1): BGPPeer herald-system/tor: spec.passwordSecret.name "gone": no Secret with this name in namespace "herald-system"; ` +
				`create it with the password under key "password" and the label herald.dev/speaker-secret=true (the speakers read only Secrets with it), or remove passwordSecret`},
		},
		{
			name: "status kinds are ignored",
			yaml: "apiVersion: herald.dev/v1beta1\nkind: ServiceL2Status\nmetadata: {name: x}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Validate(decode(t, tt.yaml), Options{Namespace: "herald-system"})
			if diff := cmp.Diff(tt.wantErrors, messages(r.Errors)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWarnings, messages(r.Warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if r.Objects != tt.wantObjects {
				t.Errorf("Objects = %d, want %d", r.Objects, tt.wantObjects)
			}
			if r.Valid() != (len(tt.wantErrors) == 0) {
				t.Errorf("Valid() = %v with %d errors", r.Valid(), len(r.Errors))
			}
		})
	}
}

// The messages are the webhook's: for a configuration made of one object after another, the
// errors validate reports are the problems the webhook refuses the last object with.
func TestSameMessagesAsTheWebhook(t *testing.T) {
	objs := decode(t, pool+`---
apiVersion: herald.dev/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp}
spec: {ipAddressPools: [default], aggregationLength: 24, peers: [missing], communities: [no-such-alias]}
`)
	r := Validate(objs, Options{Namespace: "herald-system"})
	var got []string
	for _, p := range r.Errors {
		got = append(got, p.Message)
	}

	if first := Validate(objs[:1], Options{Namespace: "herald-system"}); !first.Valid() {
		t.Fatalf("the pool alone is invalid: %v", first.Errors)
	}
	// The webhook's review of creating the BGPAdvertisement on top of the pool.
	var before config.Snapshot
	if _, err := add(&before, objs[0].Object.GetKind(), objs[0].Raw, "herald-system"); err != nil {
		t.Fatal(err)
	}
	after := before
	if _, err := add(&after, objs[1].Object.GetKind(), objs[1].Raw, "herald-system"); err != nil {
		t.Fatal(err)
	}
	subject := webhook.Subject{Kind: "BGPAdvertisement", Namespace: "herald-system", Name: "bgp"}
	var want []string
	for _, p := range webhook.Review(before, after, subject, webhook.Create) {
		want = append(want, p.Error())
	}
	if len(want) == 0 {
		t.Fatal("the webhook found nothing wrong")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("validate's messages differ from the webhook's (-webhook +validate):\n%s", diff)
	}
}

func TestWriteText(t *testing.T) {
	r := Validate(decode(t, "apiVersion: herald.dev/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {ipAddressPools: [nope]}\n"), Options{Namespace: "herald-system"})
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `warning: config.yaml (document 1): L2Advertisement herald-system/l2: spec.ipAddressPools[0] "nope": no IPAddressPool with this name (there is no IPAddressPool); the advertisement covers its other pools; name an existing pool or create it
1 Herald object(s), 0 Secret(s), 0 other object(s) ignored: valid, 1 warning(s)
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteText (-want +got):\n%s", diff)
	}
}
