package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestNewCmdRevoke(t *testing.T) {
	key := uuid.NewString()
	tests := []struct {
		name     string
		tty      bool
		args     []string
		want     RevokeOptions
		wantCode int
		wantErr  string
	}{
		{name: "IDWithYes", args: []string{"7", "--yes"}, want: RevokeOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}, Yes: true}},
		{name: "KeyWithYes", args: []string{"-y", key, "-o", "json"}, want: RevokeOptions{cmdOptions: cmdOptions{Ref: keyRef{Key: key}, Format: formatJSON}, Yes: true}},
		{name: "HostnameWithYes", args: []string{"--hostname", "web-1", "-y"}, want: RevokeOptions{cmdOptions: cmdOptions{Format: formatTable}, Hostname: "web-1", Yes: true}},
		{name: "TerminalNoYes", tty: true, args: []string{"7"}, want: RevokeOptions{cmdOptions: cmdOptions{Ref: keyRef{ID: 7}, Format: formatTable}}},
		{name: "PipeNoYes", args: []string{"7"}, wantCode: exitUsage, wantErr: "--yes is required when not running interactively"},
		{name: "PipeHostnameNoYes", args: []string{"--hostname", "web-1"}, wantCode: exitUsage, wantErr: "--yes is required"},
		{name: "Nothing", tty: true, wantCode: exitUsage, wantErr: "give a key id, a key, a name or --hostname"},
		{name: "Both", tty: true, args: []string{"7", "--hostname", "web-1"}, wantCode: exitUsage, wantErr: "not both"},
		{name: "TwoIDs", tty: true, args: []string{"7", "8"}, wantCode: exitUsage, wantErr: "got 2 arguments"},
		{name: "Neither", tty: true, args: []string{"Web 1"}, wantCode: exitUsage, wantErr: `"Web 1" is neither a key id, a key nor a key's name`},
		{name: "EmptyHostname", tty: true, args: []string{"--hostname="}, wantCode: exitUsage, wantErr: "--hostname must not be empty"},
		{name: "UnknownFlag", tty: true, args: []string{"7", "--force"}, wantCode: exitUsage, wantErr: "unknown flag: --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(tt.tty), NewCmdRevoke, append([]string{"revoke"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Ref != tt.want.Ref || got.Hostname != tt.want.Hostname || got.Yes != tt.want.Yes || got.Format != tt.want.Format {
				t.Errorf("got ref %+v, hostname %q, yes %v, format %s; want %+v, %q, %v, %s",
					got.Ref, got.Hostname, got.Yes, got.Format, tt.want.Ref, tt.want.Hostname, tt.want.Yes, tt.want.Format)
			}
		})
	}
}

func TestRevokeByID(t *testing.T) { onEachBackend(t, testRevokeByID) }

func testRevokeByID(t *testing.T, c *cli) {
	_, key := c.generate("web-1", "")
	r := c.run("revoke", "1", "--yes").mustSucceed(t)
	if want := "Revoked key 1 (" + key[:8] + "…, host web-1).\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	assertStatus(t, c, 1, "revoked")

	r = c.run("revoke", "1", "--yes").mustSucceed(t)
	if want := "Key 1 (" + key[:8] + "…, host web-1) was already revoked at 2026-03-01T12:00:00Z.\n"; r.stdout != want {
		t.Errorf("revoking again: stdout = %q, want %q", r.stdout, want)
	}
}

func TestRevokeByKey(t *testing.T) { onEachBackend(t, testRevokeByKey) }

func testRevokeByKey(t *testing.T, c *cli) {
	c.generate("web-1", "")
	_, key := c.generate("web-1", "")
	r := c.run("revoke", strings.ToUpper(key), "-y", "-o", "json").mustSucceed(t)
	var got listedKey
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q is not a JSON object: %v", r.stdout, err)
	}
	if got.ID != 2 || got.Status != "revoked" || deref(got.RevokedAt) != "2026-03-01T12:00:00Z" {
		t.Errorf("got %+v, want key 2 revoked at 2026-03-01T12:00:00Z", got)
	}
	if strings.Contains(r.stdout, key) {
		t.Errorf("revoke printed the key's value: %s", r.stdout)
	}
	assertStatus(t, c, 1, "active")
	assertStatus(t, c, 2, "revoked")
}

func TestRevokeHostname(t *testing.T) { onEachBackend(t, testRevokeHostname) }

