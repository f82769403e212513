package config

import (
	"fmt"

	"github.com/herald-lb/herald/api/v1beta1"
)

// SecretsHiddenFromSpeakers returns one error for every BGPPeer of s whose passwordSecret names a
// Secret of s that lacks the label v1beta1.LabelSpeakerSecret=true. The speakers cache only
// Secrets with that label, so for them such a password Secret does not exist: the peer works in
// the controller's eyes and fails on every node. A reference to a Secret that s does not hold is
// left to Parse, which reports it.
func SecretsHiddenFromSpeakers(s Snapshot) Errors {
	labelled := map[string]bool{}
	for i := range s.Secrets {
		sec := &s.Secrets[i]
		labelled[sec.Namespace+"/"+sec.Name] = sec.Labels[v1beta1.LabelSpeakerSecret] == v1beta1.LabelSpeakerSecretValue
	}
	var out Errors
	for i := range s.Peers {
		p := &s.Peers[i]
		ref := p.Spec.PasswordSecret
		if ref == nil || ref.Name == "" {
			continue
		}
		if ok, exists := labelled[p.Namespace+"/"+ref.Name]; exists && !ok {
			out = append(out, &FieldError{
				Kind: KindBGPPeer, Namespace: p.Namespace, Name: p.Name,
				Field: "spec.passwordSecret.name", Value: ref.Name,
				Reason: fmt.Sprintf("Secret %s/%s lacks the label %s=%s, so the speakers cannot read the password; add it: kubectl label secret -n %s %s %s=%s",
					p.Namespace, ref.Name, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue,
					p.Namespace, ref.Name, v1beta1.LabelSpeakerSecret, v1beta1.LabelSpeakerSecretValue),
			})
		}
	}
	return out
}
