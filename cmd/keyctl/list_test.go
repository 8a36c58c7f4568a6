package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewCmdList(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     ListOptions
		wantCode int
		wantErr  string
	}{
		{name: "Defaults", want: ListOptions{cmdOptions: cmdOptions{Format: formatTable}}},
		{name: "Filters", args: []string{"--hostname", "web-1", "--all"}, want: ListOptions{cmdOptions: cmdOptions{Format: formatTable}, Hostname: "web-1", All: true}},
		{name: "Legacy", args: []string{"--legacy"}, want: ListOptions{cmdOptions: cmdOptions{Format: formatTable}, Legacy: true}},
		{name: "ShortFlags", args: []string{"-a", "-o", "json"}, want: ListOptions{cmdOptions: cmdOptions{Format: formatJSON}, All: true}},
		{name: "Expiring", args: []string{"--expiring", "168h"}, want: ListOptions{cmdOptions: cmdOptions{Format: formatTable}, ExpiringWithin: 168 * time.Hour}},
		{name: "UnusedSince", args: []string{"--unused-since", "30m", "--all"}, want: ListOptions{cmdOptions: cmdOptions{Format: formatTable}, UnusedSince: 30 * time.Minute, All: true}},
		{name: "ExpiringZero", args: []string{"--expiring", "0s"}, wantCode: exitUsage, wantErr: "--expiring must be positive, got 0s"},
		{name: "UnusedNegative", args: []string{"--unused-since", "-1h"}, wantCode: exitUsage, wantErr: "--unused-since must be positive, got -1h0m0s"},
		{name: "ExpiringBad", args: []string{"--expiring", "soon"}, wantCode: exitUsage, wantErr: `invalid argument "soon" for "--expiring" flag`},
		{name: "Argument", args: []string{"web-1"}, wantCode: exitUsage, wantErr: `takes no arguments, got "web-1"`},
		{name: "BadOutput", args: []string{"-o", "csv"}, wantCode: exitUsage, wantErr: `want "table" or "json"`},
		{name: "UnknownFlag", args: []string{"--revoked"}, wantCode: exitUsage, wantErr: "unknown flag: --revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(true), NewCmdList, append([]string{"list"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Hostname != tt.want.Hostname || got.All != tt.want.All || got.Legacy != tt.want.Legacy || got.Format != tt.want.Format ||
				got.ExpiringWithin != tt.want.ExpiringWithin || got.UnusedSince != tt.want.UnusedSince {
				t.Errorf("got hostname %q, all %v, format %s, expiring %s, unused %s; want %q, %v, %s, %s, %s",
					got.Hostname, got.All, got.Format, got.ExpiringWithin, got.UnusedSince,
					tt.want.Hostname, tt.want.All, tt.want.Format, tt.want.ExpiringWithin, tt.want.UnusedSince)
			}
		})
	}
}

// listFixture makes keys 1 and 2 for web-1 and key 3 for web-2, and
// revokes key 1. It returns the keys' values by id.
func listFixture(t *testing.T, c *cli) map[int64]string {
	t.Helper()
	keys := map[int64]string{}
	for _, h := range []struct{ host, desc string }{{"web-1", "old"}, {"web-1", "new"}, {"web-2", ""}} {
		id, key := c.generate(h.host, h.desc)
		keys[id] = key
	}
	c.run("revoke", "1", "--yes").mustSucceed(t)
	return keys
}

func TestListJSON(t *testing.T) { onEachBackend(t, testListJSON) }

