package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// testNow is the clock in every end-to-end test, so times in the output
// are exact, unless a test moves its cli's clock.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testActor is who every end-to-end test runs keyctl as.
const testActor = "keyctl:tester@testhost"

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
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// cli runs keyctl end to end on a database of its own, with a clock the
// test may move.
type cli struct {
	t   *testing.T
	db  string
	env map[string]string
	now time.Time
}

// result is what one keyctl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, db: filepath.Join(t.TempDir(), "keys.db"), env: map[string]string{}, now: testNow}
}

// run runs keyctl with --db and args, with no terminal and empty stdin.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runArgs(append([]string{"--db", c.db}, args...))
}

// runTTY runs keyctl with --db and args as if stdin and stdout were a
// terminal, on which the user types input.
func (c *cli) runTTY(input string, args ...string) result {
	c.t.Helper()
	return c.runIO(&IOStreams{In: strings.NewReader(input), InTTY: true, OutTTY: true}, append([]string{"--db", c.db}, args...))
}

// runArgs runs keyctl with exactly args.
func (c *cli) runArgs(args []string) result {
	c.t.Helper()
	return c.runIO(&IOStreams{In: strings.NewReader("")}, args)
}

func (c *cli) runIO(ios *IOStreams, args []string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	ios.Out, ios.ErrOut = &stdout, &stderr
	f := &Factory{IO: ios, Now: func() time.Time { return c.now }, Getenv: func(k string) string { return c.env[k] }, Actor: testActor}
	code := execute(context.Background(), f, args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// generate makes a key with keyctl and returns its id and value.
func (c *cli) generate(hostname, description string) (int64, string) {
	c.t.Helper()
	r := c.run("generate", "--hostname", hostname, "--description", description, "-o", "json")
	if r.code != exitOK {
		c.t.Fatalf("generate --hostname %s: exit %d, stderr %q", hostname, r.code, r.stderr)
	}
	var k struct {
		ID  int64  `json:"id"`
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		c.t.Fatalf("generate output %q: %v", r.stdout, err)
	}
	if _, err := uuid.Parse(k.Key); err != nil || k.ID == 0 {
		c.t.Fatalf("generate printed id %d, key %q; want an id and a UUID", k.ID, k.Key)
	}
	return k.ID, k.Key
}

// sql runs a statement on the cli's database directly, to set up what
// keyctl cannot, such as usage the apiserver records.
func (c *cli) sql(query string, args ...any) {
	c.t.Helper()
	db, err := sql.Open("sqlite", c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		c.t.Fatalf("%s: %v", query, err)
	}
}

// mustSucceed fails the test unless r is a success with nothing on stderr.
func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and no error", r.code, r.stderr)
	}
	return r
}

// parseCmd runs cmd below a root with keyctl's global flags, with f's
// streams, and returns the options its runF received (nil if it was not
// called) and the error.
func parseCmd[T any](t *testing.T, f *Factory, newCmd func(*Factory, func(*T) error) *cobra.Command, args []string) (*T, error) {
	t.Helper()
	var got *T
	cmd := newCmd(f, func(o *T) error { got = o; return nil })
	root := &cobra.Command{Use: "keyctl", SilenceErrors: true, SilenceUsage: true}
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetFlagErrorFunc(flagError)
	addGlobalFlags(root, f)
	root.AddCommand(cmd)
	if args == nil {
		args = []string{}
	}
	root.SetArgs(args)
	_, err := root.ExecuteC()
	return got, err
}

// testFactory is a Factory for parsing tests; stdin is a terminal if tty.
func testFactory(tty bool) *Factory {
	return &Factory{
		IO:     &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard, InTTY: tty, OutTTY: tty},
		Now:    func() time.Time { return testNow },
		Getenv: func(string) string { return "" },
	}
}

// checkErr fails unless err has the exit code want and, when want is not
// 0, contains msg.
func checkErr(t *testing.T, err error, want int, msg string) {
	t.Helper()
	if got := exitCode(err); got != want {
		t.Fatalf("error %v has exit code %d, want %d", err, got, want)
	}
	if err != nil && !strings.Contains(err.Error(), msg) {
		t.Errorf("error = %q, want it to contain %q", err, msg)
	}
}