func testRevokeHostname(t *testing.T, c *cli) {
	_, k1 := c.generate("web-1", "")
	c.generate("web-2", "")
	_, k3 := c.generate("web-1", "")
	r := c.run("revoke", "--hostname", "WEB-1.", "--yes").mustSucceed(t)
	want := "Revoked key 1 (" + k1[:8] + "…, host web-1).\nRevoked key 3 (" + k3[:8] + "…, host web-1).\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	assertStatus(t, c, 1, "revoked")
	assertStatus(t, c, 2, "active")
	assertStatus(t, c, 3, "revoked")

	r = c.run("revoke", "--hostname", "web-1", "--yes")
	if want := "keyctl: host web-1 has no active keys in " + c.db + "\n"; r.code != exitNotFound || r.stderr != want {
		t.Errorf("again: exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitNotFound, want)
	}

	r = c.run("revoke", "--hostname", "web-2", "--yes", "-o", "json").mustSucceed(t)
	var got []listedKey
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 || got[0].ID != 2 || got[0].Status != "revoked" {
		t.Errorf("json = %s (%v), want an array holding key 2, revoked", r.stdout, err)
	}
}

func TestRevokeErrors(t *testing.T) { onEachBackend(t, testRevokeErrors) }

func testRevokeErrors(t *testing.T, c *cli) {
	c.generate("web-1", "")
	checkRuns(t, c, append(notFoundCases(c, "revoke", "-y"),
		runCase{"NoYesWhenPiped", []string{"revoke", "1"}, exitUsage, "keyctl: --yes is required when not running interactively"},
		runCase{"InvalidHostname", []string{"revoke", "--hostname", "web_1", "-y"}, exitError,
			`keyctl: invalid hostname "web_1": want an IP address, a CIDR range or a DNS name`},
	))
	assertStatus(t, c, 1, "active")
}

func TestRevokePrompt(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		wantCode   int
		wantStdout string
		wantStatus string
	}{
		{"Yes", "y\n", exitOK, "Revoked key 1 (%s…, host web-1).\n", "revoked"},
		{"YesWord", " YES \n", exitOK, "Revoked key 1 (%s…, host web-1).\n", "revoked"},
		{"No", "n\n", exitError, "", "active"},
		{"Enter", "\n", exitError, "", "active"},
		{"EndOfInput", "", exitError, "", "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			_, key := c.generate("web-1", "")
			r := c.runTTY(tt.input, "revoke", "1")
			prompt := "Revoke key 1 (" + key[:8] + "…, host web-1)? [y/N] "
			if !strings.HasPrefix(r.stderr, prompt) {
				t.Errorf("stderr = %q, want the prompt %q", r.stderr, prompt)
			}
			wantStdout := tt.wantStdout
			if wantStdout != "" {
				wantStdout = fmt.Sprintf(wantStdout, key[:8])
			}
			if r.code != tt.wantCode || r.stdout != wantStdout {
				t.Errorf("exit %d, stdout %q; want %d, %q", r.code, r.stdout, tt.wantCode, wantStdout)
			}
			if tt.wantCode == exitError && !strings.HasSuffix(r.stderr, "keyctl: nothing revoked\n") {
				t.Errorf("stderr = %q, want it to end with nothing revoked", r.stderr)
			}
			assertStatus(t, c, 1, tt.wantStatus)
		})
	}
}

func TestRevokeHostnamePrompt(t *testing.T) { onEachBackend(t, testRevokeHostnamePrompt) }

func testRevokeHostnamePrompt(t *testing.T, c *cli) {
	_, k1 := c.generate("web-1", "")
	_, k2 := c.generate("web-1", "")
	r := c.runTTY("y\n", "revoke", "--hostname", "web-1").mustSucceedAfterPrompt(t)
	if want := "Revoke all 2 active keys of host web-1: 1 (" + k1[:8] + "…), 2 (" + k2[:8] + "…)? [y/N] "; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	assertStatus(t, c, 1, "revoked")
	assertStatus(t, c, 2, "revoked")
}

// mustSucceedAfterPrompt fails the test unless r is a success; stderr
// holds the prompt.
func (r result) mustSucceedAfterPrompt(t *testing.T) result {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	return r
}

// TestRevokeImportedHostname revokes, by host, keys imported from the
// original database with a hostname keyctl would not accept for a new key.
func TestRevokeImportedHostname(t *testing.T) {
	c := newCLI(t)
	c.sql(`CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, api_key TEXT NOT NULL UNIQUE, hostname TEXT NOT NULL)`)
	k1, k2 := uuid.NewString(), uuid.NewString()
	c.sql(`INSERT INTO api_keys (api_key, hostname) VALUES (?, 'web_1'), (?, 'web-2')`, k1, k2)

	r := c.run("revoke", "--hostname", "web_1", "--yes").mustSucceed(t)
	if want := "Revoked key 1 (" + k1[:8] + "…, host web_1).\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	assertStatus(t, c, 1, "revoked")
	assertStatus(t, c, 2, "active")

	// Now no key has it, the hostname is most likely a typo: say why.
	r = c.run("revoke", "--hostname", "web_1", "--yes")
	if want := "keyctl: invalid hostname \"web_1\": want an IP address, a CIDR range or a DNS name\n"; r.code != exitError || r.stderr != want {
		t.Errorf("again: exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitError, want)
	}
	r = c.run("audit", "1").mustSucceed(t)
	if want := "2026-03-01T12:00:00Z\t" + testActor + "\t1\trevoke\thostname=web_1\n"; r.stdout != want {
		t.Errorf("audit 1 = %q, want %q", r.stdout, want)
	}
}