func testListJSON(t *testing.T, c *cli) {
	keys := listFixture(t, c)
	tests := []struct {
		name    string
		args    []string
		wantIDs []int64
	}{
		{"Active", nil, []int64{2, 3}},
		{"All", []string{"--all"}, []int64{1, 2, 3}},
		{"Hostname", []string{"--hostname", "WEB-1"}, []int64{2}},
		{"HostnameAll", []string{"--hostname", "web-1", "-a"}, []int64{1, 2}},
		{"NoMatch", []string{"--hostname", "web-9"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(append([]string{"list", "-o", "json"}, tt.args...)...).mustSucceed(t)
			var got []listedKey
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got == nil {
				t.Fatalf("stdout %q is not a JSON array: %v", r.stdout, err)
			}
			var ids []int64
			for _, k := range got {
				ids = append(ids, k.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
			for _, k := range got {
				if k.Prefix != keys[k.ID][:8] || k.CreatedAt != "2026-03-01T12:00:00Z" || k.LastUsedAt != nil ||
					len(k.Scopes) != 1 || k.Scopes[0] != "submit" {
					t.Errorf("key %d = %+v, want prefix %s, created 2026-03-01T12:00:00Z, never used, scopes [submit]",
						k.ID, k, keys[k.ID][:8])
				}
				wantStatus, wantRevoked := "active", "<nil>"
				if k.ID == 1 {
					wantStatus, wantRevoked = "revoked", "2026-03-01T12:00:00Z"
				}
				if gotRevoked := deref(k.RevokedAt); k.Status != wantStatus || gotRevoked != wantRevoked {
					t.Errorf("key %d status %s, revoked_at %s; want %s, %s", k.ID, k.Status, gotRevoked, wantStatus, wantRevoked)
				}
			}
		})
	}
	r := c.run("list", "-o", "json", "--hostname", "web-9").mustSucceed(t)
	if r.stdout != "[]\n" {
		t.Errorf("empty list = %q, want []", r.stdout)
	}
}

func TestListTable(t *testing.T) { onEachBackend(t, testListTable) }

func testListTable(t *testing.T, c *cli) {
	keys := listFixture(t, c)
	p1, p2, p3 := keys[1][:8], keys[2][:8], keys[3][:8]

	t.Run("Terminal", func(t *testing.T) {
		r := c.runTTY("", "list", "--all").mustSucceed(t)
		want := "" +
			"ID  PREFIX    NAME  HOSTNAME  DESCRIPTION  STATUS   CREATED           EXPIRES  LAST USED\n" +
			"1   " + p1 + "  -     web-1     old          revoked  2026-03-01 12:00  never    never\n" +
			"2   " + p2 + "  -     web-1     new          active   2026-03-01 12:00  never    never\n" +
			"3   " + p3 + "  -     web-2                  active   2026-03-01 12:00  never    never\n"
		if r.stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, want)
		}
	})
	t.Run("Pipe", func(t *testing.T) {
		r := c.run("list").mustSucceed(t)
		want := "" +
			"2\t" + p2 + "\tweb-1\tnew\tactive\t2026-03-01T12:00:00Z\t\t\t\t\t\n" +
			"3\t" + p3 + "\tweb-2\t\tactive\t2026-03-01T12:00:00Z\t\t\t\t\t\n"
		if r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
	})
	t.Run("EmptyTerminal", func(t *testing.T) {
		r := c.runTTY("", "list", "--hostname", "web-9")
		if r.code != exitOK || r.stdout != "" || r.stderr != "No active keys for host web-9.\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0, nothing, a note on stderr", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("EmptyPipe", func(t *testing.T) {
		r := c.run("list", "--hostname", "web-9").mustSucceed(t)
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	})
}

// TestListNeverShowsKeys checks that no form of list output contains a
// key's value, or any part of it beyond the prefix.
func TestListNeverShowsKeys(t *testing.T) { onEachBackend(t, testListNeverShowsKeys) }

func testListNeverShowsKeys(t *testing.T, c *cli) {
	keys := listFixture(t, c)
	outputs := map[string]string{
		"json":     c.run("list", "--all", "-o", "json").mustSucceed(t).stdout,
		"pipe":     c.run("list", "--all").mustSucceed(t).stdout,
		"terminal": c.runTTY("", "list", "--all").mustSucceed(t).stdout,
	}
	for name, out := range outputs {
		for id, key := range keys {
			if strings.Contains(out, key) || strings.Contains(out, key[9:]) {
				t.Errorf("%s output contains key %d's value:\n%s", name, id, out)
			}
		}
		if strings.Contains(out, `"key"`) || strings.Contains(out, "hash") {
			t.Errorf("%s output has a key or hash field:\n%s", name, out)
		}
	}
}

func TestListWithoutDatabase(t *testing.T) {
	c := newCLI(t)
	r := c.run("list")
	if want := "keyctl: no key store at " + c.db + " (set --db or KEYSTORE_DB)\n"; r.code != exitError || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitError, want)
	}
}

// listIDs runs list with args and -o json and returns the ids it printed.
func listIDs(t *testing.T, c *cli, args ...string) string {
	t.Helper()
	r := c.run(append([]string{"list", "-o", "json"}, args...)...).mustSucceed(t)
	var got []listedKey
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("list %v: %v", args, err)
	}
	ids := []int64{}
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	return fmt.Sprint(ids)
}

func TestListExpiring(t *testing.T) { onEachBackend(t, testListExpiring) }

