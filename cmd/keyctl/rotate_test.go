package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewCmdRotate(t *testing.T) {
	key := uuid.NewString()
	tests := []struct {
		name     string
		args     []string
		want     RotateOptions
		wantCode int
		wantErr  string
	}{
		{name: "DefaultGrace", args: []string{"7"}, want: RotateOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}, Grace: 24 * time.Hour}},
		{name: "Grace", args: []string{"7", "--grace", "1h30m"}, want: RotateOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}, Grace: 90 * time.Minute}},
		{name: "ZeroGrace", args: []string{key, "--grace", "0"}, want: RotateOptions{cmdOptions: cmdOptions{Ref: keyRef{Key: key}, Format: formatTable}}},
		{name: "QuietJSON", args: []string{"7", "-q", "-o", "json"}, wantCode: exitUsage, wantErr: "--quiet and --output json cannot be used together"},
		{name: "Quiet", args: []string{"7", "-q"}, want: RotateOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}, Grace: 24 * time.Hour, Quiet: true}},
		{name: "JSON", args: []string{"7", "-o", "json"}, want: RotateOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatJSON}, Grace: 24 * time.Hour}},
		{name: "NegativeGrace", args: []string{"7", "--grace", "-1m"}, wantCode: exitUsage, wantErr: "--grace must be between 0 and 876000h0m0s (100 years), got -1m0s"},
		{name: "GraceOver100Years", args: []string{"7", "--grace", "876001h"}, wantCode: exitUsage, wantErr: "--grace must be between 0 and 876000h0m0s (100 years), got 876001h0m0s"},
		{name: "BadGrace", args: []string{"7", "--grace", "1 day"}, wantCode: exitUsage, wantErr: `invalid argument "1 day" for "--grace" flag`},
		{name: "NoArgument", wantCode: exitUsage, wantErr: "rotate takes one key id, key or name, got 0 arguments"},
		{name: "Neither", args: []string{"Web 1"}, wantCode: exitUsage, wantErr: `"Web 1" is neither a key id, a key nor a key's name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdRotate, append([]string{"rotate"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Ref != tt.want.Ref || got.Grace != tt.want.Grace || got.Quiet != tt.want.Quiet || got.Format != tt.want.Format {
				t.Errorf("got ref %+v, grace %s, quiet %v, format %s; want %+v, %s, %v, %s",
					got.Ref, got.Grace, got.Quiet, got.Format, tt.want.Ref, tt.want.Grace, tt.want.Quiet, tt.want.Format)
			}
		})
	}
}

// showKey returns key id as show -o json prints it.
func showKey(t *testing.T, c *cli, id string) (policyKey, listedKey, *int64) {
	t.Helper()
	r := c.run("show", id, "-o", "json").mustSucceed(t)
	var p policyKey
	var l listedKey
	var extra struct {
		ReplacedBy *int64 `json:"replaced_by"`
	}
	for _, v := range []any{&p, &l, &extra} {
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("show %s: %v", id, err)
		}
	}
	return p, l, extra.ReplacedBy
}

func TestRotateTable(t *testing.T) { onEachBackend(t, testRotateTable) }

func testRotateTable(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "web-1", "--description", "web one", "--scope", "admin",
		"--measurement", "cpu", "--rate", "5", "--burst", "50").mustSucceed(t)
	r := c.run("rotate", "1", "--grace", "1h").mustSucceed(t)
	m := regexp.MustCompile(`^Generated key 2 \(([0-9a-f]{8})…, host web-1\) to replace key 1\.\n\n    (\S+)\n\n` +
		`Store this key now: it will not be shown again\.\nKey 1 keeps working until 2026-03-01T13:00:00Z\.\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want the new key once and when the old one stops", r.stdout)
	}
	if u, err := uuid.Parse(m[2]); err != nil || u.String() != m[2] || m[2][:8] != m[1] {
		t.Errorf("new key %q with prefix %q: want a canonical UUID starting with the prefix", m[2], m[1])
	}

	old, _, replacedBy := showKey(t, c, "1")
	if deref(old.ExpiresAt) != "2026-03-01T13:00:00Z" || old.Status != "active" || replacedBy == nil || *replacedBy != 2 {
		t.Errorf("old key expires %s, status %s, replaced by %v; want 2026-03-01T13:00:00Z, active, 2",
			deref(old.ExpiresAt), old.Status, replacedBy)
	}
	nk, _, _ := showKey(t, c, m[2])
	if want := `id=2 description="web one" scopes=["admin"] measurements=["cpu"] rate=5 burst=50 status=active expires_at=<nil>`; nk.String() != want {
		t.Errorf("new key = %s, want %s", nk, want)
	}

	c.now = testNow.Add(time.Hour)
	assertStatus(t, c, 1, "expired")
	assertStatus(t, c, 2, "active")
}

