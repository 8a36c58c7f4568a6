package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestNewCmdGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     GenerateOptions
		wantCode int
		wantErr  string
	}{
		{name: "Hostname", args: []string{"--hostname", "web-1"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "web-1"}}},
		{name: "AllFlags", args: []string{"--hostname=10.0.0.0/24", "--description", "batch jobs", "-q"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "10.0.0.0/24", Description: "batch jobs"}, Quiet: true}},
		{name: "JSON", args: []string{"--hostname", "web-1", "-o", "json"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatJSON}, Key: keystore.NewKey{Hostname: "web-1"}}},
		{name: "Policy", args: []string{"--hostname", "web-1", "--expires-in", "720h", "--scope", "submit", "--scope", "ADMIN",
			"--measurement", "cpu", "--measurement", "mem, disk", "--rate", "2.5", "--burst", "10"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "web-1", ExpiresAt: testNow.Add(720 * time.Hour),
				Scopes: []string{"submit", "admin"}, Measurements: []string{"cpu", "mem", "disk"}, Rate: 2.5, Burst: 10}}},
		{name: "ExpiresAt", args: []string{"--hostname", "web-1", "--expires-at", "2026-03-02T00:00:00+02:00"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "web-1", ExpiresAt: time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)}}},
		{name: "ZeroRate", args: []string{"--hostname", "web-1", "--rate", "0", "--burst", "0"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "web-1"}}},
		{name: "Bucket", args: []string{"--hostname", "web-1", "--bucket", "tenant-a/week", "--max-series", "500"},
			want: GenerateOptions{cmdOptions: cmdOptions{Format: formatTable}, Key: keystore.NewKey{Hostname: "web-1", Bucket: "tenant-a/week", MaxSeries: 500}}},
		{name: "BadBucket", args: []string{"--hostname", "web-1", "--bucket", "a/b/c"}, wantCode: exitUsage,
			wantErr: `invalid key policy: --bucket "a/b/c" must be a bucket, or a database and retention policy as db/rp`},
		{name: "MissingHostname", args: []string{"--description", "x"}, wantCode: exitUsage, wantErr: "--hostname or --hostname-file is required"},
		{name: "EmptyHostname", args: []string{"--hostname", " "}, wantCode: exitUsage, wantErr: "--hostname must not be empty"},
		{name: "Argument", args: []string{"--hostname", "web-1", "web-2"}, wantCode: exitUsage, wantErr: `takes no arguments, got "web-2"`},
		{name: "QuietJSON", args: []string{"--hostname", "web-1", "-q", "-o", "json"}, wantCode: exitUsage, wantErr: "--quiet and --output json"},
		{name: "BadOutput", args: []string{"--hostname", "web-1", "-o", "xml"}, wantCode: exitUsage, wantErr: `want "table" or "json"`},
		{name: "UnknownFlag", args: []string{"--host", "web-1"}, wantCode: exitUsage, wantErr: "unknown flag: --host"},
		{name: "BothExpiries", args: []string{"--hostname", "web-1", "--expires-in", "1h", "--expires-at", "2027-01-01T00:00:00Z"},
			wantCode: exitUsage, wantErr: "--expires-in and --expires-at cannot be used together"},
		{name: "ExpiresAtPast", args: []string{"--hostname", "web-1", "--expires-at", "2026-03-01T12:00:00Z"},
			wantCode: exitUsage, wantErr: "invalid key policy: --expires-at 2026-03-01T12:00:00Z is in the past"},
		{name: "ExpiresAtBad", args: []string{"--hostname", "web-1", "--expires-at", "tomorrow"},
			wantCode: exitUsage, wantErr: `--expires-at "tomorrow" is not an RFC 3339 time`},
		{name: "ExpiresInZero", args: []string{"--hostname", "web-1", "--expires-in", "0s"},
			wantCode: exitUsage, wantErr: "--expires-in must be positive, got 0s"},
		{name: "ExpiresInNegative", args: []string{"--hostname", "web-1", "--expires-in", "-1h"},
			wantCode: exitUsage, wantErr: "--expires-in must be positive, got -1h0m0s"},
		{name: "ExpiresInDays", args: []string{"--hostname", "web-1", "--expires-in", "30d"},
			wantCode: exitUsage, wantErr: `invalid argument "30d" for "--expires-in" flag`},
		{name: "BadScope", args: []string{"--hostname", "web-1", "--scope", "root"},
			wantCode: exitUsage, wantErr: `invalid scope "root" in --scope: want submit or admin`},
		{name: "EmptyScope", args: []string{"--hostname", "web-1", "--scope", ""},
			wantCode: exitUsage, wantErr: "invalid key policy: --scope must name at least one scope, submit or admin"},
		{name: "EmptyMeasurement", args: []string{"--hostname", "web-1", "--measurement", "cpu,"},
			wantCode: exitUsage, wantErr: "invalid key policy: --measurement must name a measurement, got an empty one"},
		{name: "NoMeasurement", args: []string{"--hostname", "web-1", "--measurement", ""},
			wantCode: exitUsage, wantErr: "invalid key policy: --measurement must name a measurement, got none"},
		{name: "BadDescription", args: []string{"--hostname", "web-1", "--description", "a\tb"},
			wantCode: exitUsage, wantErr: `invalid key policy: --description "a\tb" contains control characters`},
		{name: "NegativeRate", args: []string{"--hostname", "web-1", "--rate", "-1"},
			wantCode: exitUsage, wantErr: "--rate must be a number of points per second, 0 or more, got -1"},
		{name: "NaNRate", args: []string{"--hostname", "web-1", "--rate", "NaN"},
			wantCode: exitUsage, wantErr: "--rate must be a number of points per second, 0 or more, got NaN"},
		{name: "NegativeBurst", args: []string{"--hostname", "web-1", "--burst", "-5"},
			wantCode: exitUsage, wantErr: "--burst must be 0 or more, got -5"},
		{name: "NoExpiryIsUpdateOnly", args: []string{"--hostname", "web-1", "--no-expiry"},
			wantCode: exitUsage, wantErr: "unknown flag: --no-expiry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdGenerate, append([]string{"generate"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			g := *got
			g.cmdOptions = cmdOptions{Ref: g.Ref, Format: g.Format} // the rest is the Factory's
			if !g.Key.ExpiresAt.Equal(tt.want.Key.ExpiresAt) {
				t.Errorf("expires at %v, want %v", g.Key.ExpiresAt, tt.want.Key.ExpiresAt)
			}
			g.Key.ExpiresAt = tt.want.Key.ExpiresAt
			if !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestGenerateTable(t *testing.T) { onEachBackend(t, testGenerateTable) }

func testGenerateTable(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "Web-1.Example.com.", "--description", "web one").mustSucceed(t)
	m := regexp.MustCompile(`^Generated key 1 \(([0-9a-f]{8})…, host web-1\.example\.com\)\.\n\n    (\S+)\n\nStore this key now: it will not be shown again\.\n$`).
		FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want the id, host, key and a warning", r.stdout)
	}
	prefix, key := m[1], m[2]
	if u, err := uuid.Parse(key); err != nil || u.String() != key || key[:8] != prefix {
		t.Errorf("key %q with prefix %q: want a canonical UUID starting with the prefix", key, prefix)
	}
	show := c.run("show", key, "-o", "json").mustSucceed(t)
	if !strings.Contains(show.stdout, `"id": 1,`) {
		t.Errorf("show KEY = %s, want key 1", show.stdout)
	}
}

