package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metricgate/metricgate/pkg/keyfile"
	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestRootUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string // first line
	}{
		{"BadOutput", []string{"list", "-o", "xml"}, `keyctl: invalid argument "xml" for "-o, --output" flag: want "table" or "json"`},
		{"BadOutputBeforeVerb", []string{"--output=yaml", "version"}, `keyctl: invalid argument "yaml" for "-o, --output" flag: want "table" or "json"`},
		{"UnknownFlag", []string{"list", "--bogus"}, `keyctl: unknown flag: --bogus`},
		{"MissingFlagValue", []string{"generate", "--hostname"}, `keyctl: flag needs an argument: --hostname`},
		{"UnknownCommand", []string{"genrate"}, `keyctl: unknown command "genrate"; did you mean "generate"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			r := c.run(tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit code = %d, want %d", r.code, exitUsage)
			}
			first, rest, _ := strings.Cut(r.stderr, "\n")
			if first != tt.wantStderr {
				t.Errorf("stderr first line = %q, want %q", first, tt.wantStderr)
			}
			if !strings.HasPrefix(rest, "\nUsage:\n") {
				t.Errorf("stderr after the error = %q, want the usage", rest)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestRootHelp(t *testing.T) {
	r := newCLI(t).run()
	if r.code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"Exit codes:\n  0  success\n  1  error", "  2  usage error", "  3  not found", "KEYSTORE_DB", "completion"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help does not contain %q:\n%s", want, r.stdout)
		}
	}
}

func TestCompletion(t *testing.T) {
	r := newCLI(t).run("completion", "bash")
	if r.code != exitOK || !strings.Contains(r.stdout, "__start_keyctl") {
		t.Errorf("completion bash = exit %d, %d bytes; want exit 0 and a bash script; stderr %q", r.code, len(r.stdout), r.stderr)
	}
	r = newCLI(t).runArgs([]string{"__complete", "list", "-o", ""})
	if !strings.HasPrefix(r.stdout, "table\njson\n") {
		t.Errorf("completions for -o = %q, want table and json", r.stdout)
	}
}

// TestDatabaseFromEnvironment checks that KEYSTORE_DB chooses the
// database when --db is not given, and that --db overrides it.
func TestDatabaseFromEnvironment(t *testing.T) {
	c := newCLI(t)
	envDB := filepath.Join(t.TempDir(), "env.db")
	c.env["KEYSTORE_DB"] = envDB
	r := c.runArgs([]string{"generate", "--hostname", "web-1", "-q"})
	if r.code != exitOK {
		t.Fatalf("generate: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(envDB); err != nil {
		t.Errorf("KEYSTORE_DB database: %v", err)
	}
	if _, err := os.Stat(c.db); err == nil {
		t.Errorf("--db default %s was created, want only KEYSTORE_DB's", c.db)
	}
	if got := c.runArgs([]string{"list", "-o", "json", "--db", c.db}); got.code != exitError || !strings.Contains(got.stderr, "no key store at "+c.db) {
		t.Errorf("list --db missing file = exit %d, stderr %q; want exit 1 and no key store", got.code, got.stderr)
	}
}

// TestRun runs the program as main does, with streams that are not
// terminals.
func TestRun(t *testing.T) {
	var stdout, stderr bytes.Buffer
	db := filepath.Join(t.TempDir(), "keys.db")
	getenv := func(k string) string {
		if k == "KEYSTORE_DB" {
			return db
		}
		return ""
	}
	code := run(context.Background(), []string{"generate", "--hostname", "127.0.0.1"}, getenv, strings.NewReader(""), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Store this key now: it will not be shown again.") {
		t.Errorf("stdout = %q, want the key and a warning", stdout.String())
	}
	stdout.Reset()
	code = run(context.Background(), []string{"revoke", "1"}, getenv, strings.NewReader("y\n"), &stdout, &stderr)
	if code != exitUsage {
		t.Errorf("revoke without --yes and a pipe for stdin: exit code = %d, want %d", code, exitUsage)
	}
}

func TestActorName(t *testing.T) {
	fail := func() (string, error) { return "", errors.New("no") }
	fixed := func(s string) func() (string, error) { return func() (string, error) { return s, nil } }
	env := func(user string) func(string) string {
		return func(k string) string {
			if k == "USER" {
				return user
			}
			return ""
		}
	}
	tests := []struct {
		name             string
		username, hostnm func() (string, error)
		getenv           func(string) string
		want             string
	}{
		{"System", fixed("alice"), fixed("admin-1"), env("bob"), "keyctl:alice@admin-1"},
		{"UserFromEnv", fail, fixed("admin-1"), env("bob"), "keyctl:bob@admin-1"},
		{"EmptyUserFromEnv", fixed(""), fixed("admin-1"), env("bob"), "keyctl:bob@admin-1"},
		{"NoUser", fail, fixed("admin-1"), env(""), "keyctl:unknown@admin-1"},
		{"NoHost", fixed("alice"), fail, env(""), "keyctl:alice@unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := actorName(tt.username, tt.hostnm, tt.getenv); got != tt.want {
				t.Errorf("actorName = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunRecordsActor checks that run, as main calls it, records who ran
// keyctl in the audit log.
func TestRunRecordsActor(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	getenv := func(k string) string {
		if k == "KEYSTORE_DB" {
			return db
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"generate", "--hostname", "web-1", "-q"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("generate: exit %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"audit", "-o", "json"}, getenv, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("audit: exit %d, stderr %q", code, stderr.String())
	}
	var got []struct{ Actor string }
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("audit = %s (%v), want one entry", stdout.String(), err)
	}
	want := actorName(currentUsername, os.Hostname, getenv)
	if got[0].Actor != want || !strings.HasPrefix(want, "keyctl:") || !strings.Contains(want, "@") || strings.Contains(want, "unknown@") {
		t.Errorf("actor = %q, want %q, of the form keyctl:USER@HOST", got[0].Actor, want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{io.EOF, exitError},
		{usageErrorf("bad"), exitUsage},
		{notFoundErrorf("gone"), exitNotFound},
		{errDeclined, exitError},
		{fmt.Errorf("apply: %w", keystore.ErrChanged), exitChanged},
		{fmt.Errorf("generate: %w", keystore.ErrNameTaken), exitError},
		{inputErrorf("hosts.txt:2: bad"), exitUsage},
		{fmt.Errorf("read: %w", keyfile.ErrInvalid), exitUsage},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	// Bad input from a file is not a mistake on the command line: its
	// usage would not help.
	for err, want := range map[error]bool{usageErrorf("bad"): true, inputErrorf("bad"): false,
		fmt.Errorf("read: %w", keyfile.ErrInvalid): false, fmt.Errorf("%w", keystore.ErrInvalidPolicy): true} {
		if got := printsUsage(err); got != want {
			t.Errorf("printsUsage(%v) = %v, want %v", err, got, want)
		}
	}
}
