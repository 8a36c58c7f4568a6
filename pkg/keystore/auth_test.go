package keystore_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// FuzzHashKey checks HashKey, whose fast path hashes a canonical UUID as it
// is, against what it stands for: the hash of the value parsed as a UUID
// and written again, or of the value itself when it is no UUID.
func FuzzHashKey(f *testing.F) {
	for _, s := range []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
		"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b8109dad11d180b400c04fd430c8", " 6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
		"not-a-uuid", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := keystore.HashKey(v), referenceHash(v); got != want {
			t.Fatalf("HashKey(%q) = %x, want %x", v, got, want)
		}
	})
}

// referenceHash is HashKey without its fast path: the SHA-256 of v parsed
// as a UUID and written in canonical form, or of v itself when it is no
// UUID.
func referenceHash(v string) [sha256.Size]byte {
	u, err := uuid.Parse(strings.TrimSpace(v))
	if err != nil {
		return sha256.Sum256([]byte(v))
	}
	return sha256.Sum256([]byte(u.String()))
}

// BenchmarkHashKey is the hash of a key on every request's path, for a key
// sent in the canonical form and in upper case, which is parsed and
// written again.
func BenchmarkHashKey(b *testing.B) {
	key := uuid.NewString()
	for _, v := range []struct{ name, key string }{{"canonical", key}, {"upper", strings.ToUpper(key)}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				keystore.HashKey(v.key)
			}
		})
	}
}