func testListExpiring(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "web-1", "--expires-in", "1h").mustSucceed(t)
	c.run("generate", "--hostname", "web-2", "--expires-in", "3h").mustSucceed(t)
	c.run("generate", "--hostname", "web-3").mustSucceed(t)
	tests := []struct {
		name    string
		advance time.Duration
		args    []string
		want    string
	}{
		{"Within2h", 0, []string{"--expiring", "2h"}, "[1]"},
		{"Within3h", 0, []string{"--expiring", "3h"}, "[1 2]"},
		{"Within30m", 0, []string{"--expiring", "30m"}, "[]"},
		{"AfterOneExpired", 2 * time.Hour, []string{"--expiring", "2h"}, "[2]"},
		{"AfterOneExpiredAll", 2 * time.Hour, []string{"--expiring", "2h", "--all"}, "[1 2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.now = testNow.Add(tt.advance)
			if got := listIDs(t, c, tt.args...); got != tt.want {
				t.Errorf("list %v after %s = %s, want %s", tt.args, tt.advance, got, tt.want)
			}
		})
	}
	c.now = testNow
	r := c.runTTY("", "list", "--expiring", "2h").mustSucceed(t)
	p1 := strings.Fields(strings.Split(r.stdout, "\n")[1])[1]
	want := "" +
		"ID  PREFIX    NAME  HOSTNAME  DESCRIPTION  STATUS  CREATED           EXPIRES           LAST USED\n" +
		"1   " + p1 + "  -     web-1                  active  2026-03-01 12:00  2026-03-01 13:00  never\n"
	if r.stdout != want {
		t.Errorf("list --expiring 2h =\n%s\nwant\n%s", r.stdout, want)
	}
	r = c.runTTY("", "list", "--expiring", "1m", "--hostname", "web-9")
	if r.code != exitOK || r.stdout != "" || r.stderr != "No active keys for host web-9 expiring within 1m0s.\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, nothing, a note naming both filters", r.code, r.stdout, r.stderr)
	}
}

func TestListUnusedSince(t *testing.T) { onEachBackend(t, testListUnusedSince) }

func testListUnusedSince(t *testing.T, c *cli) {
	_, k1 := c.generate("web-1", "")
	_, k2 := c.generate("web-2", "")
	c.now = testNow.Add(10 * 24 * time.Hour)
	c.generate("web-3", "")
	// Key 2 was used a day ago.
	c.sql("INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr) VALUES (2, 'gw-1', ?, '10.0.0.2')", c.now.Add(-24*time.Hour).UnixNano())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--unused-since", "48h"}, "[1]"},
		{[]string{"--unused-since", "12h"}, "[1 2]"},
		{[]string{"--unused-since", "240h"}, "[1]"},
		{[]string{"--unused-since", "241h"}, "[]"},
	}
	for _, tt := range tests {
		if got := listIDs(t, c, tt.args...); got != tt.want {
			t.Errorf("list %v = %s, want %s", tt.args, got, tt.want)
		}
	}
	r := c.runTTY("", "list", "--unused-since", "12h").mustSucceed(t)
	want := "" +
		"ID  PREFIX    NAME  HOSTNAME  DESCRIPTION  STATUS  CREATED           EXPIRES  LAST USED\n" +
		"1   " + k1[:8] + "  -     web-1                  active  2026-03-01 12:00  never    never\n" +
		"2   " + k2[:8] + "  -     web-2                  active  2026-03-01 12:00  never    2026-03-10 12:00\n"
	if r.stdout != want {
		t.Errorf("list --unused-since 12h =\n%s\nwant\n%s", r.stdout, want)
	}
}

// TestListLegacy upgrades a database of the original setup holding a key
// that is not a UUID and one that is, and checks that --legacy lists the
// first only, that no output shows any of its value, and that the table
// marks it.
func TestListLegacy(t *testing.T) {
	c := newCLI(t)
	legacy, good := "pw-web-1", uuid.NewString()
	c.sql(`CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, api_key TEXT NOT NULL UNIQUE, hostname TEXT NOT NULL)`)
	c.sql(`INSERT INTO api_keys (api_key, hostname) VALUES (?, 'web-1'), (?, 'web-2')`, legacy, good)
	if got := listIDs(t, c, "--legacy"); got != "[1]" {
		t.Errorf("list --legacy ids = %s, want [1]", got)
	}
	if got := listIDs(t, c); got != "[1 2]" {
		t.Errorf("list ids = %s, want [1 2]", got)
	}
	r := c.runTTY("", "list", "--legacy").mustSucceed(t)
	// The import is stamped with the real time, so the row is checked up
	// to its CREATED column.
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if want := "1   legacy  -     web-1     imported from the original database  active  "; len(lines) != 2 || !strings.HasPrefix(lines[1], want) {
		t.Errorf("list --legacy on a terminal =\n%s\nwant a header and a row starting %q", r.stdout, want)
	}
	for _, out := range []string{r.stdout, c.run("list").mustSucceed(t).stdout, c.run("list", "-o", "json").mustSucceed(t).stdout,
		c.run("show", "1").mustSucceed(t).stdout} {
		if strings.Contains(out, legacy[:5]) {
			t.Errorf("output shows part of the legacy key:\n%s", out)
		}
	}
	r = c.runTTY("", "list", "--legacy", "--hostname", "web-2")
	if r.stderr != "No active keys imported with a value that is not a UUID for host web-2.\n" {
		t.Errorf("an empty --legacy list says %q", r.stderr)
	}
}
