package allocator

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors. Every error the allocator returns wraps one of them, test with errors.Is.
// The messages themselves name the Service, address, pool, port or sharing key involved.
var (
	// ErrInvalidRequest: the Service description is contradictory or malformed (bad requested
	// IPs, families, policy, ports).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidPool: a pool passed to New or SetPools is malformed or overlaps another.
	ErrInvalidPool = errors.New("invalid pool")
	// ErrNotInPool: a requested or restored address is in no pool, or a requested address is
	// one the pool skips (AvoidBuggyIPs, Pool.Skip).
	ErrNotInPool = errors.New("address not in any pool")
	// ErrPoolNotAllowed: an address or pool the Service asked for belongs to a pool the
	// Service may not use.
	ErrPoolNotAllowed = errors.New("pool not allowed for service")
	// ErrInUse: the address is held by another Service that does not share it with this one.
	ErrInUse = errors.New("address in use")
	// ErrSharingConflict: the Services share a sharing key but cannot share the address
	// (same port and protocol, or externalTrafficPolicy Local rules).
	ErrSharingConflict = errors.New("sharing conflict")
	// ErrPoolFull: every candidate pool is out of addresses of the wanted family.
	ErrPoolFull = errors.New("pool full")
	// ErrNoPool: no pool may serve the Service (with the wanted families).
	ErrNoPool = errors.New("no pool for service")
)

// Field is the part of a Service's request an error is about, so that the caller can name the
// field of its own object it filled it from (the controller: an annotation of the Service). The
// allocator's messages speak of the Service's pool and sharing key; the caller adds where they
// come from.
type Field int

// The fields of Service an error can be about.
const (
	FieldPool       Field = iota + 1 // Service.Pool
	FieldSharingKey                  // Service.SharingKey
)

// Fields returns the request fields the errors in err's tree are about, each once, in the
// order found.
func Fields(err error) []Field {
	var out []Field
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) { //nolint:errorlint // walks the tree itself, node by node
		case nil:
			return
		case *allocError:
			if x.field != 0 && !slices.Contains(out, x.field) {
				out = append(out, x.field)
			}
		}
		switch u := e.(type) { //nolint:errorlint // walks the tree itself, node by node
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// allocError carries a full, human message, the sentinel it stands for and the request field
// it is about, if any.
type allocError struct {
	kinds []error
	msg   string
	field Field
}

func (e *allocError) Error() string   { return e.msg }
func (e *allocError) Unwrap() []error { return e.kinds }

func newErr(kind error, format string, args ...any) error {
	return &allocError{kinds: []error{kind}, msg: fmt.Sprintf(format, args...)}
}

// fieldErr is newErr about a field of the Service's request.
func fieldErr(field Field, kind error, format string, args ...any) error {
	return &allocError{kinds: []error{kind}, msg: fmt.Sprintf(format, args...), field: field}
}

func invalidf(format string, args ...any) error {
	return newErr(ErrInvalidRequest, format, args...)
}