func TestGenerateJSON(t *testing.T) { onEachBackend(t, testGenerateJSON) }

func testGenerateJSON(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "::ffff:192.0.2.9", "--description", "<web & db>", "-o", "json").mustSucceed(t)
	got, key := decodeNewKey(t, r.stdout)
	checkFields(t, "generated", got, map[string]any{
		"id":          1.0,
		"prefix":      key[:8],
		"hostname":    "192.0.2.9",
		"description": "<web & db>",
		"status":      "active",
		"created_at":  "2026-03-01T12:00:00Z",
		"revoked_at":  nil,
		"expires_at":  nil,
	})
	if s, ok := got["scopes"].([]any); !ok || len(s) != 1 || s[0] != "submit" {
		t.Errorf("scopes = %#v, want [submit]", got["scopes"])
	}
	if !strings.Contains(r.stdout, `"<web & db>"`) {
		t.Errorf("description is escaped in %s, want it as typed", r.stdout)
	}
}

func TestGenerateQuiet(t *testing.T) { onEachBackend(t, testGenerateQuiet) }

func testGenerateQuiet(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "127.0.0.1", "--quiet").mustSucceed(t)
	key := strings.TrimSuffix(r.stdout, "\n")
	if u, err := uuid.Parse(key); err != nil || u.String() != key || r.stdout != key+"\n" {
		t.Fatalf("stdout = %q, want a key and a newline only", r.stdout)
	}
	show := c.run("show", key).mustSucceed(t)
	if !strings.Contains(show.stdout, "Hostname:     127.0.0.1\n") {
		t.Errorf("show KEY =\n%s\nwant the key just made", show.stdout)
	}
}

