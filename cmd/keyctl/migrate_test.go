package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/internal/testenv"
)

func TestNewCmdMigrate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		from, to string
		wantCode int
		wantErr  string
	}{
		{name: "Both", args: []string{"--from", "a.db", "--to", "postgres://db/x"}, from: "a.db", to: "postgres://db/x"},
		{name: "NoTo", args: []string{"--from", "a.db"}, wantCode: exitUsage, wantErr: "migrate needs --from and --to"},
		{name: "NoFrom", args: []string{"--to", "a.db"}, wantCode: exitUsage, wantErr: "migrate needs --from and --to"},
		{name: "Same", args: []string{"--from", "a.db", "--to", "a.db"}, wantCode: exitUsage, wantErr: "--from and --to name the same store"},
		{name: "Argument", args: []string{"a.db"}, wantCode: exitUsage, wantErr: `keyctl migrate takes no arguments, got "a.db"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdMigrate, append([]string{"migrate"}, tt.args...), tt.wantCode, tt.wantErr)
			if got != nil && (got.From != tt.from || got.To != tt.to) {
				t.Errorf("got --from %q --to %q, want %q, %q", got.From, got.To, tt.from, tt.to)
			}
		})
	}
}

// TestMigrate moves keys made with keyctl from a SQLite file to
// PostgreSQL and back with migrate, and checks what each store then
// shows, that running it again copies nothing, and that a conflicting key
// is named with exit code 1.
func TestMigrate(t *testing.T) {
	sqlite := newCLI(t)
	sqlite.generate("web-1", "web one")
	_, key2 := sqlite.generate("10.0.0.0/24", "batch")
	sqlite.run("revoke", "1", "--yes").mustSucceed(t)
	sqlite.sql("INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points) VALUES (2, 'gw-1', ?, '10.0.0.7', 4, 40)",
		testNow.UnixNano())
	pg := newCLIOn(t, testenv.PostgreSQL(t))

	r := sqlite.runArgs([]string{"migrate", "--from", sqlite.db, "--to", pg.db}).mustSucceed(t)
	want := fmt.Sprintf("Copied 2 keys (0 already there), 1 usage rows and 3 audit entries from %s to %s.\n", sqlite.db, pg.db)
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	for _, args := range [][]string{{"list", "--all"}, {"show", "2"}, {"show", key2}, {"audit"}} {
		if got, want := pg.run(args...).mustSucceed(t).stdout, sqlite.run(args...).mustSucceed(t).stdout; got != want {
			t.Errorf("%s on PostgreSQL =\n%s\nwant as on SQLite\n%s", strings.Join(args, " "), got, want)
		}
	}

	r = sqlite.runArgs([]string{"migrate", "--from", sqlite.db, "--to", pg.db, "-o", "json"}).mustSucceed(t)
	var again migrateJSON
	if err := json.Unmarshal([]byte(r.stdout), &again); err != nil || again != (migrateJSON{From: sqlite.db, To: pg.db, KeysSkipped: 2}) {
		t.Errorf("migrate again = %s (%v), want 2 keys skipped and nothing copied", r.stdout, err)
	}

	back := newCLI(t)
	back.runArgs([]string{"migrate", "--from", pg.db, "--to", back.db}).mustSucceed(t)
	if got, want := back.run("list", "--all").mustSucceed(t).stdout, sqlite.run("list", "--all").mustSucceed(t).stdout; got != want {
		t.Errorf("list after migrating back =\n%s\nwant\n%s", got, want)
	}

	other := newCLI(t)
	other.generate("web-9", "")
	r = other.runArgs([]string{"migrate", "--from", pg.db, "--to", other.db})
	wantErr := fmt.Sprintf("keyctl: conflicting key: key 1 (%s…) of %s has another hash in %s; nothing was copied\n", pgPrefix(t, pg, 1), pg.db, other.db)
	if r.code != exitError || r.stderr != wantErr || r.stdout != "" {
		t.Errorf("migrate onto another key 1: exit %d, stderr %q; want 1, %q", r.code, r.stderr, wantErr)
	}
	if out := other.run("list", "--all").mustSucceed(t).stdout; strings.Count(out, "\n") != 1 {
		t.Errorf("after a refused migrate the destination lists\n%s\nwant its one key", out)
	}
}

// pgPrefix returns the prefix of key id in c's store.
func pgPrefix(t *testing.T, c *cli, id int) string {
	t.Helper()
	var k listedKey
	if err := json.Unmarshal([]byte(c.run("show", fmt.Sprint(id), "-o", "json").mustSucceed(t).stdout), &k); err != nil {
		t.Fatal(err)
	}
	return k.Prefix
}

// TestDatabaseErrors checks what keyctl says of a PostgreSQL it cannot
// use: one line naming the server, never the password, exit code 1, and
// no longer than --db-timeout.
func TestDatabaseErrors(t *testing.T) {
	for _, tt := range testenv.UnusablePostgreSQL(t, "300ms") {
		t.Run(tt.Name, func(t *testing.T) {
			c := newCLIOn(t, tt.URL)
			start := time.Now()
			r := c.run("list", "--db-timeout", "300ms")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("keyctl took %v with --db-timeout 300ms", took)
			}
			if want := "keyctl: " + tt.Want + "\n"; r.code != exitError || r.stderr != want || r.stdout != "" {
				t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
			}
			if strings.Contains(r.stderr, tt.Password) {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
		})
	}
}
