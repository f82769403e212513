package config

import (
	"errors"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ErrInvalid is matched (errors.Is) by every error Parse returns and by every error of the
// small parsers of this package, so callers can tell bad input from other failures.
var ErrInvalid = errors.New("invalid configuration")

// Kinds named in FieldError.Kind.
const (
	KindIPAddressPool    = "IPAddressPool"
	KindL2Advertisement  = "L2Advertisement"
	KindBGPAdvertisement = "BGPAdvertisement"
	KindBGPPeer          = "BGPPeer"
	KindBFDProfile       = "BFDProfile"
	KindCommunity        = "Community"
)

// FieldError is one problem with one field of one object. Its message reads
//
//	IPAddressPool herald-system/pool-a: spec.addresses[1] "192.0.2.300/24": not a valid CIDR or range; use ...
//
// that is: kind, namespace/name, field path, the bad value (omitted when there is none, for
// example a missing field) and a reason that says what would be valid.
type FieldError struct {
	Kind      string
	Namespace string
	Name      string
	// Field is the path of the field, as in "spec.addresses[1]".
	Field string
	// Value is the offending value as written, empty when the field is missing.
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	b.WriteByte(' ')
	if e.Namespace != "" {
		b.WriteString(e.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(e.Name)
	b.WriteString(": ")
	b.WriteString(e.Field)
	if e.Value != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.Value))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// FieldErr returns e in the Kubernetes API's own shape, as admission and the API server report
// a field: a field.Error of type Invalid on e.Field with e.Value (left out when empty) and the
// reason as detail. It does not name the object: a field.ErrorList is about one object, which
// the caller names (apierrors.NewInvalid).
//
// FieldError itself is not a field.Error because Parse reports on many objects at once and
// every error must say which one it is about.
func (e *FieldError) FieldErr() *field.Error {
	var v any = e.Value
	if e.Value == "" {
		v = field.OmitValueType{}
	}
	return &field.Error{Type: field.ErrorTypeInvalid, Field: e.Field, BadValue: v, Detail: e.Reason}
}

// Errors is every problem Parse found, in a deterministic order (objects sorted by kind and
// name). Parse never returns an empty Errors.
type Errors []*FieldError

// Error lists the errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, so errors.Is and errors.As look at each of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Is reports whether target is ErrInvalid, also for an (unexpected) empty Errors.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// ParseError is returned by the small parsers (ParseAddresses, ParseCommunity) for input they
// reject. Input is the text as given, Reason says what is wrong and what would be valid.
type ParseError struct {
	Input  string
	Reason string
}

func (e *ParseError) Error() string { return strconv.Quote(e.Input) + ": " + e.Reason }

// Is reports whether target is ErrInvalid.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// reason returns the Reason of a *ParseError, or the message of any other error.
func reason(err error) string {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return err.Error()
}
