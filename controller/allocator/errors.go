package allocator

import (
	"errors"
	"fmt"
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

// allocError carries a full, human message and the sentinel it stands for.
type allocError struct {
	kinds []error
	msg   string
}

func (e *allocError) Error() string   { return e.msg }
func (e *allocError) Unwrap() []error { return e.kinds }

func newErr(kind error, format string, args ...any) error {
	return &allocError{kinds: []error{kind}, msg: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return newErr(ErrInvalidRequest, format, args...)
}