func TestGenerateInvalidHostname(t *testing.T) { onEachBackend(t, testGenerateInvalidHostname) }

func testGenerateInvalidHostname(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "x y")
	if r.code != exitError {
		t.Errorf("exit code = %d, want %d", r.code, exitError)
	}
	if want := "keyctl: invalid hostname \"x y\": want an IP address, a CIDR range or a DNS name\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Errorf("database exists after a rejected hostname (stat: %v); want none created", err)
	}
}

func TestGenerateMissingHostname(t *testing.T) {
	r := newCLI(t).run("generate")
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "keyctl: --hostname or --hostname-file is required\n\nUsage:\n  keyctl generate {--hostname HOST | --hostname-file FILE} [flags]\n") {
		t.Errorf("exit %d, stderr %q; want %d, the error and the usage", r.code, r.stderr, exitUsage)
	}
}

func TestGeneratePolicy(t *testing.T) { onEachBackend(t, testGeneratePolicy) }

func testGeneratePolicy(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "10.0.0.7", "--expires-in", "1h", "--scope", "submit", "--scope", "admin",
		"--measurement", "cpu", "--measurement", "mem", "--rate", "2.5", "--burst", "10", "-o", "json").mustSucceed(t)
	var got struct {
		listedKey
		Measurements []string `json:"measurements"`
		Rate         float64  `json:"rate"`
		Burst        int      `json:"burst"`
		ExpiresAt    *string  `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if g, w := fmt.Sprintf("%q %q %v %d %s %s", got.Scopes, got.Measurements, got.Rate, got.Burst, deref(got.ExpiresAt), got.Status),
		`["submit" "admin"] ["cpu" "mem"] 2.5 10 2026-03-01T13:00:00Z active`; g != w {
		t.Errorf("scopes, measurements, rate, burst, expires_at, status = %s, want %s", g, w)
	}

	// Two hours on, the key has expired.
	c.now = testNow.Add(2 * time.Hour)
	assertStatus(t, c, 1, "expired")
	if r := c.run("list").mustSucceed(t); r.stdout != "" {
		t.Errorf("list (active) = %q, want nothing", r.stdout)
	}
	r = c.runTTY("", "list", "--all").mustSucceed(t)
	want := "" +
		"ID  PREFIX    NAME  HOSTNAME  DESCRIPTION  STATUS   CREATED           EXPIRES           LAST USED\n" +
		"1   " + got.Prefix + "  -     10.0.0.7               expired  2026-03-01 12:00  2026-03-01 13:00  never\n"
	if r.stdout != want {
		t.Errorf("list --all =\n%s\nwant\n%s", r.stdout, want)
	}
}

func TestGenerateTableExpiry(t *testing.T) { onEachBackend(t, testGenerateTableExpiry) }

func testGenerateTableExpiry(t *testing.T, c *cli) {
	r := c.run("generate", "--hostname", "web-1", "--expires-at", "2027-01-01T00:00:00Z").mustSucceed(t)
	if !strings.HasSuffix(r.stdout, "Store this key now: it will not be shown again.\nIt expires at 2027-01-01T00:00:00Z.\n") {
		t.Errorf("stdout = %q, want the warning and the expiry", r.stdout)
	}
}

func TestGenerateInvalidDescription(t *testing.T) { onEachBackend(t, testGenerateInvalidDescription) }

func testGenerateInvalidDescription(t *testing.T, c *cli) {
	for _, desc := range []string{"web\tone", "\x1b[2J", strings.Repeat("x", 257)} {
		r := c.run("generate", "--hostname", "web-1", "--description", desc)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "keyctl: invalid key policy: --description ") || r.stdout != "" {
			t.Errorf("description %q: exit %d, stdout %q, stderr %q; want %d and an invalid key policy error",
				desc, r.code, r.stdout, r.stderr, exitUsage)
		}
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Errorf("database exists after a rejected description (stat: %v); want none created", err)
	}
}
