package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestNewCmdApply(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     ApplyOptions
		wantCode int
		wantErr  string
	}{
		{name: "File", args: []string{"-f", "keys.yaml"}, want: ApplyOptions{File: "keys.yaml"}},
		{name: "All", args: []string{"--file=-", "--dry-run", "--prune", "--secrets-out", "s.json", "-o", "json"},
			want: ApplyOptions{cmdOptions: cmdOptions{Format: formatJSON}, File: "-", DryRun: true, Prune: true, SecretsOut: "s.json"}},
		{name: "NoFile", args: []string{"--prune"}, wantCode: exitUsage, wantErr: "-f FILE is required (- for standard input)"},
		{name: "EmptyFile", args: []string{"-f", " "}, wantCode: exitUsage, wantErr: "-f FILE is required"},
		{name: "Argument", args: []string{"-f", "keys.yaml", "keys2.yaml"}, wantCode: exitUsage, wantErr: `takes no arguments, got "keys2.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdApply, append([]string{"apply"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if tt.want.Format == "" {
				tt.want.Format = formatTable
			}
			if got.File != tt.want.File || got.DryRun != tt.want.DryRun || got.Prune != tt.want.Prune ||
				got.SecretsOut != tt.want.SecretsOut || got.Format != tt.want.Format {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// writeFile writes content to name in a temp dir of the test and returns
// its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// appliedJSON is what apply -o json prints.
type appliedJSON struct {
	DryRun  bool `json:"dry_run"`
	Applied bool `json:"applied"`
	Changes []struct {
		Action   string `json:"action"`
		Name     string `json:"name"`
		ID       *int64 `json:"id"`
		Replaces *int64 `json:"replaces"`
		Hostname string `json:"hostname"`
		Diffs    []struct {
			Field, From, To string
		} `json:"diffs"`
		Key string `json:"key"`
	} `json:"changes"`
	NotInFile []struct {
		Name string `json:"name"`
	} `json:"not_in_file"`
	Summary map[string]int `json:"summary"`
}

// applyJSONRun runs keyctl with args and -o json, and decodes what it
// printed.
func (c *cli) applyJSONRun(args ...string) appliedJSON {
	c.t.Helper()
	r := c.run(append(args, "-o", "json")...).mustSucceed(c.t)
	var got appliedJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		c.t.Fatalf("%v printed %q: %v", args, r.stdout, err)
	}
	return got
}

// actions shows a run's changes as "action name" pairs.
func (a appliedJSON) actions() string {
	var parts []string
	for _, c := range a.Changes {
		parts = append(parts, c.Action+" "+c.Name)
	}
	return strings.Join(parts, ", ")
}

// authenticates checks that the key plain works from addr in the cli's
// store.
func (c *cli) authenticates(plain, addr string) error {
	c.t.Helper()
	s, err := keystore.Open(context.Background(), c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	defer s.Close()
	s.Now = func() time.Time { return c.now }
	_, err = s.Authenticate(context.Background(), plain, netip.MustParseAddr(addr))
	return err
}

// dump reads every row of the cli's store that a key change could touch,
// for comparing the store before and after a run.
func (c *cli) dump() string {
	c.t.Helper()
	driver := "sqlite"
	tables := []string{"api_keys", "audit_log", "key_usage"}
	if keystore.IsPostgres(c.db) {
		driver = "pgx"
		tables = append(tables, "key_changes")
	}
	db, err := sql.Open(driver, c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, table := range tables {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
		if err != nil {
			c.t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				c.t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %v\n", table, vals)
		}
		rows.Close()
	}
	return b.String()
}

const keysV1 = `keys:
  - name: web-1
    hostname: 127.0.0.1
    description: web one
    measurements: [cpu, mem]
    rate: 100
  - name: web-2
    hostname: 127.0.0.2
    expires_at: 2026-06-01T00:00:00Z
  - name: web-3
    hostname: 127.0.0.3
`

// keysV2 changes web-1's rate, moves web-2 to another host, drops web-3
// and adds web-4.
const keysV2 = `keys:
  - name: web-1
    hostname: 127.0.0.1
    description: web one
    measurements: [mem, cpu]
    rate: 200
  - name: web-2
    hostname: 127.0.0.22
    expires_at: 2026-06-01T00:00:00Z
  - name: web-4
    hostname: 127.0.0.4
`

func TestApplyLifecycle(t *testing.T) { onEachBackend(t, testApplyLifecycle) }

func testApplyLifecycle(t *testing.T, c *cli) {
	byHand, _ := c.generate("127.0.0.9", "made by hand")
	v1, v2 := writeFile(t, "keys.yaml", keysV1), writeFile(t, "keys2.yaml", keysV2)

	got := c.applyJSONRun("apply", "-f", v1)
	if got.actions() != "create web-1, create web-2, create web-3" || !got.Applied || got.Summary["create"] != 3 {
		t.Fatalf("first apply = %+v, want three keys created", got)
	}
	for i, ch := range got.Changes {
		if ch.ID == nil || ch.Key == "" {
			t.Fatalf("created %s has id %v and key %q, want both", ch.Name, ch.ID, ch.Key)
		}
		if err := c.authenticates(ch.Key, fmt.Sprintf("127.0.0.%d", i+1)); err != nil {
			t.Errorf("the key made for %s does not authenticate: %v", ch.Name, err)
		}
	}
	web2Key := got.Changes[1].Key
	r := c.run("show", "web-1", "-o", "json").mustSucceed(t)
	var k policyKey
	json.Unmarshal([]byte(r.stdout), &k)
	if k.Rate != 100 || k.Description != "web one" || strings.Join(k.Measurements, ",") != "cpu,mem" {
		t.Errorf("show web-1 = %s, want the file's policy", k)
	}

	// The same file again: no change, exit 0, nothing written.
	before := c.dump()
	r = c.run("apply", "-f", v1)
	if r.code != exitOK || r.stderr != "No changes: the key store holds the keys "+v1+" declares.\n" ||
		r.stdout != "unchanged\tweb-1\t2\t127.0.0.1\t\nunchanged\tweb-2\t3\t127.0.0.2\t\nunchanged\tweb-3\t4\t127.0.0.3\t\n" {
		t.Errorf("second apply: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if after := c.dump(); after != before {
		t.Errorf("a second apply of the same file changed the store:\n%s\nwas\n%s", after, before)
	}

	// Without --prune web-3 stays and is named; with it, it is revoked.
	secrets := filepath.Join(t.TempDir(), "new-keys.json")
	r = c.run("apply", "-f", v2, "--secrets-out", secrets).mustSucceedOrNotes(t)
	wantRows := "update\tweb-1\t2\t127.0.0.1\trate: 100 → 200\n" +
		"replace\tweb-2\t3\t127.0.0.22\thostname: 127.0.0.2 → 127.0.0.22\n" +
		"create\tweb-4\t\t127.0.0.4\t\n"
	if r.stdout != wantRows || !strings.Contains(r.stderr, "1 key an earlier apply made is not in "+v2+": web-3 (key 4); --prune revokes them.") ||
		!strings.Contains(r.stderr, "Applied: 1 created, 1 updated, 1 replaced.") {
		t.Errorf("apply v2: stdout %q\nstderr %q", r.stdout, r.stderr)
	}
	values := readSecrets(t, secrets)
	if len(values) != 2 || c.authenticates(values["web-2"], "127.0.0.22") != nil || c.authenticates(values["web-4"], "127.0.0.4") != nil {
		t.Errorf("secrets file %v: want working keys for web-2 and web-4", values)
	}
	if err := c.authenticates(web2Key, "127.0.0.2"); err == nil {
		t.Errorf("the replaced web-2 key still works")
	}
	assertStatus(t, c, 4, "active")

	got = c.applyJSONRun("apply", "-f", v2, "--prune")
	if got.actions() != "unchanged web-1, unchanged web-2, unchanged web-4, revoke web-3" || got.Summary["revoke"] != 1 {
		t.Errorf("apply --prune = %s, want web-3 revoked only", got.actions())
	}
	assertStatus(t, c, 4, "revoked")
	assertStatus(t, c, byHand, "active")

	r = c.run("audit", "--limit", "1").mustSucceed(t)
	if !strings.Contains(r.stdout, testActor+"\t\tapply\tsource=apply create=0 update=0 replace=0 revoke=1 unchanged=3") {
		t.Errorf("audit's last entry = %q, want the apply's summary by %s", r.stdout, testActor)
	}
}

// mustSucceedOrNotes fails the test unless r succeeded; unlike
// mustSucceed it lets r have written notes on stderr.
func (r result) mustSucceedOrNotes(t *testing.T) result {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	return r
}

// readSecrets reads a --secrets-out file, checking its mode.
func readSecrets(t *testing.T, path string) map[string]string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %o, want 600", path, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	values := map[string]string{}
	if err := json.Unmarshal(data, &values); err != nil {
		t.Fatalf("%s = %q: %v", path, data, err)
	}
	return values
}

// TestApplyDryRun checks that a dry run prints the plan and leaves the
// store as it was, row for row.
func TestApplyDryRun(t *testing.T) { onEachBackend(t, testApplyDryRun) }

func testApplyDryRun(t *testing.T, c *cli) {
	c.run("apply", "-f", writeFile(t, "keys.yaml", keysV1), "-o", "json").mustSucceed(t)
	before := c.dump()
	v2 := writeFile(t, "keys2.yaml", keysV2)
	got := c.applyJSONRun("apply", "-f", v2, "--prune", "--dry-run")
	if !got.DryRun || got.Applied || got.actions() != "update web-1, replace web-2, create web-4, revoke web-3" {
		t.Errorf("dry run = %+v", got)
	}
	for _, ch := range got.Changes {
		if ch.Key != "" {
			t.Errorf("a dry run printed a value for %s", ch.Name)
		}
	}
	r := c.runTTY("", "apply", "-f", v2, "--prune", "--dry-run", "--secrets-out", filepath.Join(t.TempDir(), "s.json")).mustSucceed(t)
	want := "ACTION   NAME   ID  HOSTNAME    CHANGES\n" +
		"update   web-1  1   127.0.0.1   rate: 100 → 200\n" +
		"replace  web-2  2   127.0.0.22  hostname: 127.0.0.2 → 127.0.0.22\n" +
		"create   web-4  -   127.0.0.4   \n" +
		"revoke   web-3  3   127.0.0.3   \n" +
		"Plan: 1 to create, 1 to update, 1 to replace, 1 to revoke. Dry run: nothing was written.\n"
	if r.stdout != want {
		t.Errorf("dry run on a terminal =\n%s\nwant\n%s", r.stdout, want)
	}
	if after := c.dump(); after != before {
		t.Errorf("a dry run changed the store:\n%s\nwas\n%s", after, before)
	}
}

// TestApplySecretsNowhere checks that apply refuses to make keys whose
// values it could show nowhere, and writes nothing.
func TestApplySecretsNowhere(t *testing.T) {
	c := newCLI(t)
	c.generate("127.0.0.9", "")
	before := c.dump()
	r := c.run("apply", "-f", writeFile(t, "keys.yaml", keysV1))
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "keyctl: the plan makes 3 new keys, whose values would be shown nowhere") {
		t.Errorf("exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
	if c.dump() != before {
		t.Errorf("a refused apply changed the store")
	}
	// A file that already exists, open to others, is replaced by one that
	// is not.
	secrets := writeFile(t, "s.json", "old")
	c.run("apply", "-f", writeFile(t, "keys.yaml", keysV1), "--secrets-out", secrets).mustSucceedOrNotes(t)
	if values := readSecrets(t, secrets); len(values) != 3 {
		t.Errorf("secrets = %v, want three", values)
	}
}

// TestApplyBadFiles checks that every kind of bad file is reported with
// its line, and its column or entry, with exit code 2, and that nothing
// is written.
func TestApplyBadFiles(t *testing.T) { onEachBackend(t, testApplyBadFiles) }

func testApplyBadFiles(t *testing.T, c *cli) {
	c.run("apply", "-f", writeFile(t, "keys.yaml", keysV1), "-o", "json").mustSucceed(t)
	before := c.dump()
	for _, tt := range []struct{ name, file, want string }{
		{"Syntax", "keys:\n  - name: web-1\n   hostname: web-1\n", "keys.yaml:3:4: value is not allowed in this context"},
		{"JSONSyntax", `{"keys": [{"name": "web-1", "hostname" "x"}]}`, "keys.yaml:1:"},
		{"UnknownField", "keys:\n  - name: web-1\n    hostname: 127.0.0.1\n    rates: 5\n", `keys.yaml:4:5: entry "web-1": unknown field "rates"; the fields are`},
		{"Duplicate", "keys:\n  - name: web-1\n    hostname: 127.0.0.1\n  - name: web-1\n    hostname: 127.0.0.2\n",
			`keys.yaml:4: entry "web-1": the entry at line 2 has the same name: names are unique`},
		{"BadBinding", "keys:\n  - name: web-1\n    hostname: 10.0.0.0/33\n", `keys.yaml:2: entry "web-1": invalid hostname "10.0.0.0/33": not a CIDR range`},
		{"PastExpiry", "keys:\n  - name: web-1\n    hostname: 127.0.0.1\n    expires_at: 2026-02-01T00:00:00Z\n",
			`keys.yaml:2: entry "web-1": invalid key policy: "expires_at" 2026-02-01T00:00:00Z is in the past`},
		{"Empty", "", "keys.yaml is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run("apply", "-f", writeFile(t, "keys.yaml", tt.file), "--prune", "-o", "json")
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "Usage:") {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and an error containing %q, without the usage", r.code, r.stdout, r.stderr, exitUsage, tt.want)
			}
			if c.dump() != before {
				t.Errorf("a refused file changed the store")
			}
		})
	}
}

// TestExportApplyRoundTrip exports a store, applies the file to an empty
// store and to the store itself, and checks that the empty one then holds
// the same definitions and the source is unchanged.
func TestExportApplyRoundTrip(t *testing.T) { onEachBackend(t, testExportApplyRoundTrip) }

func testExportApplyRoundTrip(t *testing.T, c *cli) {
	c.run("apply", "-f", writeFile(t, "keys.yaml", keysV1), "-o", "json").mustSucceed(t)
	c.run("generate", "--hostname", "10.0.0.0/24", "--name", "batch", "--scope", "submit", "--scope", "admin",
		"--expires-in", "36h", "--description", `a "quoted" one: with # and yes`, "-q").mustSucceed(t)
	unnamed, _ := c.generate("127.0.0.9", "")

	r := c.run("export")
	if r.code != exitError || !strings.Contains(r.stderr, fmt.Sprintf("1 active key has no name, and a key file knows keys by name: %d;", unnamed)) {
		t.Errorf("export with an unnamed key: exit %d, stderr %q; want an error naming key %d", r.code, r.stderr, unnamed)
	}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			r := c.run("export", "--named-only", "-o", format)
			if r.code != exitOK || r.stderr != fmt.Sprintf("Left out 1 key without a name: %d.\n", unnamed) {
				t.Fatalf("export: exit %d, stderr %q", r.code, r.stderr)
			}
			exported := r.stdout
			if strings.Contains(exported, "hash") || strings.Contains(exported, "prefix") {
				t.Errorf("export without --with-hashes holds hashes:\n%s", exported)
			}
			file := writeFile(t, "export", exported)
			before := c.dump()
			if r := c.run("apply", "-f", file); r.code != exitOK || !strings.HasPrefix(r.stderr, "No changes") {
				t.Errorf("applying the export to its own store: exit %d, stderr %q; want no changes", r.code, r.stderr)
			}
			if c.dump() != before {
				t.Errorf("applying the export to its own store changed it")
			}
			other := newCLIOn(t, backends[0].newDB(t))
			got := other.applyJSONRun("apply", "-f", file)
			if got.Summary["create"] != 4 {
				t.Errorf("apply to an empty store = %s, want four keys created", got.actions())
			}
			if again := other.run("export", "-o", format).mustSucceed(t).stdout; again != exported {
				t.Errorf("the empty store's export after apply =\n%s\nwant\n%s", again, exported)
			}
		})
	}
}

