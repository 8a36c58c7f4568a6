package keystore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/uuid"
)

// MaxKeyLen is the longest key value, in bytes, that can be a key: a UUID
// in any of its spellings is at most 45 (urn:uuid:...). Callers refuse
// longer values before hashing them, so a request cannot make the gateway
// hash a megabyte header.
const MaxKeyLen = 64

// Find returns the record of the key whose value is plain, or ErrUnknownKey
// (at once for a value longer than MaxKeyLen). It does not check status or
// host; see Authenticate for that.
func (s *Store) Find(ctx context.Context, plain string) (Key, error) {
	return s.find(ctx, plain, queryKeyByHash)
}

// find reads the key whose value is plain with query, queryKeyByHash or
// queryAuthByHash, which leaves its usage zero.
func (s *Store) find(ctx context.Context, plain, query string) (Key, error) {
	if len(plain) > MaxKeyLen {
		return Key{}, ErrUnknownKey
	}
	hash := HashKey(plain)
	var stored []byte
	k, err := scanKey(s.db.QueryRowContext(ctx, query, hash[:]), &stored)
	if isNoRows(err) {
		return Key{}, ErrUnknownKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("keystore: find key: %w", err)
	}
	// The index already matched the hash; compare again in constant time so
	// no code path depends on early-exit byte comparison of secrets.
	if subtle.ConstantTimeCompare(stored, hash[:]) != 1 {
		return Key{}, ErrUnknownKey
	}
	return k, nil
}

// Authenticate checks that plain is an active key and that addr, the
// caller's address, is the host the key is bound to. It returns the key's
// record, without its usage, or the record (as far as known) together with
// one of ErrUnknownKey, ErrRevoked, ErrExpired or ErrHostMismatch, so that
// callers can log which key failed and why; or with an error wrapping
// ErrLookup when the key's DNS name could not be looked up, which is no
// refusal.
func (s *Store) Authenticate(ctx context.Context, plain string, addr netip.Addr) (Key, error) {
	k, err := s.find(ctx, plain, queryAuthByHash)
	if err != nil {
		return Key{}, err
	}
	return s.check(ctx, k, addr)
}

// check applies the status and host binding of k to a caller at addr, at
// one reading of the clock for both: on every request's path, where a
// second reading cost as much as the rest of the check.
func (s *Store) check(ctx context.Context, k Key, addr netip.Addr) (Key, error) {
	now := s.Now()
	switch k.Status(now) {
	case StatusRevoked:
		return k, ErrRevoked
	case StatusExpired:
		return k, ErrExpired
	}
	ok, err := s.resolver.matches(ctx, k.Hostname, addr, now)
	if err != nil {
		return k, err
	}
	if !ok {
		return k, ErrHostMismatch
	}
	return k, nil
}

// HashKey returns the SHA-256 the store keeps for a key value. A value that
// parses as a UUID is hashed in its canonical lower-case form, so the same
// key written in upper case or braces still matches.
func HashKey(plain string) [sha256.Size]byte {
	// A key in the canonical form, as keys are generated and almost always
	// sent, is hashed as it is: no parse and no re-encoding on every
	// request's path.
	var b [36]byte
	if isCanonicalUUID(plain) {
		copy(b[:], plain) // []byte(plain) would allocate: it is longer than 32
		return sha256.Sum256(b[:])
	}
	u, err := uuid.Parse(strings.TrimSpace(plain))
	if err != nil {
		return sha256.Sum256([]byte(plain))
	}
	// u.String() without its allocation: this is on every request's path.
	hex.Encode(b[0:8], u[0:4])
	hex.Encode(b[9:13], u[4:6])
	hex.Encode(b[14:18], u[6:8])
	hex.Encode(b[19:23], u[8:10])
	hex.Encode(b[24:], u[10:])
	b[8], b[13], b[18], b[23] = '-', '-', '-', '-'
	return sha256.Sum256(b[:])
}

// isCanonicalUUID reports whether s is a UUID as uuid.UUID.String writes
// it: 36 bytes, lower-case hex digits, hyphens at 8, 13, 18 and 23. Such a
// value parses as a UUID whose String is s again.
func isCanonicalUUID(s string) bool {
	return len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
		lowerHex(s[:8]) && lowerHex(s[9:13]) && lowerHex(s[14:18]) && lowerHex(s[19:23]) && lowerHex(s[24:])
}

// lowerHex reports whether s is all lower-case hex digits. A table, rather
// than comparisons per byte, takes the check to half the time.
func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLowerHex[s[i]] {
			return false
		}
	}
	return true
}

// isLowerHex is true for the bytes 0-9 and a-f.
var isLowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()
