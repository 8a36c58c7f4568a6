package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewCmdAudit(t *testing.T) {
	key := uuid.NewString()
	tests := []struct {
		name     string
		args     []string
		want     AuditOptions
		wantCode int
		wantErr  string
	}{
		{name: "All", want: AuditOptions{cmdOptions: cmdOptions{Format: formatTable}, Limit: 50}},
		{name: "ID", args: []string{"7"}, want: AuditOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}, Limit: 50}},
		{name: "KeyLimit", args: []string{key, "--limit", "5", "-o", "json"}, want: AuditOptions{cmdOptions: cmdOptions{Ref: keyRef{Key: key}, Format: formatJSON}, Limit: 5}},
		{name: "NoLimit", args: []string{"-L", "0"}, want: AuditOptions{cmdOptions: cmdOptions{Format: formatTable}}},
		{name: "NegativeLimit", args: []string{"--limit", "-1"}, wantCode: exitUsage, wantErr: "--limit must be 0 (no limit) or more, got -1"},
		{name: "TwoArguments", args: []string{"1", "2"}, wantCode: exitUsage, wantErr: "audit takes at most one key id, key or name, got 2 arguments"},
		{name: "Neither", args: []string{"Web 1"}, wantCode: exitUsage, wantErr: `"Web 1" is neither a key id, a key nor a key's name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdAudit, append([]string{"audit"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Ref != tt.want.Ref || got.Limit != tt.want.Limit || got.Format != tt.want.Format {
				t.Errorf("got ref %+v, limit %d, format %s; want %+v, %d, %s",
					got.Ref, got.Limit, got.Format, tt.want.Ref, tt.want.Limit, tt.want.Format)
			}
		})
	}
}

// auditFixture generates key 1, updates it, rotates it (making key 2) an
// hour later, and revokes key 2 another hour on. It returns the keys'
// values.
func auditFixture(t *testing.T, c *cli) []string {
	t.Helper()
	_, k1 := c.generate("web-1", "web one")
	c.run("update", "1", "--expires-at", "2027-01-01T00:00:00Z", "--scope", "submit,admin").mustSucceed(t)
	c.now = testNow.Add(time.Hour)
	r := c.run("rotate", "1", "--grace", "24h", "-q").mustSucceed(t)
	k2 := strings.TrimSpace(r.stdout)
	c.now = testNow.Add(2 * time.Hour)
	c.run("revoke", "2", "--yes").mustSucceed(t)
	return []string{k1, k2}
}

func TestAuditTable(t *testing.T) { onEachBackend(t, testAuditTable) }

func testAuditTable(t *testing.T, c *cli) {
	auditFixture(t, c)
	t.Run("Terminal", func(t *testing.T) {
		r := c.runTTY("", "audit").mustSucceed(t)
		want := "" +
			"AT                    ACTOR                   KEY  ACTION    DETAIL\n" +
			"2026-03-01T14:00:00Z  keyctl:tester@testhost  2    revoke    \n" +
			"2026-03-01T13:00:00Z  keyctl:tester@testhost  2    generate  rotated from 1\n" +
			"2026-03-01T13:00:00Z  keyctl:tester@testhost  1    rotate    replaced_by=2 grace=24h0m0s\n" +
			"2026-03-01T12:00:00Z  keyctl:tester@testhost  1    update    expires_at=2027-01-01T00:00:00Z scopes=submit,admin\n" +
			`2026-03-01T12:00:00Z  keyctl:tester@testhost  1    generate  hostname=web-1 scopes=submit description="web one"` + "\n"
		if r.stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, want)
		}
	})
	t.Run("KeyAndLimit", func(t *testing.T) {
		r := c.runTTY("", "audit", "1", "--limit", "1").mustSucceed(t)
		want := "" +
			"AT                    ACTOR                   KEY  ACTION  DETAIL\n" +
			"2026-03-01T13:00:00Z  keyctl:tester@testhost  1    rotate  replaced_by=2 grace=24h0m0s\n"
		if r.stdout != want {
			t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, want)
		}
	})
	t.Run("Pipe", func(t *testing.T) {
		r := c.run("audit", "2").mustSucceed(t)
		want := "" +
			"2026-03-01T14:00:00Z\tkeyctl:tester@testhost\t2\trevoke\t\n" +
			"2026-03-01T13:00:00Z\tkeyctl:tester@testhost\t2\tgenerate\trotated from 1\n"
		if r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
	})
}

func TestAuditJSON(t *testing.T) { onEachBackend(t, testAuditJSON) }

func testAuditJSON(t *testing.T, c *cli) {
	auditFixture(t, c)
	r := c.run("audit", "-o", "json", "--limit", "2").mustSucceed(t)
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q is not a JSON array: %v", r.stdout, err)
	}
	want := []map[string]any{
		{"id": 5.0, "at": "2026-03-01T14:00:00Z", "actor": testActor, "key_id": 2.0, "action": "revoke", "detail": ""},
		{"id": 4.0, "at": "2026-03-01T13:00:00Z", "actor": testActor, "key_id": 2.0, "action": "generate", "detail": "rotated from 1"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %s", len(got), len(want), r.stdout)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Errorf("entry %d has fields %v, want %v", i, got[i], want[i])
		}
		checkFields(t, fmt.Sprint("entry ", i), got[i], want[i])
	}
}

// TestAuditNeverShowsKeys checks that no form of audit output contains a
// key's value or its prefix.
func TestAuditNeverShowsKeys(t *testing.T) { onEachBackend(t, testAuditNeverShowsKeys) }

func testAuditNeverShowsKeys(t *testing.T, c *cli) {
	keys := auditFixture(t, c)
	outputs := map[string]string{
		"json":     c.run("audit", "-o", "json").mustSucceed(t).stdout,
		"pipe":     c.run("audit").mustSucceed(t).stdout,
		"terminal": c.runTTY("", "audit").mustSucceed(t).stdout,
	}
	for name, out := range outputs {
		for _, key := range keys {
			for _, part := range []string{key, key[:8], key[9:]} {
				if strings.Contains(out, part) {
					t.Errorf("%s output contains %q, part of a key:\n%s", name, part, out)
				}
			}
		}
	}
}

func TestAuditEmptyAndErrors(t *testing.T) {
	c := newCLI(t)
	if r := c.run("audit"); r.code != exitError || !strings.Contains(r.stderr, "no key store at "+c.db) {
		t.Errorf("audit without a database: exit %d, stderr %q; want 1, no key store", r.code, r.stderr)
	}
	c = newCLI(t)
	c.generate("web-1", "")
	c.sql("DELETE FROM audit_log")
	if r := c.runTTY("", "audit"); r.code != exitOK || r.stdout != "" || r.stderr != "No audit entries.\n" {
		t.Errorf("empty log: exit %d, stdout %q, stderr %q; want 0, nothing, a note", r.code, r.stdout, r.stderr)
	}
	if r := c.runTTY("", "audit", "1"); r.code != exitOK || r.stdout != "" || r.stderr != "No audit entries for key 1.\n" {
		t.Errorf("empty log for key 1: exit %d, stdout %q, stderr %q; want 0, nothing, a note", r.code, r.stdout, r.stderr)
	}
	if r := c.run("audit", "-o", "json").mustSucceed(t); r.stdout != "[]\n" {
		t.Errorf("empty log in JSON = %q, want []", r.stdout)
	}
	checkRuns(t, c, notFoundCases(c, "audit"))
}
