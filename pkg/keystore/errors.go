package keystore

import (
	"errors"
	"fmt"
)

// Errors returned by the Store and by ParsePolicy. Callers check them with
// errors.Is.
var (
	// ErrUnknownKey means no key with that value exists (or the value is not
	// a key at all).
	ErrUnknownKey = errors.New("unknown key")
	// ErrRevoked means the key exists but was revoked.
	ErrRevoked = errors.New("key revoked")
	// ErrExpired means the key exists but its expiry time has passed.
	ErrExpired = errors.New("key expired")
	// ErrHostMismatch means the key is valid but the caller's address is not
	// the host the key is bound to.
	ErrHostMismatch = errors.New("caller address does not match the key's host")
	// ErrNotFound means no key has the requested id.
	ErrNotFound = errors.New("key not found")
	// ErrInvalidHostname means a hostname is neither an IP address, a CIDR
	// range nor a valid DNS name.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrInvalidScope means a scope is not one the gateway knows.
	ErrInvalidScope = errors.New("invalid scope")
	// ErrInvalidPolicy means an update or new key asks for something
	// impossible, such as a negative rate or an expiry in the past.
	ErrInvalidPolicy = errors.New("invalid key policy")
	// ErrNoChange means an update names nothing to change. It wraps
	// ErrInvalidPolicy, so callers that refuse a bad policy refuse it too.
	ErrNoChange = fmt.Errorf("%w: nothing to change", ErrInvalidPolicy)
)

// ErrUnavailable means the key store cannot answer now: it cannot be
// reached, or a Cache has not heard from it for longer than
// CacheOptions.MaxStale and so cannot vouch for the keys it holds. It is a
// reason to retry later, never to accept a key: its Unavailable method
// says so, which the gateway answers with 503.
var ErrUnavailable error = unavailableError{}

// unavailableError is ErrUnavailable's type; wrapped errors keep its
// Unavailable method reachable through errors.As.
type unavailableError struct{}

func (unavailableError) Error() string { return "key store unavailable" }

// Unavailable tells the client why its request cannot be answered now.
func (unavailableError) Unavailable() string { return "the key store cannot confirm the key" }
