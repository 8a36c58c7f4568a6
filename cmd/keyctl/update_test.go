package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/metricgate/metricgate/pkg/keystore"
)

func TestNewCmdUpdate(t *testing.T) {
	key := uuid.NewString()
	tests := []struct {
		name     string
		args     []string
		wantRef  keyRef
		want     string // the changes, as their String shows them
		wantCode int
		wantErr  string
	}{
		{name: "ExpiresIn", args: []string{"7", "--expires-in", "1h"}, wantRef: keyRef{ID: 7}, want: "expires_at=2026-03-01T13:00:00Z"},
		{name: "ExpiresAt", args: []string{"7", "--expires-at", "2027-01-01T00:00:00Z"}, wantRef: keyRef{ID: 7}, want: "expires_at=2027-01-01T00:00:00Z"},
		{name: "NoExpiry", args: []string{"7", "--no-expiry"}, wantRef: keyRef{ID: 7}, want: "expires_at=never"},
		{name: "ByKey", args: []string{key, "--rate", "0"}, wantRef: keyRef{Key: key}, want: "rate=default"},
		{name: "Everything", args: []string{"7", "--scope", "admin", "--measurement", "cpu", "--measurement", "mem",
			"--rate", "2.5", "--burst", "10", "--description", ""},
			wantRef: keyRef{ID: 7}, want: `scopes=admin measurements=cpu,mem rate=2.5 burst=10 description=""`},
		{name: "AllMeasurements", args: []string{"7", "--all-measurements"}, wantRef: keyRef{ID: 7}, want: "measurements=any"},
		{name: "Bucket", args: []string{"7", "--bucket", "tenant-a", "--max-series", "500"}, wantRef: keyRef{ID: 7},
			want: "bucket=tenant-a max_series=500"},
		{name: "GatewaysBucket", args: []string{"7", "--bucket", "", "--max-series", "0"}, wantRef: keyRef{ID: 7},
			want: "bucket=default max_series=default"},
		{name: "InternalBucket", args: []string{"7", "--bucket", "_internal"}, wantCode: exitUsage,
			wantErr: `invalid key policy: --bucket "_internal" starts with "_"`},
		{name: "TooManySeries", args: []string{"7", "--max-series", "2000000"}, wantCode: exitUsage,
			wantErr: "invalid key policy: --max-series must be between 0 (the gateway's default) and 1000000 series per hour, got 2000000"},
		{name: "NothingToChange", args: []string{"7"}, wantCode: exitUsage, wantErr: "invalid key policy: nothing to change: give --expires-in"},
		{name: "FalseFlagsOnly", args: []string{"7", "--no-expiry=false", "--all-measurements=false"}, wantCode: exitUsage, wantErr: "nothing to change"},
		{name: "NoArgument", args: []string{"--rate", "1"}, wantCode: exitUsage, wantErr: "update takes one key id, key or name, got 0 arguments"},
		{name: "TwoArguments", args: []string{"1", "2", "--rate", "1"}, wantCode: exitUsage, wantErr: "got 2 arguments"},
		{name: "Neither", args: []string{"Web 1", "--rate", "1"}, wantCode: exitUsage, wantErr: `"Web 1" is neither a key id, a key nor a key's name`},
		{name: "ExpiryAndNoExpiry", args: []string{"7", "--expires-in", "1h", "--no-expiry"},
			wantCode: exitUsage, wantErr: "--expires-in and --no-expiry cannot be used together"},
		{name: "AllThreeExpiries", args: []string{"7", "--expires-in", "1h", "--expires-at", "2027-01-01T00:00:00Z", "--no-expiry"},
			wantCode: exitUsage, wantErr: "--expires-in and --expires-at and --no-expiry cannot be used together"},
		{name: "ExpiresAtPast", args: []string{"7", "--expires-at", "2020-01-01T00:00:00Z"},
			wantCode: exitUsage, wantErr: "invalid key policy: --expires-at 2020-01-01T00:00:00Z is in the past"},
		{name: "MeasurementAndAll", args: []string{"7", "--measurement", "cpu", "--all-measurements"},
			wantCode: exitUsage, wantErr: "--measurement and --all-measurements cannot be used together"},
		{name: "EmptyMeasurement", args: []string{"7", "--measurement", ""},
			wantCode: exitUsage, wantErr: "invalid key policy: --measurement must name a measurement, got none"},
		{name: "BadScope", args: []string{"7", "--scope", "write"}, wantCode: exitUsage, wantErr: `invalid scope "write" in --scope: want submit or admin`},
		{name: "NoScope", args: []string{"7", "--scope", ""}, wantCode: exitUsage, wantErr: "--scope must name at least one scope, submit or admin"},
		{name: "BadDescription", args: []string{"7", "--description", strings.Repeat("x", 257)},
			wantCode: exitUsage, wantErr: "invalid key policy: --description is 257 bytes, longer than 256"},
		{name: "NegativeBurst", args: []string{"7", "--burst", "-1"}, wantCode: exitUsage, wantErr: "--burst must be 0 or more"},
		{name: "InfRate", args: []string{"7", "--rate", "+Inf"}, wantCode: exitUsage, wantErr: "--rate must be a number"},
		{name: "Hostname", args: []string{"7", "--hostname", "web-2"}, wantCode: exitUsage, wantErr: "unknown flag: --hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseVerb(t, testFactory(false), NewCmdUpdate, append([]string{"update"}, tt.args...), tt.wantCode, tt.wantErr)
			if got == nil {
				return
			}
			if got.Ref != tt.wantRef || got.Changes.String() != tt.want || got.Format != formatTable {
				t.Errorf("got ref %+v, changes %s, format %s; want %+v, %s, table",
					got.Ref, got.Changes.String(), got.Format, tt.wantRef, tt.want)
			}
		})
	}
}

