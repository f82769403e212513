package confstatus

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

func TestConditions(t *testing.T) {
	objs := []Object{
		{Kind: config.KindIPAddressPool, Name: "a", Generation: 3},
		{Kind: config.KindL2Advertisement, Name: "l2", Generation: 1},
		{Kind: config.KindBGPPeer, Name: "tor", Generation: 2},
		{Kind: config.KindBGPAdvertisement, Name: "both", Generation: 4},
	}
	fe := func(kind, name, field, value, reason string) *config.FieldError {
		return &config.FieldError{Kind: kind, Namespace: "herald-system", Name: name, Field: field, Value: value, Reason: reason}
	}
	p := Problems{
		Errors: config.Errors{
			fe(config.KindL2Advertisement, "l2", "spec.ipAddressPools[0]", "gone", "no IPAddressPool with this name; name an existing pool or create it"),
			fe(config.KindL2Advertisement, "l2", "spec.interfaces[0]", "", "is required"),
			fe(config.KindBGPAdvertisement, "both", "spec.peers[0]", "x", "no BGPPeer with this name"),
			fe(config.KindIPAddressPool, "not-in-objs", "spec.addresses[0]", "1", "bad"),
		},
		Warnings: config.Errors{
			fe(config.KindBGPPeer, "tor", "spec.bfdProfile", "slow", "no BFDProfile with this name; BFD is off for this peer"),
			fe(config.KindBGPAdvertisement, "both", "spec.communities[0]", "east", "unknown alias"),
		},
	}
	want := map[Ref]metav1.Condition{
		{config.KindIPAddressPool, "a"}: {Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValid,
			Message: "No problem found.", ObservedGeneration: 3},
		{config.KindL2Advertisement, "l2"}: {Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse, Reason: v1beta1.ReasonInvalid,
			Message:            `2 problem(s) to fix: spec.ipAddressPools[0] "gone": no IPAddressPool with this name; name an existing pool or create it; spec.interfaces[0]: is required`,
			ObservedGeneration: 1},
		{config.KindBGPPeer, "tor"}: {Type: v1beta1.ConditionValid, Status: metav1.ConditionTrue, Reason: v1beta1.ReasonValidWithWarnings,
			Message: `Valid, with warnings: spec.bfdProfile "slow": no BFDProfile with this name; BFD is off for this peer`, ObservedGeneration: 2},
		{config.KindBGPAdvertisement, "both"}: {Type: v1beta1.ConditionValid, Status: metav1.ConditionFalse, Reason: v1beta1.ReasonInvalid,
			Message:            `1 problem(s) to fix: spec.peers[0] "x": no BGPPeer with this name. Warnings: spec.communities[0] "east": unknown alias`,
			ObservedGeneration: 4},
	}
	got := Conditions(objs, p)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Conditions (-want +got):\n%s", diff)
	}
	// herald_config_invalid_objects: the objects with errors, by kind; warnings leave them valid.
	wantInvalid := map[string]int{
		config.KindIPAddressPool: 0, config.KindL2Advertisement: 1, config.KindBGPAdvertisement: 1,
		config.KindBGPPeer: 0, config.KindBFDProfile: 0, config.KindCommunity: 0,
	}
	if diff := cmp.Diff(wantInvalid, InvalidByKind(got, Kinds)); diff != "" {
		t.Errorf("InvalidByKind (-want +got):\n%s", diff)
	}
}

func TestConditionMessageIsBounded(t *testing.T) {
	var es config.Errors
	for range 500 {
		es = append(es, &config.FieldError{Kind: config.KindIPAddressPool, Name: "a", Field: "spec.addresses[0]", Value: strings.Repeat("é", 20), Reason: "bad"})
	}
	c := Conditions([]Object{{Kind: config.KindIPAddressPool, Name: "a"}}, Problems{Errors: es})[Ref{config.KindIPAddressPool, "a"}]
	if len(c.Message) > maxMessage || !strings.HasSuffix(c.Message, "...") {
		t.Errorf("message of %d bytes, want at most %d ending in ...", len(c.Message), maxMessage)
	}
	if !strings.HasPrefix(c.Message, "500 problem(s)") {
		t.Errorf("message does not start with the count: %.40s", c.Message)
	}
}

func TestParseFindsPasswordSecretsTheSpeakersCannotSee(t *testing.T) {
	s := config.Snapshot{
		Peers: []v1beta1.BGPPeer{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "hidden"}, Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.1",
				PasswordSecret: &v1beta1.SecretKeyReference{Name: "unlabelled"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "seen"}, Spec: v1beta1.BGPPeerSpec{MyASN: 64512, PeerASN: 64500, PeerAddress: "198.51.100.2",
				PasswordSecret: &v1beta1.SecretKeyReference{Name: "labelled"}}},
		},
	}
	s.Secrets = append(s.Secrets, secret("unlabelled", nil), secret("labelled", map[string]string{v1beta1.LabelSpeakerSecret: v1beta1.LabelSpeakerSecretValue}))
	p := Parse(s)
	var got []string
	for _, e := range p.Errors {
		got = append(got, e.Kind+"/"+e.Name+":"+e.Field)
	}
	if diff := cmp.Diff([]string{"BGPPeer/hidden:spec.passwordSecret.name"}, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, p.Errors)
	}
	if len(p.Errors) == 1 && !strings.Contains(p.Errors[0].Reason, "kubectl label secret -n herald-system unlabelled "+v1beta1.LabelSpeakerSecret+"=true") {
		t.Errorf("the error does not give the fix: %s", p.Errors[0].Reason)
	}
}

func secret(name string, labels map[string]string) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: name, Labels: labels},
		Data: map[string][]byte{"password": []byte("x")}}
}
