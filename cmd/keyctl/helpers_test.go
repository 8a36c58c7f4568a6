package main

// Helpers that the tests of keyctl's verbs share: an end-to-end runner on
// a database of its own, the parsing of one verb's flags, and the JSON
// views of a key the tests decode.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for cli.sql
	"github.com/spf13/cobra"

	"github.com/metricgate/metricgate/internal/testenv"
	"github.com/metricgate/metricgate/pkg/keystore"
)

// testNow is the clock in every end-to-end test, so times in the output
// are exact, unless a test moves its cli's clock.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testActor is who every end-to-end test runs keyctl as.
const testActor = "keyctl:tester@testhost"

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

// newCLI returns a cli on a SQLite file of its own, not yet made.
func newCLI(t *testing.T) *cli {
	t.Helper()
	return newCLIOn(t, filepath.Join(t.TempDir(), "keys.db"))
}

// newCLIOn returns a cli on the store at db.
func newCLIOn(t *testing.T, db string) *cli {
	t.Helper()
	return &cli{t: t, db: db, env: map[string]string{}, now: testNow}
}

// backends are the key stores the end-to-end tests of the verbs run on:
// each gives the address of a fresh, empty one.
var backends = []struct {
	name  string
	newDB func(t *testing.T) string
}{
	{"SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "keys.db") }},
	{"PostgreSQL", func(t *testing.T) string { return testenv.PostgreSQL(t) }},
}

// onEachBackend runs test as a subtest on each backend, with a cli on a
// fresh store of it.
func onEachBackend(t *testing.T, test func(t *testing.T, c *cli)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, newCLIOn(t, b.newDB(t))) })
	}
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

// sql runs a statement, written with SQLite's ? parameters, on the cli's
// database directly, to set up what keyctl cannot, such as usage the
// apiserver records.
func (c *cli) sql(query string, args ...any) {
	c.t.Helper()
	driver := "sqlite"
	if keystore.IsPostgres(c.db) {
		driver = "pgx"
		for n := 1; strings.Contains(query, "?"); n++ {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", n), 1)
		}
	}
	db, err := sql.Open(driver, c.db)
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

// parseVerb parses args, a verb and what follows it, with the command
// newCmd makes, as parseCmd does, and checks the error as checkErr does.
// It returns the options the verb would run with, or nil when it was to
// fail, having checked that it did not run.
func parseVerb[T any](t *testing.T, f *Factory, newCmd func(*Factory, func(*T) error) *cobra.Command, args []string,
	wantCode int, wantErr string) *T {
	t.Helper()
	got, err := parseCmd(t, f, newCmd, args)
	checkErr(t, err, wantCode, wantErr)
	switch {
	case wantCode != exitOK && got != nil:
		t.Errorf("%s ran with %+v, want a usage error first", args[0], *got)
		return nil
	case wantCode == exitOK && got == nil:
		t.Fatalf("%s did not run", args[0])
	}
	return got
}

// runCase is a keyctl run that must fail with wantCode, print nothing on
// stdout and wantStderr as the first line of stderr, followed by the usage
// after a usage error and by nothing after any other.
type runCase struct {
	name       string
	args       []string
	wantCode   int
	wantStderr string
}

// checkRuns runs each case on c as a subtest.
func checkRuns(t *testing.T, c *cli, cases []runCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(tt.args...)
			first, rest, _ := strings.Cut(r.stderr, "\n")
			if r.code != tt.wantCode || first != tt.wantStderr || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, nothing, %q", r.code, r.stdout, first, tt.wantCode, tt.wantStderr)
			}
			if usage := strings.HasPrefix(rest, "\nUsage:"); usage != (tt.wantCode == exitUsage) || !usage && rest != "" {
				t.Errorf("stderr after the error = %q, want the usage only after a usage error", rest)
			}
		})
	}
}

// notFoundCases are the runs of verb on a key id and on a key that no key
// in c's database has, with extra arguments after them: each exits 3 and
// names the database.
func notFoundCases(c *cli, verb string, extra ...string) []runCase {
	unknown := uuid.NewString()
	return []runCase{
		{"UnknownID", append([]string{verb, "42"}, extra...), exitNotFound, "keyctl: no key has id 42 in " + c.db},
		{"UnknownKey", append([]string{verb, unknown}, extra...), exitNotFound, "keyctl: no key " + unknown[:8] + "… in " + c.db},
	}
}

// decodeNewKey decodes what generate or rotate printed with -o json and
// fails unless it holds a key in canonical UUID form. It returns the
// object and the key.
func decodeNewKey(t *testing.T, stdout string) (map[string]any, string) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout %q is not a JSON object: %v", stdout, err)
	}
	key, _ := got["key"].(string)
	if u, err := uuid.Parse(key); err != nil || u.String() != key {
		t.Fatalf("key = %q, want a UUID", key)
	}
	return got, key
}

// checkFields fails for each field of want that got, what the test calls
// what, lacks or holds another value in.
func checkFields(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for field, w := range want {
		if v, ok := got[field]; !ok || v != w {
			t.Errorf("%s %s = %#v (present %v), want %#v", what, field, v, ok, w)
		}
	}
}

// listedKey is what list -o json shows of a key, with the fields a key's
// value could leak through.
type listedKey struct {
	ID          int64    `json:"id"`
	Prefix      string   `json:"prefix"`
	Hostname    string   `json:"hostname"`
	Description string   `json:"description"`
	Scopes      []string `json:"scopes"`
	Status      string   `json:"status"`
	CreatedAt   string   `json:"created_at"`
	RevokedAt   *string  `json:"revoked_at"`
	LastUsedAt  *string  `json:"last_used_at"`
	Requests    int64    `json:"requests"`
	Points      int64    `json:"points"`
}

// deref shows a nullable JSON string.
func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// assertStatus checks key id's status with keyctl show.
func assertStatus(t *testing.T, c *cli, id int64, want string) {
	t.Helper()
	r := c.run("show", fmt.Sprint(id), "-o", "json").mustSucceed(t)
	var k listedKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		t.Fatalf("show %d: %v", id, err)
	}
	if k.Status != want {
		t.Errorf("key %d status = %s, want %s", id, k.Status, want)
	}
}

// policyKey is what -o json shows of a key's policy.
type policyKey struct {
	ID           int64    `json:"id"`
	Description  string   `json:"description"`
	Scopes       []string `json:"scopes"`
	Measurements []string `json:"measurements"`
	Rate         float64  `json:"rate"`
	Burst        int      `json:"burst"`
	Status       string   `json:"status"`
	ExpiresAt    *string  `json:"expires_at"`
}

func (k policyKey) String() string {
	return fmt.Sprintf("id=%d description=%q scopes=%q measurements=%q rate=%v burst=%d status=%s expires_at=%s",
		k.ID, k.Description, k.Scopes, k.Measurements, k.Rate, k.Burst, k.Status, deref(k.ExpiresAt))
}