func TestUpdateTable(t *testing.T) { onEachBackend(t, testUpdateTable) }

func testUpdateTable(t *testing.T, c *cli) {
	_, key := c.generate("web-1", "web one")
	r := c.run("update", "1", "--expires-in", "720h", "--scope", "submit,admin", "--measurement", "cpu", "--rate", "2.5",
		"--bucket", "tenant-a/week", "--max-series", "500").mustSucceed(t)
	want := "" +
		"ID:           1\n" +
		"Name:         -\n" +
		"Prefix:       " + key[:8] + "\n" +
		"Hostname:     web-1\n" +
		"Description:  web one\n" +
		"Status:       active\n" +
		"Scopes:       submit, admin\n" +
		"Measurements: cpu\n" +
		"Rate:         2.5 points/s\n" +
		"Burst:        server default\n" +
		"Bucket:       tenant-a/week\n" +
		"Max series:   500 per hour\n" +
		"Created:      2026-03-01T12:00:00Z\n" +
		"Revoked:      -\n" +
		"Expires:      2026-03-31T12:00:00Z\n" +
		"Replaced by:  -\n" +
		"Last used:    never\n" +
		"Requests:     0\n" +
		"Points:       0\n" +
		"Managed by:   -\n" +
		"Quarantined:  no\n"
	if r.stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, want)
	}
	if show := c.run("show", "1").mustSucceed(t); show.stdout != want {
		t.Errorf("show after update =\n%s\nwant what update printed", show.stdout)
	}
}

// TestUpdateChangesOnlyWhatIsGiven updates one field at a time and checks
// the others are kept.
func TestUpdateChangesOnlyWhatIsGiven(t *testing.T) {
	onEachBackend(t, testUpdateChangesOnlyWhatIsGiven)
}

func testUpdateChangesOnlyWhatIsGiven(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "web-1", "--description", "web one", "--expires-in", "1h",
		"--measurement", "cpu", "--rate", "5", "--burst", "50").mustSucceed(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"--description", "renamed"},
			`id=1 description="renamed" scopes=["submit"] measurements=["cpu"] rate=5 burst=50 status=active expires_at=2026-03-01T13:00:00Z`},
		{[]string{"--no-expiry"},
			`id=1 description="renamed" scopes=["submit"] measurements=["cpu"] rate=5 burst=50 status=active expires_at=<nil>`},
		{[]string{"--scope", "admin", "--scope", "submit"},
			`id=1 description="renamed" scopes=["admin" "submit"] measurements=["cpu"] rate=5 burst=50 status=active expires_at=<nil>`},
		{[]string{"--measurement", "mem", "--measurement", "disk"},
			`id=1 description="renamed" scopes=["admin" "submit"] measurements=["mem" "disk"] rate=5 burst=50 status=active expires_at=<nil>`},
		{[]string{"--all-measurements", "--rate", "0"},
			`id=1 description="renamed" scopes=["admin" "submit"] measurements=[] rate=0 burst=50 status=active expires_at=<nil>`},
		{[]string{"--burst", "0", "--expires-at", "2026-03-01T12:30:00Z"},
			`id=1 description="renamed" scopes=["admin" "submit"] measurements=[] rate=0 burst=0 status=active expires_at=2026-03-01T12:30:00Z`},
	}
	for _, st := range steps {
		r := c.run(append([]string{"update", "1", "-o", "json"}, st.args...)...).mustSucceed(t)
		var got policyKey
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("update %v: stdout %q: %v", st.args, r.stdout, err)
		}
		if got.String() != st.want {
			t.Errorf("update %v =\n  %s\nwant\n  %s", st.args, got, st.want)
		}
	}
}

// TestUpdateNoExpiryRevives checks that clearing an expiry makes an expired
// key work again, as update's help implies.
func TestUpdateNoExpiryRevives(t *testing.T) { onEachBackend(t, testUpdateNoExpiryRevives) }

func testUpdateNoExpiryRevives(t *testing.T, c *cli) {
	c.run("generate", "--hostname", "web-1", "--expires-in", "1h").mustSucceed(t)
	c.now = testNow.Add(2 * time.Hour)
	assertStatus(t, c, 1, "expired")
	c.run("update", "1", "--no-expiry").mustSucceed(t)
	assertStatus(t, c, 1, "active")
}

func TestUpdateErrors(t *testing.T) { onEachBackend(t, testUpdateErrors) }

func testUpdateErrors(t *testing.T, c *cli) {
	c.generate("web-1", "")
	checkRuns(t, c, append(notFoundCases(c, "update", "--rate", "1"),
		runCase{"ControlCharacter", []string{"update", "1", "--description", "a\nb"}, exitUsage,
			`keyctl: invalid key policy: --description "a\nb" contains control characters`},
		runCase{"NothingToChange", []string{"update", "1"}, exitUsage, "keyctl: invalid key policy: nothing to change: " +
			"give --expires-in, --expires-at, --no-expiry, --scope, --measurement, --all-measurements, --rate, --burst, --description, --name, --bucket or --max-series"},
	))
	missing, want := c.db+".missing", "no key store at "+c.db+".missing"
	if u, err := url.Parse(c.db); err == nil && keystore.IsPostgres(c.db) {
		u.Path = "/nosuchdb"
		missing, want = u.String(), `database "nosuchdb" does not exist`
	}
	if r := c.run("update", "1", "--rate", "1", "--db", missing); r.code != exitError || !strings.Contains(r.stderr, want) {
		t.Errorf("update on a missing database: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
}
