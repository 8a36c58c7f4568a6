package keystore_test

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// legacyDatabase makes a database in the original setup's format holding
// the given plaintext keys, each for 127.0.0.1, with ids 1, 2, ... in
// order, and returns its path.
func legacyDatabase(t *testing.T, keys ...string) string {
	t.Helper()
	hosts := make([]string, len(keys))
	for i := range hosts {
		hosts[i] = "127.0.0.1"
	}
	return originalDatabaseOf(t, keys, hosts)
}

// TestUpgradeLegacyNonUUIDKeys checks that a legacy key that is not a UUID
// keeps working but is stored with no display prefix, since its first 8
// characters could be all or most of it, and is reported as legacy; a
// legacy UUID keeps its prefix, in canonical form.
func TestUpgradeLegacyNonUUIDKeys(t *testing.T) {
	upper := strings.ToUpper(uuid.NewString())
	keys := []string{"s3cr3t", "deadbeef", "a-legacy-key-of-some-length", upper}
	path := legacyDatabase(t, keys...)
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range keys {
		k, err := s.Authenticate(context.Background(), key, netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatalf("legacy key %d no longer works: %v", i+1, err)
		}
		wantPrefix, wantLegacy := "", true
		if key == upper {
			wantPrefix, wantLegacy = strings.ToLower(upper[:8]), false
		}
		if k.Prefix != wantPrefix || k.Legacy() != wantLegacy {
			t.Errorf("legacy key %d: prefix %q, legacy %v; want %q, %v", i+1, k.Prefix, k.Legacy(), wantPrefix, wantLegacy)
		}
	}
	s.Close()
	for _, key := range keys[1:3] {
		assertNotInFiles(t, path, key)
	}
}

// TestMigrationClearsWholeKeyPrefixes opens a database upgraded by an
// earlier metricgate, whose legacy keys of 8 characters or fewer were
// stored in full as their display prefix, and longer ones with their
// first 8 characters: the prefixes that cannot start a UUID, or that are
// a whole key, are cleared and erased from the files; a generated key's
// is kept.
func TestMigrationClearsWholeKeyPrefixes(t *testing.T) {
	path := databaseAt(t, 2)
	plain := uuid.NewString()
	hash := keystore.HashKey(plain)
	execRaw(t, path, `INSERT INTO api_keys (id, key_hash, prefix, hostname, created_at) VALUES (1, ?, ?, 'web-1', 0)`, hash[:], plain[:8])
	k := keystore.Key{ID: 1}
	for i, key := range []string{"cafe1234", "pass", "web-1-key-of-old"} {
		hash := sha256.Sum256([]byte(key))
		prefix := key[:min(8, len(key))]
		execRaw(t, path, `INSERT INTO api_keys (id, key_hash, prefix, hostname, created_at) VALUES (?, ?, ?, 'web-1', 0)`,
			100+i, hash[:], prefix)
	}
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := s.List(context.Background(), keystore.Filter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range keys {
		if want := got.ID != k.ID; got.Legacy() != want {
			t.Errorf("key %d with prefix %q: legacy %v, want %v", got.ID, got.Prefix, got.Legacy(), want)
		}
	}
	for _, key := range []string{"cafe1234", "web-1-ke"} {
		assertNotInFiles(t, path, key)
	}
}

// TestOpenTightensMode checks that opening a key store whose files others
// may read (as the original setup's database could be) makes them the
// owner's alone.
func TestOpenTightensMode(t *testing.T) {
	key := uuid.NewString()
	path := legacyDatabase(t, key)
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := keystore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Find(context.Background(), key); err != nil {
		t.Errorf("the legacy key after Open: %v", err)
	}
	s.Close()
	for _, f := range storeFiles(path) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is mode %04o after Open, want 0600", filepath.Base(f), perm)
		}
	}
}

// assertNotInFiles fails if s appears in the database at path or its WAL
// and shared-memory files.
func assertNotInFiles(t *testing.T, path, s string) {
	t.Helper()
	for _, f := range storeFiles(path) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), s) {
			t.Errorf("%s holds %q", filepath.Base(f), s)
		}
	}
}

// storeFiles returns those of the files of the store at path that exist:
// the database and its -wal and -shm files.
func storeFiles(path string) []string {
	var files []string
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	return files
}
