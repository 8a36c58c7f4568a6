package keystore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// auditLine is an audit entry without its id and time, for comparing.
type auditLine struct {
	KeyID          int64
	Actor          string
	Action, Detail string
}

func auditLines(t *testing.T, s *keystore.Store, keyID int64, limit int) []auditLine {
	t.Helper()
	entries, err := s.Audit(context.Background(), keyID, limit)
	if err != nil {
		t.Fatalf("Audit(%d, %d): %v", keyID, limit, err)
	}
	lines := []auditLine{}
	for _, e := range entries {
		lines = append(lines, auditLine{e.KeyID, e.Actor, e.Action, e.Detail})
	}
	return lines
}

func TestAudit(t *testing.T) { forEachBackend(t, testAudit) }

func testAudit(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	const actor = "keyctl:alice@admin-1"
	s.Actor = actor

	k1, p1 := generate(t, s, keystore.NewKey{Hostname: "Web-1", Description: "web one", Scopes: []string{"submit", "admin"},
		Measurements: []string{"cpu", "mem"}, Rate: 2.5, Burst: 50, ExpiresAt: now.Add(48 * time.Hour)})
	k2, p2 := generate(t, s, keystore.NewKey{Hostname: "10.0.0.7"})
	k3, p3 := generate(t, s, keystore.NewKey{Hostname: "web-3"})
	k4, p4 := generate(t, s, keystore.NewKey{Hostname: "web-3"})

	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	scopes := []string{"SUBMIT", "admin", "submit"}
	if _, err := s.Update(ctx, k1.ID, keystore.Update{ExpiresAt: &expires, Scopes: &scopes}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	never, noMeasurements, rate, burst, desc := time.Time{}, []string{}, 0.0, 7, `say "hi"`
	if _, err := s.Update(ctx, k1.ID, keystore.Update{ExpiresAt: &never, Measurements: &noMeasurements,
		Rate: &rate, Burst: &burst, Description: &desc}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := s.Update(ctx, k1.ID, keystore.Update{}); err != nil {
		t.Fatalf("empty Update: %v", err)
	}
	if _, err := s.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := s.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke again: %v", err)
	}
	if _, err := s.RevokeHost(ctx, "WEB-3."); err != nil {
		t.Fatalf("RevokeHost: %v", err)
	}
	k5, p5, _, err := s.Rotate(ctx, k1.ID, 24*time.Hour)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{k5.ID: {LastUsedAt: now, LastUsedAddr: "10.0.0.1", Requests: 1, Points: 1}}); err != nil {
		t.Fatal(err)
	}

	want := []auditLine{
		{k5.ID, actor, "generate", fmt.Sprintf("rotated from %d", k1.ID)},
		{k1.ID, actor, "rotate", fmt.Sprintf("replaced_by=%d grace=24h0m0s", k5.ID)},
		{k4.ID, actor, "revoke", "hostname=web-3"},
		{k3.ID, actor, "revoke", "hostname=web-3"},
		{k2.ID, actor, "revoke", ""},
		{k1.ID, actor, "update", `expires_at=never measurements=any rate=default burst=7 description="say \"hi\""`},
		{k1.ID, actor, "update", "expires_at=2027-01-01T00:00:00Z scopes=submit,admin"},
		{k4.ID, actor, "generate", "hostname=web-3 scopes=submit"},
		{k3.ID, actor, "generate", "hostname=web-3 scopes=submit"},
		{k2.ID, actor, "generate", "hostname=10.0.0.7 scopes=submit"},
		{k1.ID, actor, "generate", `hostname=web-1 scopes=submit,admin measurements=cpu,mem rate=2.5 burst=50 expires_at=2026-06-03T00:00:00Z description="web one"`},
	}
	got := auditLines(t, s, 0, 0)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Audit(all) =\n%s\nwant\n%s", formatLines(got), formatLines(want))
	}

	t.Run("ByKey", func(t *testing.T) {
		got := auditLines(t, s, k1.ID, 0)
		if w := []auditLine{want[1], want[5], want[6], want[10]}; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("Audit(key %d) =\n%s\nwant\n%s", k1.ID, formatLines(got), formatLines(w))
		}
		if got := auditLines(t, s, 999, 0); len(got) != 0 {
			t.Errorf("Audit(unknown key) = %v, want none", got)
		}
	})
	t.Run("Limit", func(t *testing.T) {
		if got := auditLines(t, s, 0, 2); fmt.Sprint(got) != fmt.Sprint(want[:2]) {
			t.Errorf("Audit(limit 2) = %v, want %v", got, want[:2])
		}
	})
	t.Run("Times", func(t *testing.T) {
		entries, _ := s.Audit(ctx, 0, 0)
		for _, e := range entries {
			if !e.At.Equal(now) || e.At.Location() != time.UTC {
				t.Errorf("entry %d at %v, want %v in UTC", e.ID, e.At, now)
			}
		}
	})
	t.Run("NoKeyMaterial", func(t *testing.T) {
		entries, _ := s.Audit(ctx, 0, 0)
		for _, plain := range []string{p1, p2, p3, p4, p5} {
			hash := keystore.HashKey(plain)
			needles := []string{plain, strings.ToUpper(plain), plain[:keystore.PrefixLen], plain[9:],
				hex.EncodeToString(hash[:]), string(hash[:])}
			for _, e := range entries {
				for _, n := range needles {
					if strings.Contains(e.Detail, n) || strings.Contains(e.Actor, n) || strings.Contains(e.Action, n) {
						t.Errorf("audit entry %+v contains key material %q", e, n)
					}
				}
			}
		}
	})
}

