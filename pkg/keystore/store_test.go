package keystore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestGenerate(t *testing.T) { forEachBackend(t, testGenerate) }

func testGenerate(t *testing.T, b backend) {
	s, addr := openStore(t, b)
	ctx := context.Background()
	k, plain := generate(t, s, keystore.NewKey{Hostname: "Web-1.example.com.", Description: "web one"})

	u, err := uuid.Parse(plain)
	if err != nil || u.Version() != 4 || u.String() != plain {
		t.Fatalf("key %q is not a canonical UUID v4 (err %v)", plain, err)
	}
	if k.ID == 0 || k.Prefix != plain[:8] || k.Hostname != "web-1.example.com" || k.Description != "web one" {
		t.Errorf("got %+v, want id>0, prefix %q, hostname web-1.example.com", k, plain[:8])
	}
	if got := k.Scopes; len(got) != 1 || got[0] != keystore.ScopeSubmit {
		t.Errorf("scopes = %v, want [submit]", got)
	}
	if k.Status(time.Now()) != keystore.StatusActive {
		t.Errorf("status = %s, want active", k.Status(time.Now()))
	}
	got, err := s.Find(ctx, strings.ToUpper(plain))
	if err != nil || got.ID != k.ID {
		t.Errorf("Find(upper-case key) = %v, %v; want id %d", got.ID, err, k.ID)
	}
	if !b.postgres() {
		fi, err := os.Stat(addr)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("database mode = %o, want 600", perm)
		}
	}
	s.Close()
	assertNoPlaintext(t, addr, plain)
}

func TestGenerateRejectsBadInput(t *testing.T) {
	forEachBackend(t, testGenerateRejectsBadInput)
}

func testGenerateRejectsBadInput(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	for _, nk := range []keystore.NewKey{
		{Hostname: ""},
		{Hostname: "not a host"},
		{Hostname: "10.0.0.256"},
		{Hostname: "10.0.0.0/33"},
		{Hostname: "-bad.example"},
		{Hostname: "web-1", Scopes: []string{"root"}},
	} {
		if _, _, err := s.Generate(context.Background(), nk); !errors.Is(err, keystore.ErrInvalidHostname) && !errors.Is(err, keystore.ErrInvalidScope) {
			t.Errorf("Generate(%+v) error = %v, want ErrInvalidHostname or ErrInvalidScope", nk, err)
		}
	}
}

func TestCanonicalHostname(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"2001:DB8::1", "2001:db8::1"},
		{"10.0.0.7/24", "10.0.0.0/24"},
		{"::ffff:10.0.0.0/120", "10.0.0.0/24"},
		{"fd00::1/64", "fd00::/64"},
		{"Web-1", "web-1"},
		{"host.example.com.", "host.example.com"},
	}
	for _, tt := range tests {
		got, err := keystore.CanonicalHostname(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CanonicalHostname(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestAuthenticate(t *testing.T) { forEachBackend(t, testAuthenticate) }

func testAuthenticate(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }

	_, v4 := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	_, mapped := generate(t, s, keystore.NewKey{Hostname: "::ffff:192.0.2.9"})
	_, v6 := generate(t, s, keystore.NewKey{Hostname: "2001:db8::1"})
	_, cidr := generate(t, s, keystore.NewKey{Hostname: "10.0.0.0/24"})
	_, name := generate(t, s, keystore.NewKey{Hostname: "localhost"})
	revokedKey, revoked := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})
	if _, err := s.Revoke(ctx, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	_, expiring := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1", ExpiresAt: now.Add(time.Hour)})

	tests := []struct {
		name    string
		key     string
		addr    string
		advance time.Duration
		want    error
	}{
		{"IPv4", v4, "127.0.0.1", 0, nil},
		{"IPv4MappedCaller", v4, "::ffff:127.0.0.1", 0, nil},
		{"IPv4Mismatch", v4, "127.0.0.2", 0, keystore.ErrHostMismatch},
		{"MappedBinding", mapped, "192.0.2.9", 0, nil},
		{"IPv6", v6, "2001:db8:0:0::1", 0, nil},
		{"IPv6Mismatch", v6, "2001:db8::2", 0, keystore.ErrHostMismatch},
		{"CIDRInside", cidr, "10.0.0.200", 0, nil},
		{"CIDROutside", cidr, "10.0.1.1", 0, keystore.ErrHostMismatch},
		{"DNSName", name, "127.0.0.1", 0, nil},
		{"DNSNameMismatch", name, "192.0.2.1", 0, keystore.ErrHostMismatch},
		{"Unknown", uuid.NewString(), "127.0.0.1", 0, keystore.ErrUnknownKey},
		{"NotAUUID", "hello", "127.0.0.1", 0, keystore.ErrUnknownKey},
		{"Empty", "", "127.0.0.1", 0, keystore.ErrUnknownKey},
		{"Revoked", revoked, "127.0.0.1", 0, keystore.ErrRevoked},
		{"BeforeExpiry", expiring, "127.0.0.1", 59 * time.Minute, nil},
		{"Expired", expiring, "127.0.0.1", time.Hour, keystore.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Now = func() time.Time { return now.Add(tt.advance) }
			k, err := s.Authenticate(ctx, tt.key, netip.MustParseAddr(tt.addr))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && k.ID == 0 {
				t.Errorf("Authenticate returned no key record")
			}
			if tt.want != nil && tt.want != keystore.ErrUnknownKey && k.ID == 0 {
				t.Errorf("Authenticate failure carries no key id for the log")
			}
		})
	}
}