// TestImportHashed moves keys with export --with-hashes and import
// --hashed, and checks that their values work in the new store, that
// importing again changes nothing, and that bad files write nothing.
func TestImportHashed(t *testing.T) { onEachBackend(t, testImportHashed) }

func testImportHashed(t *testing.T, c *cli) {
	src := newCLI(t)
	got := src.applyJSONRun("apply", "-f", writeFile(t, "keys.yaml", keysV1))
	hashes := src.run("export", "--with-hashes").mustSucceed(t).stdout
	file := writeFile(t, "hashes.yaml", hashes)

	r := c.run("import", "--hashed", file).mustSucceedOrNotes(t)
	if !strings.Contains(r.stderr, "Imported: 3 created.") {
		t.Errorf("import: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	for i, ch := range got.Changes {
		if err := c.authenticates(ch.Key, fmt.Sprintf("127.0.0.%d", i+1)); err != nil {
			t.Errorf("key %s does not authenticate in the store it was imported to: %v", ch.Name, err)
		}
	}
	r = c.run("show", "web-1", "-o", "json").mustSucceed(t)
	if !strings.Contains(r.stdout, `"prefix": "`+got.Changes[0].Key[:8]+`"`) || !strings.Contains(r.stdout, `"managed_by": "import"`) {
		t.Errorf("imported web-1 = %s, want its prefix and made by import", r.stdout)
	}
	before := c.dump()
	if r := c.run("import", "--hashed", file); r.code != exitOK || !strings.HasPrefix(r.stderr, "No changes") {
		t.Errorf("import again: exit %d, stderr %q", r.code, r.stderr)
	}
	if c.dump() != before {
		t.Errorf("importing again changed the store")
	}
	hash := strings.Repeat("ab", 32)
	for _, tt := range []struct{ name, file, want string }{
		{"ShortHash", "keys:\n  - name: x\n    hostname: 127.0.0.1\n    hash: " + hash[:62] + "\n",
			`hashes.yaml:4:11: entry "x": "hash" must be a SHA-256 in hex, 64 digits 0-9 and a-f, got 62 characters`},
		{"UnknownField", "keys:\n  - name: x\n    hostname: 127.0.0.1\n    sha256: " + hash + "\n", `hashes.yaml:4:5: entry "x": unknown field "sha256"`},
		{"NoHash", "keys:\n  - name: x\n    hostname: 127.0.0.1\n", `hashes.yaml:2: entry "x": no "hash"`},
		{"SecondBad", "keys:\n  - name: x\n    hostname: 127.0.0.1\n    hash: " + hash + "\n  - name: y\n    hostname: 127.0.0.1\n    hash: xyz\n",
			`hashes.yaml:7:11: entry "y": "hash" must be`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run("import", "--hashed", writeFile(t, "hashes.yaml", tt.file))
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tt.want)
			}
			if c.dump() != before {
				t.Errorf("a refused import changed the store")
			}
		})
	}
}