func formatLines(lines []auditLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %+v\n", l)
	}
	return b.String()
}

func TestAuditActor(t *testing.T) { forEachBackend(t, testAuditActor) }

func testAuditActor(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	s.Actor = ""
	if _, err := s.Revoke(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	got := auditLines(t, s, 0, 0)
	want := []auditLine{{k.ID, "unknown", "revoke", ""}, {k.ID, "unknown", "generate", "hostname=web-1 scopes=submit"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Audit = %v, want %v (Open's default actor, and unknown for an empty one)", got, want)
	}
}

// TestWithActor checks that an actor given with the context is recorded in
// preference to Store.Actor, for every kind of change, and only for the
// changes made with that context.
func TestWithActor(t *testing.T) { forEachBackend(t, testWithActor) }

func testWithActor(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	s.Actor = "apiserver"
	ctx := context.Background()
	const admin = "admin-api:key 7 from 127.0.0.1"
	actx := keystore.WithActor(ctx, admin)

	k, _, err := s.Generate(actx, keystore.NewKey{Hostname: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	desc := "web one"
	if _, err := s.Update(actx, k.ID, keystore.Update{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	nk, _, _, err := s.Rotate(actx, k.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, nk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(keystore.WithActor(ctx, ""), k.ID); err != nil {
		t.Fatal(err)
	}
	got := auditLines(t, s, 0, 0)
	want := []auditLine{
		{k.ID, "apiserver", "revoke", ""},
		{nk.ID, "apiserver", "revoke", ""},
		{nk.ID, admin, "generate", fmt.Sprintf("rotated from %d", k.ID)},
		{k.ID, admin, "rotate", fmt.Sprintf("replaced_by=%d grace=1h0m0s", nk.ID)},
		{k.ID, admin, "update", `description="web one"`},
		{k.ID, admin, "generate", "hostname=web-1 scopes=submit"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Audit =\n%s\nwant\n%s", formatLines(got), formatLines(want))
	}
}

// TestAuditSameTransaction checks that a change whose audit row cannot be
// written is not made at all, and that a failed change leaves no row.
func TestAuditSameTransaction(t *testing.T) { forEachBackend(t, testAuditSameTransaction) }

func testAuditSameTransaction(t *testing.T, b backend) {
	s, path := openStore(t, b)
	ctx := context.Background()
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	desc := "x"
	if _, err := s.Update(ctx, 999, keystore.Update{Description: &desc}); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Update(999) error = %v, want ErrNotFound", err)
	}
	if _, _, _, err := s.Rotate(ctx, 999, time.Hour); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Rotate(999) error = %v, want ErrNotFound", err)
	}
	if got := auditLines(t, s, 0, 0); len(got) != 1 {
		t.Errorf("after failed changes, audit = %v, want only the generate", got)
	}

	execRaw(t, path, `DROP TABLE audit_log`)
	if _, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "web-2"}); err == nil {
		t.Error("Generate without an audit log succeeded, want an error")
	}
	if _, err := s.Revoke(ctx, k.ID); err == nil {
		t.Error("Revoke without an audit log succeeded, want an error")
	}
	if _, err := s.Update(ctx, k.ID, keystore.Update{Description: &desc}); err == nil {
		t.Error("Update without an audit log succeeded, want an error")
	}
	if _, err := s.RevokeHost(ctx, "web-1"); err == nil {
		t.Error("RevokeHost without an audit log succeeded, want an error")
	}
	if _, _, _, err := s.Rotate(ctx, k.ID, time.Hour); err == nil {
		t.Error("Rotate without an audit log succeeded, want an error")
	}
	keys, err := s.List(ctx, keystore.Filter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != k.ID || keys[0].Status(time.Now()) != keystore.StatusActive ||
		keys[0].Description != "" || !keys[0].ExpiresAt.IsZero() {
		t.Errorf("keys = %+v, want key %d alone and unchanged", keys, k.ID)
	}
}

// TestRevokeHostActiveOnly checks that RevokeHost revokes exactly the keys
// List shows as active, leaving expired and revoked keys as they were.
func TestRevokeHostActiveOnly(t *testing.T) { forEachBackend(t, testRevokeHostActiveOnly) }

func testRevokeHostActiveOnly(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	active, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	expired, _ := generate(t, s, keystore.NewKey{Hostname: "web-1", ExpiresAt: now.Add(time.Hour)})
	endsNow, _ := generate(t, s, keystore.NewKey{Hostname: "web-1", ExpiresAt: now.Add(2 * time.Hour)})
	later, _ := generate(t, s, keystore.NewKey{Hostname: "web-1", ExpiresAt: now.Add(3 * time.Hour)})
	revoked, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	other, _ := generate(t, s, keystore.NewKey{Hostname: "web-2"})
	if _, err := s.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	revokedBefore, _ := s.Get(ctx, revoked.ID)

	now = now.Add(2 * time.Hour)
	listed, err := s.List(ctx, keystore.Filter{Hostname: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.RevokeHost(ctx, "web-1")
	if err != nil {
		t.Fatalf("RevokeHost: %v", err)
	}
	wantIDs := []int64{active.ID, later.ID}
	if ids := keyIDs(got); !slices.Equal(ids, wantIDs) || !slices.Equal(keyIDs(listed), wantIDs) {
		t.Errorf("RevokeHost = %v, List before = %v; want both %v", ids, keyIDs(listed), wantIDs)
	}
	for _, k := range got {
		if !k.RevokedAt.Equal(now) || k.Status(now) != keystore.StatusRevoked {
			t.Errorf("returned key %d revoked at %v (status %s), want %v", k.ID, k.RevokedAt, k.Status(now), now)
		}
	}
	for _, tt := range []struct {
		id          int64
		wantStatus  keystore.Status
		wantRevoked time.Time
	}{
		{expired.ID, keystore.StatusExpired, time.Time{}},
		{endsNow.ID, keystore.StatusExpired, time.Time{}},
		{revoked.ID, keystore.StatusRevoked, revokedBefore.RevokedAt},
		{other.ID, keystore.StatusActive, time.Time{}},
	} {
		k, _ := s.Get(ctx, tt.id)
		if k.Status(now) != tt.wantStatus || !k.RevokedAt.Equal(tt.wantRevoked) {
			t.Errorf("key %d: status %s, revoked at %v; want %s, %v", tt.id, k.Status(now), k.RevokedAt, tt.wantStatus, tt.wantRevoked)
		}
	}
	if n := len(auditLines(t, s, 0, 0)); n != 6+1+2 {
		t.Errorf("audit has %d entries, want 9 (6 generate, 1 revoke, 2 revoke by host)", n)
	}
}

// TestRevokeHostImportedHostname revokes, by host, keys imported from the
// original database with hostnames CanonicalHostname rejects.
func TestRevokeHostImportedHostname(t *testing.T) {
	path, _ := originalDatabase(t, "web_1", "web_1", "build box")
	ctx := context.Background()
	s, err := keystore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, tt := range []struct {
		host string
		want []int64
	}{
		{"web_1", []int64{1, 2}},
		{"build box", []int64{3}},
		{"build box", nil}, // already revoked
		{"no_such_host", nil},
	} {
		got, err := s.RevokeHost(ctx, tt.host)
		if err != nil || !slices.Equal(keyIDs(got), tt.want) {
			t.Errorf("RevokeHost(%q) = %v, %v; want %v", tt.host, keyIDs(got), err, tt.want)
		}
	}
	want := []auditLine{
		{3, "unknown", "revoke", `hostname="build box"`},
		{2, "unknown", "revoke", "hostname=web_1"},
		{1, "unknown", "revoke", "hostname=web_1"},
	}
	if got := auditLines(t, s, 0, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

func TestDescriptionAndLimits(t *testing.T) { forEachBackend(t, testDescriptionAndLimits) }

func testDescriptionAndLimits(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	ok := strings.Repeat("é", keystore.MaxDescriptionLen/2) // 256 bytes
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-1", Description: ok})
	if k.Description != ok {
		t.Errorf("description = %q, want %q", k.Description, ok)
	}
	bad := map[string]string{
		"Tab":        "web\tone",
		"Newline":    "web\none",
		"Escape":     "\x1b[31mred",
		"DEL":        "web\x7f",
		"C1":         "web\u0085one",
		"TooLong":    strings.Repeat("a", keystore.MaxDescriptionLen+1),
		"TooLongUTF": ok + "a",
		"BadUTF8":    "web\xff",
	}
	for name, desc := range bad {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "web-1", Description: desc}); !errors.Is(err, keystore.ErrInvalidPolicy) {
				t.Errorf("Generate(description %q) error = %v, want ErrInvalidPolicy", desc, err)
			}
			if _, err := s.Update(ctx, k.ID, keystore.Update{Description: &desc}); !errors.Is(err, keystore.ErrInvalidPolicy) {
				t.Errorf("Update(description %q) error = %v, want ErrInvalidPolicy", desc, err)
			}
			if err := keystore.CheckDescription(desc); !errors.Is(err, keystore.ErrInvalidPolicy) {
				t.Errorf("CheckDescription(%q) = %v, want ErrInvalidPolicy", desc, err)
			}
		})
	}
	for _, r := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "web-1", Rate: r}); !errors.Is(err, keystore.ErrInvalidPolicy) {
			t.Errorf("Generate(rate %v) error = %v, want ErrInvalidPolicy", r, err)
		}
		if _, err := s.Update(ctx, k.ID, keystore.Update{Rate: &r}); !errors.Is(err, keystore.ErrInvalidPolicy) {
			t.Errorf("Update(rate %v) error = %v, want ErrInvalidPolicy", r, err)
		}
	}
	if _, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "web-1", Burst: -1}); !errors.Is(err, keystore.ErrInvalidPolicy) {
		t.Errorf("Generate(burst -1) error = %v, want ErrInvalidPolicy", err)
	}
	got, _ := s.Get(ctx, k.ID)
	if got.Description != ok || got.Rate != 0 {
		t.Errorf("after rejected updates, key = %+v, want unchanged", got)
	}
	if keys, _ := s.List(ctx, keystore.Filter{All: true}); len(keys) != 1 {
		t.Errorf("%d keys, want only the valid one", len(keys))
	}
	if n := len(auditLines(t, s, 0, 0)); n != 1 {
		t.Errorf("audit has %d entries, want 1", n)
	}
}

// TestOpenRefusesNewerSchema checks that a database migrated by a newer
// metricgate is refused, not used with a schema this build does not know.
func TestOpenRefusesNewerSchema(t *testing.T) { forEachBackend(t, testOpenRefusesNewerSchema) }

func testOpenRefusesNewerSchema(t *testing.T, b backend) {
	s, path := openStore(t, b)
	s.Close()
	known := schemaVersion(t, path)
	if want := migrationCount(t, path); known != want {
		t.Fatalf("schema version after Open = %d, want %d (one per migration)", known, want)
	}
	setSchemaVersion(t, path, known+1)
	_, err := keystore.Open(context.Background(), path)
	shown := path
	if b.postgres() {
		shown = redacted(t, path)
	}
	want := fmt.Sprintf("keystore: %s: database schema version %d is newer than this build supports (%d); upgrade metricgate", shown, known+1, known)
	if err == nil || err.Error() != want || !errors.Is(err, keystore.ErrSchemaTooNew) {
		t.Fatalf("Open error = %v, want %q matching ErrSchemaTooNew", err, want)
	}
	if got := schemaVersion(t, path); got != known+1 {
		t.Errorf("schema version after refusal = %d, want %d untouched", got, known+1)
	}
}

// TestMigrateFromVersion1 opens a database made before the audit log and
// checks that its keys survive and changes are then audited.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	plain := uuid.NewString()
	hash := keystore.HashKey(plain)
	execRaw(t, path, string(schema))
	setSchemaVersion(t, path, 1)
	execRaw(t, path, `INSERT INTO api_keys (key_hash, prefix, hostname, created_at) VALUES (?, ?, 'web-1', 0)`, hash[:], plain[:8])

	ctx := context.Background()
	s, err := keystore.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open version 1 database: %v", err)
	}
	defer s.Close()
	if got, want := schemaVersion(t, path), migrationCount(t, path); got != want {
		t.Errorf("schema version = %d, want %d", got, want)
	}
	k, err := s.Find(ctx, plain)
	if err != nil || k.ID != 1 || k.Hostname != "web-1" {
		t.Fatalf("Find = %+v, %v; want key 1 for web-1", k, err)
	}
	if got := auditLines(t, s, 0, 0); len(got) != 0 {
		t.Errorf("audit after upgrade = %v, want empty", got)
	}
	if _, err := s.Revoke(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := auditLines(t, s, 0, 0), []auditLine{{1, "unknown", "revoke", ""}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
}

// schemaVersion reads the schema version of the database at addr.
func schemaVersion(t *testing.T, addr string) int {
	t.Helper()
	if keystore.IsPostgres(addr) {
		return int(queryInt(t, addr, `SELECT max(version) FROM schema_version`))
	}
	return int(queryInt(t, addr, `PRAGMA user_version`))
}

// setSchemaVersion sets the schema version of the database at addr.
func setSchemaVersion(t *testing.T, addr string, v int) {
	t.Helper()
	if keystore.IsPostgres(addr) {
		execRaw(t, addr, `INSERT INTO schema_version (version) VALUES (?)`, v)
		return
	}
	execRaw(t, addr, fmt.Sprintf(`PRAGMA user_version = %d`, v))
}

// migrationCount is the number of migrations of the store at addr.
func migrationCount(t *testing.T, addr string) int {
	t.Helper()
	dir := "migrations"
	if keystore.IsPostgres(addr) {
		dir = "migrations/postgres"
	}
	names, err := filepath.Glob(dir + "/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v, %v", names, err)
	}
	return len(names)
}