func TestListAndRevoke(t *testing.T) { forEachBackend(t, testListAndRevoke) }

func testListAndRevoke(t *testing.T, be backend) {
	s, _ := openStore(t, be)
	ctx := context.Background()
	a, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	b, plainB := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	c, _ := generate(t, s, keystore.NewKey{Hostname: "web-2"})

	if _, err := s.Revoke(ctx, a.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := s.Revoke(ctx, 999); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Revoke(999) error = %v, want ErrNotFound", err)
	}
	ids := func(f keystore.Filter) []int64 {
		keys, err := s.List(ctx, f)
		if err != nil {
			t.Fatalf("List(%+v): %v", f, err)
		}
		var out []int64
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	for _, tt := range []struct {
		f    keystore.Filter
		want []int64
	}{
		{keystore.Filter{}, []int64{b.ID, c.ID}},
		{keystore.Filter{All: true}, []int64{a.ID, b.ID, c.ID}},
		{keystore.Filter{Hostname: "WEB-1"}, []int64{b.ID}},
		{keystore.Filter{Hostname: "web-1", All: true}, []int64{a.ID, b.ID}},
	} {
		if got := ids(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("List(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}

	revoked, err := s.RevokeHost(ctx, "web-1")
	if err != nil || len(revoked) != 1 || revoked[0].ID != b.ID {
		t.Fatalf("RevokeHost(web-1) = %v, %v; want key %d only", revoked, err, b.ID)
	}
	if _, err := s.Authenticate(ctx, plainB, netip.MustParseAddr("127.0.0.1")); !errors.Is(err, keystore.ErrRevoked) {
		t.Errorf("Authenticate after RevokeHost error = %v, want ErrRevoked", err)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil || got.RevokedAt.IsZero() {
		t.Errorf("revoked key row = %+v, %v; want kept with revoked_at set", got, err)
	}
}

// TestUpgradeOriginalDatabase upgrades a database in the original setup's
// format and checks that ids, hostnames and keys survive while no byte of
// any plaintext key is left in the files.
func TestUpgradeOriginalDatabase(t *testing.T) {
	type row struct {
		id        int64
		key, host string
	}
	var hosts []string
	for i := range 300 {
		hosts = append(hosts, []string{"127.0.0.1", "web-1", "10.1.0.0/16"}[i%3])
	}
	path, keys := originalDatabase(t, hosts...)
	var old []row
	for i, key := range keys {
		old = append(old, row{id: int64(i + 1), key: key, host: hosts[i]})
	}
	// Gaps in the ids must survive too.
	execRaw(t, path, `DELETE FROM api_keys WHERE id = 2`)
	old = append(old[:1], old[2:]...)

	ctx := context.Background()
	s, err := keystore.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open original database: %v", err)
	}
	for _, o := range old {
		k, err := s.Find(ctx, o.key)
		if err != nil {
			t.Fatalf("old key %d: %v", o.id, err)
		}
		if k.ID != o.id || k.Hostname != o.host || k.Prefix != o.key[:8] {
			t.Fatalf("old key %d upgraded to %+v, want same id and hostname %q", o.id, k, o.host)
		}
	}
	if _, err := s.Authenticate(ctx, old[0].key, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("old key for 127.0.0.1 no longer authenticates: %v", err)
	}
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-9"})
	if want := old[len(old)-1].id + 1; k.ID != want {
		t.Errorf("new key id = %d, want %d (after the old ids)", k.ID, want)
	}
	s.Close()

	// Opening again must not redo or undo anything.
	s, err = keystore.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := s.Find(ctx, old[5].key); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	s.Close()

	for _, o := range old {
		assertNoPlaintext(t, path, o.key)
	}
}

// assertNoPlaintext fails if the key, or its 16-byte UUID form, appears in
// the database: in a SQLite file or its WAL and shared-memory files, or in
// any row of a PostgreSQL database's tables.
func assertNoPlaintext(t *testing.T, addr, key string) {
	t.Helper()
	u := uuid.MustParse(key)
	needles := [][]byte{[]byte(key), []byte(key[9:]), u[:]}
	if keystore.IsPostgres(addr) {
		assertNoPlaintextRows(t, addr, needles)
		return
	}
	path := addr
	for _, f := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Fatalf("%s contains plaintext key material %q", filepath.Base(f), n)
			}
		}
	}
}

// assertNoPlaintextRows fails if any needle appears in a row of a table of
// the PostgreSQL database at addr, as text or in its binary columns.
func assertNoPlaintextRows(t *testing.T, addr string, needles [][]byte) {
	t.Helper()
	raw := rawDB(t, addr)
	defer raw.Close()
	rows, err := raw.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 4 {
		t.Fatalf("tables = %v, want the key store's", tables)
	}
	for _, table := range tables {
		// Binary columns appear as \x and hex in row_to_json; their raw
		// bytes are checked by decoding them back.
		rows, err := raw.Query(`SELECT row_to_json(t)::text FROM ` + table + ` t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var row string
			rows.Scan(&row)
			for _, n := range needles {
				if bytes.Contains([]byte(row), n) || strings.Contains(row, hex.EncodeToString(n)) {
					t.Errorf("table %s holds plaintext key material %q in %s", table, n, row)
				}
			}
		}
		rows.Close()
	}
}

func TestPolicyUpdateRotateUsage(t *testing.T) { forEachBackend(t, testPolicyUpdateRotateUsage) }

func testPolicyUpdateRotateUsage(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	addr := netip.MustParseAddr("127.0.0.1")

	k, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1", Scopes: []string{"submit", "admin"},
		Measurements: []string{"cpu", "mem"}, Rate: 10, Burst: 50, ExpiresAt: now.Add(48 * time.Hour)})
	if !k.HasScope("admin") || len(k.Measurements) != 2 || k.Rate != 10 || k.Burst != 50 || !k.ExpiresAt.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("generated %+v, want the policy asked for", k)
	}

	desc, rate, none := "renamed", 0.0, time.Time{}
	scopes := []string{"submit"}
	k, err := s.Update(ctx, k.ID, keystore.Update{Description: &desc, Rate: &rate, ExpiresAt: &none, Scopes: &scopes})
	if err != nil || k.Description != "renamed" || k.Rate != 0 || k.Burst != 50 || !k.ExpiresAt.IsZero() || k.HasScope("admin") {
		t.Fatalf("Update = %+v, %v; want renamed, default rate, burst kept, no expiry, no admin", k, err)
	}
	if _, err := s.Update(ctx, 999, keystore.Update{Description: &desc}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Update(999) error = %v, want ErrNotFound", err)
	}
	bad := -1.0
	if _, err := s.Update(ctx, k.ID, keystore.Update{Rate: &bad}); !errors.Is(err, keystore.ErrInvalidPolicy) {
		t.Errorf("Update(rate -1) error = %v, want ErrInvalidPolicy", err)
	}

	// Expiring and unused filters.
	soon, _ := generate(t, s, keystore.NewKey{Hostname: "web-2", ExpiresAt: now.Add(time.Hour)})
	got, _ := s.List(ctx, keystore.Filter{ExpiringWithin: 2 * time.Hour})
	if len(got) != 1 || got[0].ID != soon.ID {
		t.Errorf("List(expiring 2h) = %v, want key %d", got, soon.ID)
	}

	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{k.ID: {LastUsedAt: now, LastUsedAddr: "127.0.0.1", Requests: 3, Points: 30}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{k.ID: {LastUsedAt: now.Add(-time.Hour), LastUsedAddr: "10.0.0.1", Requests: 1, Points: 5}}); err != nil {
		t.Fatal(err)
	}
	k, _ = s.Get(ctx, k.ID)
	if k.Requests != 4 || k.Points != 35 || !k.LastUsedAt.Equal(now) || k.LastUsedAddr != "127.0.0.1" {
		t.Errorf("usage = %d requests, %d points, last %v from %s; want 4, 35, %v from 127.0.0.1", k.Requests, k.Points, k.LastUsedAt, k.LastUsedAddr, now)
	}
	s.Now = func() time.Time { return now.Add(30 * 24 * time.Hour) }
	got, _ = s.List(ctx, keystore.Filter{UnusedSince: 720 * time.Hour})
	if len(got) != 1 || got[0].ID != k.ID {
		t.Errorf("List(unused 720h) = %v, want key %d only", got, k.ID)
	}
	s.Now = func() time.Time { return now }

	// Rotation: the old key works until the grace period ends.
	nk, newPlain, old, err := s.Rotate(ctx, k.ID, time.Hour)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if nk.Hostname != k.Hostname || nk.Burst != 50 || len(nk.Measurements) != 2 || old.ReplacedBy != nk.ID || !old.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("Rotate = new %+v, old %+v; want same policy, old replaced and ending in 1h", nk, old)
	}
	for _, tt := range []struct {
		key     string
		advance time.Duration
		want    error
	}{
		{plain, 59 * time.Minute, nil},
		{newPlain, 59 * time.Minute, nil},
		{plain, time.Hour, keystore.ErrExpired},
		{newPlain, 24 * time.Hour, nil},
	} {
		s.Now = func() time.Time { return now.Add(tt.advance) }
		if _, err := s.Authenticate(ctx, tt.key, addr); !errors.Is(err, tt.want) {
			t.Errorf("after %v: Authenticate error = %v, want %v", tt.advance, err, tt.want)
		}
	}
	s.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if _, _, _, err := s.Rotate(ctx, k.ID, 0); !errors.Is(err, keystore.ErrExpired) {
		t.Errorf("rotating an ended key: error = %v, want ErrExpired", err)
	}
}

// TestHashKeyCanonical checks that every spelling of a UUID key hashes as
// its canonical form does, and anything else as itself.
func TestHashKeyCanonical(t *testing.T) {
	u := uuid.New()
	want := sha256.Sum256([]byte(u.String()))
	for _, spelling := range []string{
		u.String(),
		strings.ToUpper(u.String()),
		"{" + u.String() + "}",
		"urn:uuid:" + u.String(),
		strings.ReplaceAll(u.String(), "-", ""),
		"  " + u.String() + "\n",
	} {
		if got := keystore.HashKey(spelling); got != want {
			t.Errorf("HashKey(%q) differs from the hash of %q", spelling, u.String())
		}
	}
	if got, want := keystore.HashKey("not-a-uuid"), sha256.Sum256([]byte("not-a-uuid")); got != want {
		t.Errorf("HashKey of a non-UUID is not the SHA-256 of the value")
	}
	// The canonical form, which HashKey hashes as it is, and values of its
	// length and near its shape, which it must not take for it.
	for _, v := range []string{
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b810-9dad-11d1-80b4-00c04fd430C8", // one upper-case digit
		"6ba7b810-9dad-11d1-80b4-00c04fd430g8", // not hex
		"6ba7b8109-dad-11d1-80b4-00c04fd430c8", // a hyphen moved
		"6ba7b810-9dad-11d1-80b4-00c04fd4-0c8", // a hyphen for a digit
		"6ba7b810-9dad-11d1-80b4-00c04fd430c",  // 35 bytes
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8 ",
		"6ba7b810x9dad-11d1-80b4-00c04fd430c8",
		"6ba7b8109dad11d180b400c04fd430c8----",
	} {
		if got, want := keystore.HashKey(v), referenceHash(v); got != want {
			t.Errorf("HashKey(%q) differs from the hash of its parsed and re-encoded form", v)
		}
	}
}