func TestGenerateHostnameFile(t *testing.T) { onEachBackend(t, testGenerateHostnameFile) }

func testGenerateHostnameFile(t *testing.T, c *cli) {
	hosts := writeFile(t, "hosts.txt", "# the web tier\n127.0.0.1 web-1-telegraf\n\n127.0.0.2\n  127.0.0.3   web-3-telegraf  \n")
	r := c.run("generate", "--hostname-file", hosts, "--rate", "50", "-o", "json").mustSucceed(t)
	var keys []struct {
		ID       int64   `json:"id"`
		Name     string  `json:"name"`
		Hostname string  `json:"hostname"`
		Rate     float64 `json:"rate"`
		Key      string  `json:"key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || len(keys) != 3 {
		t.Fatalf("generate --hostname-file -o json = %q, %v; want three keys", r.stdout, err)
	}
	for i, k := range keys {
		host := fmt.Sprintf("127.0.0.%d", i+1)
		if k.Hostname != host || k.Rate != 50 || c.authenticates(k.Key, host) != nil {
			t.Errorf("key %d = %+v, want one for %s with rate 50 that works", i, k, host)
		}
	}
	if keys[0].Name != "web-1-telegraf" || keys[1].Name != "" || keys[2].Name != "web-3-telegraf" {
		t.Errorf("names = %q %q %q", keys[0].Name, keys[1].Name, keys[2].Name)
	}
	before := c.dump()
	for _, tt := range []struct {
		name, file, want string
	}{
		{"BadHost", "127.0.0.1\n10.0.0.300\n", `h.txt:2: invalid hostname "10.0.0.300"`},
		{"TakenName", "127.0.0.5 web-1-telegraf\n", `key name taken: key 1 is named "web-1-telegraf"`},
		{"SameName", "127.0.0.5 a\n127.0.0.6 a\n", `h.txt:2: the name "a" is on line 1 too`},
		{"ThreeFields", "127.0.0.5 a b\n", `h.txt:1: want a host, or a host and a name, got 3 fields`},
		{"Empty", "# none\n", `h.txt lists no hosts`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run("generate", "--hostname-file", writeFile(t, "h.txt", tt.file))
			if r.code == exitOK || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want a failure containing %q", r.code, r.stdout, r.stderr, tt.want)
			}
			if c.dump() != before {
				t.Errorf("a refused hosts file changed the store")
			}
		})
	}
	r = c.run("generate", "--hostname-file", hosts, "--hostname", "web-1")
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "keyctl: --hostname and --hostname-file cannot be used together") {
		t.Errorf("both flags: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestVerbsByName checks that the verbs that take a key id take its name.
func TestVerbsByName(t *testing.T) { onEachBackend(t, testVerbsByName) }

func testVerbsByName(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "web-1", "--name", "web-1-telegraf", "-o", "json").mustSucceed(t)
	if !strings.Contains(r.stdout, `"name": "web-1-telegraf"`) {
		t.Errorf("generate --name printed %s", r.stdout)
	}
	r = c.run("generate", "--hostname", "web-2", "--name", "web-1-telegraf")
	if r.code != exitError || !strings.Contains(r.stderr, `key name taken: key 1 is named "web-1-telegraf"`) {
		t.Errorf("generate with a taken name: exit %d, stderr %q", r.code, r.stderr)
	}
	c.run("update", "web-1-telegraf", "--rate", "7", "-o", "json").mustSucceed(t)
	r = c.run("show", "web-1-telegraf", "-o", "json").mustSucceed(t)
	if !strings.Contains(r.stdout, `"rate": 7`) {
		t.Errorf("show by name after update by name = %s", r.stdout)
	}
	r = c.run("rotate", "web-1-telegraf", "-o", "json").mustSucceed(t)
	var rotated struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(r.stdout), &rotated); rotated.ID == 1 || rotated.Name != "web-1-telegraf" {
		t.Errorf("rotate by name = %s, want the new key to take the name", r.stdout)
	}
	c.run("revoke", "web-1-telegraf", "--yes").mustSucceed(t)
	assertStatus(t, c, rotated.ID, "revoked")
	c.run("update", "1", "--name", "old-web-1").mustSucceed(t)
	assertStatus(t, c, 1, "active")
	checkRuns(t, c, []runCase{
		{"UnknownName", []string{"show", "web-9"}, exitNotFound, `keyctl: no key is named "web-9" in ` + c.db},
		{"BadName", []string{"update", "1", "--name", "Web 1"}, exitUsage,
			`keyctl: invalid key policy: --name "Web 1" must be lower-case letters, digits, '-', '_' or '.', starting with a letter or digit`},
	})
}