func keyIDs(keys []keystore.Key) []int64 {
	var ids []int64
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// redacted is addr as the store shows it in messages: without a password.
func redacted(t *testing.T, addr string) string {
	t.Helper()
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	return u.Redacted()
}

// databaseAt makes a SQLite database in a temp dir with the schema of the
// given version, as an earlier metricgate left it, and returns its path.
func databaseAt(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.db")
	names, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(names) < version {
		t.Fatalf("migrations: %v, %v", names, err)
	}
	sort.Strings(names)
	for _, name := range names[:version] {
		schema, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		execRaw(t, path, string(schema))
	}
	setSchemaVersion(t, path, version)
	return path
}

// TestMigrateUsageToNodes opens a database of schema version 3, whose key
// table held the usage, and checks that the usage moved to the node with
// the empty name unchanged, that keys never used got no row, and that new
// usage adds to it.
func TestMigrateUsageToNodes(t *testing.T) {
	path := databaseAt(t, 3)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, host := range []string{"web-1", "web-2"} {
		plain := uuid.NewString()
		hash := keystore.HashKey(plain)
		execRaw(t, path, `INSERT INTO api_keys (key_hash, prefix, hostname, created_at) VALUES (?, ?, ?, 0)`, hash[:], plain[:8], host)
		if i == 0 {
			execRaw(t, path, `UPDATE api_keys SET last_used_at = ?, last_used_addr = '10.0.0.7', request_count = 12, point_count = 3400 WHERE id = 1`, at.UnixNano())
		}
	}
	s := openAt(t, path)
	ctx := context.Background()
	k, err := s.Get(ctx, 1)
	if err != nil || k.Requests != 12 || k.Points != 3400 || !k.LastUsedAt.Equal(at) || k.LastUsedAddr != "10.0.0.7" {
		t.Fatalf("key 1 after the upgrade = %+v, %v; want its usage kept", k, err)
	}
	if n := queryInt(t, path, `SELECT count(*) FROM key_usage`); n != 1 {
		t.Errorf("%d usage rows, want 1 (key 2 was never used)", n)
	}
	if err := s.RecordUsage(ctx, map[int64]keystore.Usage{1: {LastUsedAt: at.Add(time.Hour), LastUsedAddr: "10.0.0.8", Requests: 1, Points: 1}}); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Get(ctx, 1); k.Requests != 13 || k.LastUsedAddr != "10.0.0.8" {
		t.Errorf("after more usage: %d requests, last from %s; want 13 from 10.0.0.8", k.Requests, k.LastUsedAddr)
	}
}