func TestRotateJSON(t *testing.T) { onEachBackend(t, testRotateJSON) }

func testRotateJSON(t *testing.T, c *cli) {
	_, oldKey := c.generate("10.0.0.7", "")
	r := c.run("rotate", "1", "-o", "json").mustSucceed(t)
	got, key := decodeNewKey(t, r.stdout)
	if key == oldKey {
		t.Fatalf("key = %q, the old key; want a new one", key)
	}
	checkFields(t, "rotated", got, map[string]any{
		"id":                 2.0,
		"prefix":             key[:8],
		"hostname":           "10.0.0.7",
		"status":             "active",
		"created_at":         "2026-03-01T12:00:00Z",
		"expires_at":         nil,
		"old_key_id":         1.0,
		"old_key_expires_at": "2026-03-02T12:00:00Z",
	})
	if strings.Contains(r.stdout, oldKey) {
		t.Errorf("rotate printed the old key's value: %s", r.stdout)
	}
}

func TestRotateQuietZeroGrace(t *testing.T) { onEachBackend(t, testRotateQuietZeroGrace) }

func testRotateQuietZeroGrace(t *testing.T, c *cli) {
	c.generate("web-1", "")
	r := c.run("rotate", "1", "--grace", "0", "-q").mustSucceed(t)
	key := strings.TrimSuffix(r.stdout, "\n")
	if u, err := uuid.Parse(key); err != nil || u.String() != key || r.stdout != key+"\n" {
		t.Fatalf("stdout = %q, want the new key and a newline only", r.stdout)
	}
	assertStatus(t, c, 1, "expired")
	if _, l, _ := showKey(t, c, key); l.ID != 2 || l.Status != "active" {
		t.Errorf("new key = %+v, want key 2, active", l)
	}

	r = c.run("rotate", "2", "--grace", "0").mustSucceed(t)
	if !strings.HasSuffix(r.stdout, "Store this key now: it will not be shown again.\nKey 2 has stopped working.\n") {
		t.Errorf("stdout = %q, want it to say key 2 has stopped", r.stdout)
	}
}

// TestRotateKeepsEarlierExpiry checks that a grace period does not make the
// old key work longer than it would have.
func TestRotateKeepsEarlierExpiry(t *testing.T) { onEachBackend(t, testRotateKeepsEarlierExpiry) }

func testRotateKeepsEarlierExpiry(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "web-1", "--expires-in", "30m").mustSucceed(t)
	r := c.run("rotate", "1").mustSucceed(t)
	if !strings.HasSuffix(r.stdout, "Store this key now: it will not be shown again.\n"+
		"It expires at 2026-03-01T12:30:00Z.\nKey 1 keeps working until 2026-03-01T12:30:00Z.\n") {
		t.Errorf("stdout = %q, want the new key's expiry, and key 1 to keep its 12:30 expiry", r.stdout)
	}
}

func TestRotateErrors(t *testing.T) { onEachBackend(t, testRotateErrors) }

func testRotateErrors(t *testing.T, c *cli) {
	_, k1 := c.generate("web-1", "")
	c.run("revoke", "1", "--yes").mustSucceed(t)
	_, k2 := c.generate("web-1", "")
	c.run("update", "2", "--expires-in", "1h").mustSucceed(t)
	c.now = testNow.Add(2 * time.Hour)
	checkRuns(t, c, append(notFoundCases(c, "rotate"),
		runCase{"Revoked", []string{"rotate", "1"}, exitError, "keyctl: cannot rotate key 1 (" + k1[:8] + "…, host web-1): " +
			"it was revoked at 2026-03-01T12:00:00Z; only an active key can be rotated (generate a new one instead)"},
		runCase{"Expired", []string{"rotate", "2"}, exitError, "keyctl: cannot rotate key 2 (" + k2[:8] + "…, host web-1): " +
			"it expired at 2026-03-01T13:00:00Z; only an active key can be rotated (generate a new one instead)"},
	))
	if r := c.run("list", "--all", "-o", "json").mustSucceed(t); strings.Count(r.stdout, `"id":`) != 2 {
		t.Errorf("list after failed rotations = %s, want the 2 keys only", r.stdout)
	}
}
