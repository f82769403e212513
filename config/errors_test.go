package config

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFieldErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *FieldError
		want string
	}{
		{
			name: "value and namespace",
			err: &FieldError{Kind: KindIPAddressPool, Namespace: "herald-system", Name: "pool-a", Field: "spec.addresses[1]",
				Value: "192.0.2.300/24", Reason: "not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20"},
			want: `IPAddressPool herald-system/pool-a: spec.addresses[1] "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24 or a range such as 192.0.2.10-192.0.2.20`,
		},
		{
			name: "missing value is left out",
			err:  &FieldError{Kind: KindIPAddressPool, Namespace: "herald-system", Name: "pool-a", Field: "spec.addresses", Reason: "the pool has no addresses"},
			want: `IPAddressPool herald-system/pool-a: spec.addresses: the pool has no addresses`,
		},
		{
			name: "no namespace",
			err:  &FieldError{Kind: KindBGPPeer, Name: "p", Field: "spec.myASN", Value: "0", Reason: "bad"},
			want: `BGPPeer p: spec.myASN "0": bad`,
		},
		{
			name: "value with quotes is escaped",
			err:  &FieldError{Kind: KindBGPPeer, Name: "p", Field: "spec.peerAddress", Value: `a"b`, Reason: "bad"},
			want: `BGPPeer p: spec.peerAddress "a\"b": bad`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.err.Error()); diff != "" {
				t.Errorf("Error() mismatch (-want +got):\n%s", diff)
			}
			if !errors.Is(tt.err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", tt.err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	a := &FieldError{Kind: KindBGPPeer, Name: "a", Field: "spec.myASN", Value: "0", Reason: "bad"}
	b := &FieldError{Kind: KindBGPPeer, Name: "b", Field: "spec.peerASN", Value: "0", Reason: "worse"}
	var err error = Errors{a, b}

	want := "BGPPeer a: spec.myASN \"0\": bad\nBGPPeer b: spec.peerASN \"0\": worse"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Error() mismatch (-want +got):\n%s", diff)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("errors.Is(Errors, ErrInvalid) = false, want true")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe != a {
		t.Errorf("errors.As(Errors, *FieldError) = %v, want the first error", fe)
	}
	if errors.Is(err, errors.New("other")) {
		t.Error("errors.Is(Errors, other) = true, want false")
	}
}

func TestParseErrorIsInvalid(t *testing.T) {
	_, err := ParseAddresses("nonsense")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(ParseAddresses error, ErrInvalid) = false, want true")
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Input != "nonsense" {
		t.Errorf("errors.As(ParseAddresses error, *ParseError) = %v, want Input %q", pe, "nonsense")
	}
	_, err = ParseCommunity("nonsense")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(ParseCommunity error, ErrInvalid) = false, want true")
	}
}

func TestFieldErr(t *testing.T) {
	tests := []struct {
		name string
		err  *FieldError
		want string
	}{
		{
			name: "value",
			err: &FieldError{Kind: KindIPAddressPool, Namespace: "herald-system", Name: "pool-a", Field: "spec.addresses[1]",
				Value: "192.0.2.300/24", Reason: "not a valid CIDR or range; use a CIDR such as 192.0.2.0/24"},
			want: `spec.addresses[1]: Invalid value: "192.0.2.300/24": not a valid CIDR or range; use a CIDR such as 192.0.2.0/24`,
		},
		{
			name: "missing value is left out",
			err:  &FieldError{Kind: KindIPAddressPool, Name: "pool-a", Field: "spec.addresses", Reason: "the pool has no addresses"},
			want: `spec.addresses: Invalid value: the pool has no addresses`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := tt.err.FieldErr()
			if diff := cmp.Diff(tt.want, fe.Error()); diff != "" {
				t.Errorf("FieldErr().Error() mismatch (-want +got):\n%s", diff)
			}
			if fe.Field != tt.err.Field {
				t.Errorf("FieldErr().Field = %q, want %q", fe.Field, tt.err.Field)
			}
		})
	}
}
